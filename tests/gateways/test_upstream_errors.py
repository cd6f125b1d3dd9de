"""Upstream errors reach tenants summarised and scrubbed, on every path: an error status before the first byte
(plain and streamed requests) and an error event in the middle of a stream. A tenant's own endpoint's reason is
shown without its key, key-shaped strings or internal hosts; a catalog provider's words are never shown."""

from __future__ import annotations

import json

import httpx
import pytest

from gateways.services import byo_endpoint_create, gateway_create

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "Zq7plainTenantKey93xv"  # no well-known prefix
LEAKS = [KEY, "Zq7pla", "gpu-node-7", "internal.example", "10.9.8.7", "127.0.0.1", "https://", "deadbeef", "sk-live"]
NOISY = (
    f"Invalid key {KEY} (Bearer {KEY}) for https://gpu-node-7.internal.example:8443/v1 via 10.9.8.7, "
    "request deadbeefdeadbeefdeadbeefdeadbeef00, other key sk-live-0123456789abcdef"
)


def _post(live_asgi, api_key, body: dict) -> httpx.Response:
    return httpx.post(
        f"{live_asgi.url}/api/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {api_key.raw}"},
        timeout=20,
    )


def _stream_events(live_asgi, api_key, body: dict) -> list[dict]:
    response = _post(live_asgi, api_key, {**body, "stream": True})
    assert response.status_code == 200, response.text
    return [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]


def _assert_clean(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, leak


@pytest.fixture
def byo_gateway(funded, stub, upstream_model):
    endpoint = byo_endpoint_create(
        organization=funded, name="mine", base_url=stub.base_url, model_name=upstream_model, api_key=KEY
    )
    return gateway_create(organization=funded, name="Own model", byo_endpoint=endpoint)


@pytest.mark.parametrize("stream", [False, True])
def test_own_endpoint_error_status_is_summarised_without_secrets(
    live_asgi, api_key, byo_gateway, stub, upstream_model, stream
) -> None:
    stub.app.script(upstream_model, status=401, error_message=NOISY)
    body = {"model": byo_gateway.slug, "messages": [{"role": "user", "content": "x"}], "stream": stream}
    response = _post(live_asgi, api_key, body)
    assert response.status_code == 502
    message = response.json()["error"]["message"]
    assert "HTTP 401" in message and "Invalid key" in message  # the tenant's own endpoint: its reason, scrubbed
    _assert_clean(response.text)
    assert stub.app.requests_for(upstream_model)[0]["_authorization"] == f"Bearer {KEY}"  # the key was in play


def test_own_endpoint_mid_stream_error_is_scrubbed(live_asgi, api_key, byo_gateway, stub, upstream_model) -> None:
    stub.app.script(
        upstream_model,
        content="one two three",
        stream_error={"message": f"CUDA out of memory. {NOISY}", "type": "server_error"},
        stream_error_after=1,
    )
    events = _stream_events(
        live_asgi, api_key, {"model": byo_gateway.slug, "messages": [{"role": "user", "content": "x"}]}
    )
    error = events[-1]["error"]
    assert "failed mid-stream" in error["message"] and "CUDA out of memory" in error["message"]
    _assert_clean(json.dumps(events))


@pytest.mark.parametrize("stream", [False, True])
def test_catalog_provider_error_never_reaches_tenants(
    live_asgi, api_key, gateway, stub, upstream_model, stream
) -> None:
    stub.app.script(upstream_model, status=400, error_message=f"Organization quota exceeded. {NOISY}")
    body = {"model": gateway.slug, "messages": [{"role": "user", "content": "x"}], "stream": stream}
    response = _post(live_asgi, api_key, body)
    assert response.status_code == 502
    assert response.json()["error"]["message"] == "The upstream model returned HTTP 4xx."
    assert "quota" not in response.text and "sk-platform-secret" not in response.text


def test_catalog_provider_mid_stream_error_never_reaches_tenants(
    live_asgi, api_key, gateway, stub, upstream_model
) -> None:
    stub.app.script(
        upstream_model,
        content="one two three",
        stream_error={"message": f"Organization quota exceeded. {NOISY}", "type": "server_error"},
        stream_error_after=1,
    )
    events = _stream_events(live_asgi, api_key, {"model": gateway.slug, "messages": [{"role": "user", "content": "x"}]})
    assert events[-1]["error"]["message"] == "The upstream model failed mid-stream."
    assert "quota" not in json.dumps(events)
