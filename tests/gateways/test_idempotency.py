"""Idempotent retries: the same key and body replay the first response (JSON or stream) and bill once; another
body is a 422; concurrent requests with one key run once; keys are per organization; a dropped stream is still
finished, billed once and replayed whole; a failure frees the key."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from accounts.models import Scope
from accounts.services import api_key_create
from billing.models import BilledRequest
from billing.services import reconcile_balances
from gateways.services import gateway_create

pytestmark = pytest.mark.django_db(transaction=True)


def _post(live_asgi: Any, key: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(
        f"{live_asgi.url}/api/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}", **headers},
        timeout=20,
    )


def _stream_text(live_asgi: Any, key: str, body: dict[str, Any], **headers: str) -> tuple[httpx.Headers, str]:
    url = f"{live_asgi.url}/api/v1/chat/completions"
    with httpx.stream("POST", url, json=body, headers={"Authorization": f"Bearer {key}", **headers}) as response:
        assert response.status_code == 200
        return response.headers, response.read().decode()


def _body(gateway: Any, text: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"model": gateway.slug, "messages": [{"role": "user", "content": text}], **extra}


def test_a_retry_with_the_same_key_replays_and_bills_once(live_asgi, api_key, gateway, stub, upstream_model):
    first = _post(live_asgi, api_key.raw, _body(gateway), **{"Idempotency-Key": "k-1"})
    again = _post(live_asgi, api_key.raw, _body(gateway), **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["x-request-id"] == first.json()["id"]
    assert len(stub.app.requests_for(upstream_model)) == 1
    assert BilledRequest.unscoped.filter(request_id=first.json()["id"]).count() == 1
    assert BilledRequest.unscoped.count() == 1


def test_the_body_field_works_like_the_header(live_asgi, api_key, gateway, stub, upstream_model):
    first = _post(live_asgi, api_key.raw, _body(gateway, idempotency_key="k-2"))
    again = _post(live_asgi, api_key.raw, _body(gateway), **{"Idempotency-Key": "k-2"})
    assert again.json() == first.json()
    assert len(stub.app.requests_for(upstream_model)) == 1


def test_the_same_key_with_another_body_is_refused(live_asgi, api_key, gateway):
    _post(live_asgi, api_key.raw, _body(gateway), **{"Idempotency-Key": "k-3"})
    other = _post(live_asgi, api_key.raw, _body(gateway, "something else"), **{"Idempotency-Key": "k-3"})
    assert other.status_code == 422
    error = other.json()["error"]
    assert error["code"] == "idempotency_key_reused" and set(error) == {"message", "type", "param", "code"}


def test_an_invalid_key_is_a_400(live_asgi, api_key, gateway):
    response = _post(live_asgi, api_key.raw, _body(gateway, idempotency_key=42))
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_idempotency_key"


def test_a_stream_is_replayed_as_a_stream(live_asgi, api_key, gateway, stub, upstream_model):
    body = _body(gateway, stream=True)
    headers, first = _stream_text(live_asgi, api_key.raw, body, **{"Idempotency-Key": "k-4"})
    replay_headers, again = _stream_text(live_asgi, api_key.raw, body, **{"Idempotency-Key": "k-4"})
    assert again == first and first.endswith("data: [DONE]\n\n")
    assert replay_headers["content-type"].startswith("text/event-stream")
    assert replay_headers["x-request-id"] == headers["x-request-id"]
    assert len(stub.app.requests_for(upstream_model)) == 1
    assert BilledRequest.unscoped.count() == 1


def test_concurrent_requests_with_one_key_run_once(live_asgi, api_key, gateway, stub, upstream_model):
    stub.app.script(upstream_model, first_chunk_delay=0.5)
    with ThreadPoolExecutor(max_workers=5) as pool:
        responses = list(
            pool.map(lambda _: _post(live_asgi, api_key.raw, _body(gateway), **{"Idempotency-Key": "k-5"}), range(5))
        )
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(stub.app.requests_for(upstream_model)) == 1
    assert BilledRequest.unscoped.count() == 1


def test_keys_belong_to_one_organization(live_asgi, api_key, gateway, outsider_org, catalog_model, stub, upstream_model):  # fmt: skip  # noqa: E501
    from billing.services import credit_grant

    credit_grant(organization=outsider_org, amount=1, reason="test", staff_user=None)
    other_gateway = gateway_create(organization=outsider_org, name="Theirs", catalog_model=catalog_model)
    other_key = api_key_create(organization=outsider_org, name="k", scopes=list(Scope.values)).raw
    first = _post(live_asgi, api_key.raw, _body(gateway), **{"Idempotency-Key": "shared"})
    theirs = _post(live_asgi, other_key, _body(other_gateway), **{"Idempotency-Key": "shared"})
    assert theirs.status_code == 200 and theirs.json()["id"] != first.json()["id"]
    assert len(stub.app.requests_for(upstream_model)) == 2


def test_a_dropped_stream_is_finished_and_the_retry_gets_all_of_it(live_asgi, api_key, gateway, stub, upstream_model):
    stub.app.script(upstream_model, content=" ".join(f"w{i}" for i in range(30)), chunk_delay=0.02)
    body = _body(gateway, stream=True)
    url = f"{live_asgi.url}/api/v1/chat/completions"
    headers = {"Authorization": f"Bearer {api_key.raw}", "Idempotency-Key": "k-6"}
    with httpx.stream("POST", url, json=body, headers=headers) as response:
        for line in response.iter_lines():
            if '"w3"' in line:
                break  # the connection drops mid-stream
    deadline = time.monotonic() + 5
    while not BilledRequest.unscoped.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    _headers, replay = _stream_text(live_asgi, api_key.raw, body, **{"Idempotency-Key": "k-6"})
    content = "".join(
        (json.loads(line[6:])["choices"] or [{}])[0].get("delta", {}).get("content") or ""
        for line in replay.splitlines()
        if line.startswith("data: {")
    )
    assert content.endswith("w29") and replay.endswith("data: [DONE]\n\n")
    assert len(stub.app.requests_for(upstream_model)) == 1
    assert BilledRequest.unscoped.count() == 1
    assert all(check.ok for check in reconcile_balances())


def test_a_failed_request_frees_its_key(live_asgi, api_key, gateway, stub, upstream_model):
    stub.app.script(upstream_model, status=400, error_message="bad")
    failed = _post(live_asgi, api_key.raw, _body(gateway), **{"Idempotency-Key": "k-7"})
    assert failed.status_code == 502
    stub.app.script(upstream_model)
    retried = _post(live_asgi, api_key.raw, _body(gateway), **{"Idempotency-Key": "k-7"})
    assert retried.status_code == 200 and "Idempotent-Replayed" not in retried.headers
