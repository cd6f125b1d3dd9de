"""The connect-time guard on the chat path: an endpoint saved while its host was allowed is checked again on the
address actually connected to (DNS rebinding, or a policy that changed since)."""

from __future__ import annotations

import socket

import httpx
import pytest

from gateways.services import byo_endpoint_create, gateway_create

pytestmark = pytest.mark.django_db(transaction=True)


def _ask(live_asgi, api_key, gateway) -> httpx.Response:
    return httpx.post(
        f"{live_asgi.url}/api/v1/chat/completions",
        json={"model": gateway.slug, "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": f"Bearer {api_key.raw}"},
        timeout=20,
    )


def test_loopback_refused_at_connect_time_once_not_allowed(
    live_asgi, api_key, funded, stub, upstream_model, settings
) -> None:
    # "localhost" rather than 127.0.0.1: a host no earlier test used, so no pooled connection skips the connect.
    base_url = stub.base_url.replace("127.0.0.1", "localhost")
    endpoint = byo_endpoint_create(organization=funded, name="mine", base_url=base_url, model_name=upstream_model)
    gateway = gateway_create(organization=funded, name="Sneaky", byo_endpoint=endpoint)
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    response = _ask(live_asgi, api_key, gateway)
    assert response.status_code == 502
    assert "not allowed" in response.json()["error"]["message"]
    assert stub.app.requests_for(upstream_model) == []


def test_dns_rebinding_to_metadata_is_refused(live_asgi, api_key, funded, stub, upstream_model, monkeypatch) -> None:
    """The name resolved to loopback when saved, then to the metadata address: refused, even with loopback on."""
    real = socket.getaddrinfo
    answers = {"rebind.test": "127.0.0.1"}

    def fake(host, port, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    base_url = stub.base_url.replace("127.0.0.1", "rebind.test")
    endpoint = byo_endpoint_create(organization=funded, name="mine", base_url=base_url, model_name=upstream_model)
    gateway = gateway_create(organization=funded, name="Rebinder", byo_endpoint=endpoint)
    answers["rebind.test"] = "169.254.169.254"
    response = _ask(live_asgi, api_key, gateway)
    assert response.status_code == 502
    assert "not allowed" in response.json()["error"]["message"]
    assert "169.254" not in response.text
    assert stub.app.requests_for(upstream_model) == []
