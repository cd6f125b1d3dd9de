"""The Responses face behaves as chat completions do, because it is the same service underneath: balances,
rate limits, key restrictions, overrides, keep-alives, flushing, and client disconnects (cancel and bill once)."""

from __future__ import annotations

import time

import httpx
import pytest

from accounts.models import Scope
from accounts.services import api_key_create
from billing.models import BilledRequest, LedgerEntry
from billing.services import reconcile_balances
from gateways.services import gateway_create

pytestmark = pytest.mark.django_db(transaction=True)


def _post(live_asgi, key: str, body: dict) -> httpx.Response:
    url = f"{live_asgi.url}/api/v1/responses"
    return httpx.post(url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=20)


def _stream(live_asgi, key: str, body: dict):
    url = f"{live_asgi.url}/api/v1/responses"
    return httpx.stream("POST", url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=20)


def _error(response: httpx.Response) -> dict:
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def test_no_balance_is_402_before_any_upstream_call(live_asgi, api_key, org, catalog_model, stub, upstream_model):
    broke = gateway_create(organization=org, name="Broke", catalog_model=catalog_model)
    response = _post(live_asgi, api_key.raw, {"model": broke.slug, "input": "x"})
    assert response.status_code == 402 and _error(response)["type"] == "insufficient_quota"
    assert stub.app.requests_for(upstream_model) == []


def test_rate_limit_is_429(live_asgi, api_key, gateway, settings):
    settings.RATE_LIMIT_REQUESTS_PER_MINUTE = 2
    statuses = [_post(live_asgi, api_key.raw, {"model": gateway.slug, "input": "x"}) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert _error(statuses[-1])["type"] == "rate_limit_error"


def test_scope_and_gateway_restriction_are_403(live_asgi, org, gateway, funded, catalog_model):
    knowledge_only = api_key_create(organization=org, name="k", scopes=[Scope.KNOWLEDGE])
    response = _post(live_asgi, knowledge_only.raw, {"model": gateway.slug, "input": "x"})
    assert response.status_code == 403 and _error(response)["code"] == "missing_scope"
    other = gateway_create(organization=funded, name="Other", catalog_model=catalog_model)
    restricted = api_key_create(organization=org, name="r", scopes=[Scope.INFERENCE], allowed_gateway_ids=[other.pk])
    response = _post(live_asgi, restricted.raw, {"model": gateway.slug, "input": "x"})
    assert response.status_code == 403 and _error(response)["code"] == "gateway_not_allowed"


def test_override_policy_applies_and_reports_responses_names(live_asgi, api_key, funded, catalog_model, stub):
    locked = gateway_create(
        organization=funded, name="Locked", catalog_model=catalog_model, max_completion_tokens=33, overridable=[]
    )
    response = _post(live_asgi, api_key.raw, {"model": locked.slug, "input": "x", "max_output_tokens": 500})
    assert response.status_code == 200
    assert response.headers["x-aivax-ignored-params"] == "max_output_tokens"
    assert stub.app.requests_for(catalog_model.upstream_model)[-1]["max_completion_tokens"] == 33


def test_malformed_bodies_are_400(live_asgi, api_key, gateway):
    url = f"{live_asgi.url}/api/v1/responses"
    headers = {"Authorization": f"Bearer {api_key.raw}", "Content-Type": "application/json"}
    assert _error(httpx.post(url, content=b"{nope", headers=headers))["code"] == "invalid_json"
    missing = httpx.post(url, json={"model": gateway.slug}, headers=headers)
    assert missing.status_code == 400 and _error(missing)["param"] == "input"


def test_keepalive_comments_on_a_slow_upstream(live_asgi, api_key, gateway, stub, upstream_model, settings):
    settings.SSE_KEEPALIVE_SECONDS = 0.2
    stub.app.script(upstream_model, content="late", chunk_delay=0.9)
    with _stream(live_asgi, api_key.raw, {"model": gateway.slug, "input": "x", "stream": True}) as response:
        raw = b"".join(response.iter_bytes())
    assert b": keep-alive\n\n" in raw and b"event: response.completed\n" in raw


def test_deltas_are_flushed_as_they_arrive(live_asgi, api_key, gateway, stub, upstream_model):
    stub.app.script(upstream_model, content="a b c d", chunk_delay=0.3)
    arrivals = []
    with _stream(live_asgi, api_key.raw, {"model": gateway.slug, "input": "x", "stream": True}) as response:
        for line in response.iter_lines():
            if line == "event: response.output_text.delta":
                arrivals.append(time.monotonic())
    assert len(arrivals) == 4
    assert arrivals[-1] - arrivals[0] > 0.6  # spread out as generated, not buffered to the end


def test_client_disconnect_cancels_upstream_and_bills_once(live_asgi, api_key, gateway, stub, upstream_model):
    stub.app.script(upstream_model, content=" ".join(["tok"] * 200), chunk_delay=0.05)
    cancelled_before = stub.app.state.cancelled
    received = 0
    with _stream(live_asgi, api_key.raw, {"model": gateway.slug, "input": "x", "stream": True}) as response:
        request_id = response.headers["x-request-id"]
        for line in response.iter_lines():
            received += line == "event: response.output_text.delta"
            if received >= 5:
                break  # leaving the block closes the connection
    deadline = time.monotonic() + 5
    while stub.app.state.cancelled == cancelled_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stub.app.state.cancelled == cancelled_before + 1, "the upstream request was not cancelled"
    while not LedgerEntry.unscoped.filter(request_id=request_id).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    out = LedgerEntry.unscoped.get(request_id=request_id, sku="inference.chat_completions.out")
    assert 4 <= out.quantity < 200 and out.estimated
    assert BilledRequest.unscoped.filter(request_id=request_id).count() == 1
    assert all(check.drift == 0 for check in reconcile_balances())
