"""Outbound safety for tenants' own endpoints (production policy: OUTBOUND_ALLOW_PRIVATE off)."""

from __future__ import annotations

import pytest

from aivax.errors import InvalidRequest
from gateways.outbound import validate_base_url
from gateways.services import byo_endpoint_create, gateway_create


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "http://localhost/v1",
        "http://10.1.2.3/v1",
        "http://192.168.0.10/v1",
        "http://169.254.169.254/latest",
        "http://[::1]:8080/v1",
        "http://metadata.google.internal/v1",
    ],
)
def test_private_addresses_are_refused_in_production(settings, url) -> None:
    settings.OUTBOUND_ALLOW_PRIVATE = False
    with pytest.raises(InvalidRequest) as exc:
        validate_base_url(url)
    assert exc.value.param == "base_url"


@pytest.mark.parametrize(
    "url", ["ftp://example.com/v1", "file:///etc/passwd", "http://user:pw@example.com/v1", "nonsense"]
)
def test_only_plain_http_urls(settings, url) -> None:
    with pytest.raises(InvalidRequest):
        validate_base_url(url)


def test_operator_allow_list(settings) -> None:
    settings.OUTBOUND_ALLOW_PRIVATE = False
    settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS = ["10.0.0.0/8", "localhost"]
    validate_base_url("http://10.20.30.40:8000/v1")
    validate_base_url("http://localhost:8000/v1")
    with pytest.raises(InvalidRequest):
        validate_base_url("http://192.168.1.1/v1")


@pytest.mark.django_db(transaction=True)
def test_checked_again_on_the_address_actually_connected_to(live_asgi, api_key, funded, stub, upstream_model, settings):
    import httpx

    # Saved while allowed (as a DNS answer could change after the check), then the policy applies at connect time.
    # "localhost" rather than 127.0.0.1: a host no earlier test used, so no pooled connection skips the connect.
    base_url = stub.base_url.replace("127.0.0.1", "localhost")
    endpoint = byo_endpoint_create(organization=funded, name="mine", base_url=base_url, model_name=upstream_model)
    gateway = gateway_create(organization=funded, name="Sneaky", byo_endpoint=endpoint)
    settings.OUTBOUND_ALLOW_PRIVATE = False
    response = httpx.post(
        f"{live_asgi.url}/api/v1/chat/completions",
        json={"model": gateway.slug, "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": f"Bearer {api_key.raw}"},
    )
    assert response.status_code == 502
    assert "not allowed" in response.json()["error"]["message"]
    assert stub.app.requests_for(upstream_model) == []
