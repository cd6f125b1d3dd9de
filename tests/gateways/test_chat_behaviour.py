"""Gateway behaviour (overrides, prefill, templates, truncation), every error status, retries and fallbacks,
SSE framing byte by byte, keep-alives, and client disconnects cancelling the upstream."""

from __future__ import annotations

import json
import socket
import time
from datetime import timedelta
from decimal import Decimal

import httpx
import openai
import pytest
from django.utils import timezone

from accounts.models import Scope
from accounts.services import api_key_create, api_key_revoke, api_key_update
from billing.models import BilledRequest, LedgerEntry
from billing.services import reconcile_balances
from gateways.models import CatalogModel
from gateways.services import catalog_model_upsert, gateway_create, gateway_update

pytestmark = pytest.mark.django_db(transaction=True)


def _post(live_asgi, key: str, body: dict, path: str = "/api/v1/chat/completions", **kw) -> httpx.Response:
    return httpx.post(f"{live_asgi.url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=20, **kw)


def _stream(live_asgi, key: str, body: dict):
    """An SSE request, read as it arrives."""
    url = f"{live_asgi.url}/api/v1/chat/completions"
    return httpx.stream("POST", url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=20)


def _error(response: httpx.Response) -> dict:
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# -- gateway configuration --------------------------------------------------------------------------------------


def test_system_instruction_template_and_params_reach_upstream(client, funded, catalog_model, stub, upstream_model):
    gw = gateway_create(
        organization=funded,
        name="Tuned",
        catalog_model=catalog_model,
        system_instruction="You are terse.",
        user_prompt_template="Question: {prompt}",
        temperature=0.2,
        top_p=0.9,
        max_completion_tokens=50,
        stop=["END"],
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=0.1,
        overridable=["temperature"],
    )
    response = client.chat.completions.with_raw_response.create(
        model=gw.slug, messages=_user("why?"), temperature=1.5, top_p=0.1, max_tokens=999
    )
    sent = stub.app.requests_for(upstream_model)[-1]
    assert sent["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Question: why?"},
    ]
    assert sent["temperature"] == 1.5  # overridable
    assert (sent["top_p"], sent["max_completion_tokens"], sent["stop"], sent["seed"]) == (0.9, 50, ["END"], 7)  # fixed
    assert "max_tokens" not in sent  # passed through as OpenAI names it (its reasoning models refuse max_tokens)
    assert (sent["presence_penalty"], sent["frequency_penalty"]) == (0.5, 0.1)
    assert response.headers["x-aivax-ignored-params"] == "max_tokens,top_p"


def test_prefill_is_sent_and_included_or_not(client, funded, catalog_model, stub, upstream_model):
    gw = gateway_create(
        organization=funded,
        name="Prefilled",
        catalog_model=catalog_model,
        assistant_prefill="Sure! ",
        include_prefill_in_message=True,
    )
    stub.app.script(upstream_model, content="Here it is.")
    completion = client.chat.completions.create(model=gw.slug, messages=_user("go"))
    assert completion.choices[0].message.content == "Sure! Here it is."
    assert stub.app.requests_for(upstream_model)[-1]["messages"][-1] == {"role": "assistant", "content": "Sure! "}
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model=gw.slug, messages=_user("go"), stream=True)
        if c.choices
    )
    assert streamed == "Sure! Here it is."
    gateway_update(gateway=gw, include_prefill_in_message=False)
    assert client.chat.completions.create(model=gw.slug, messages=_user("go")).choices[0].message.content == (
        "Here it is."
    )


def test_context_truncation_keeps_system_and_last_user(client, funded, catalog_model, stub, upstream_model):
    gw = gateway_create(
        organization=funded, name="Small", catalog_model=catalog_model, system_instruction="S", context_max_tokens=60
    )
    history = []
    for i in range(10):
        history += [
            {"role": "user", "content": f"old question {i} " + "word " * 5},
            {"role": "assistant", "content": f"old answer {i}"},
        ]
    response = client.chat.completions.with_raw_response.create(model=gw.slug, messages=[*history, *_user("latest")])
    sent = stub.app.requests_for(upstream_model)[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "S"}
    assert sent[-1] == {"role": "user", "content": "latest"}
    assert len(sent) < len(history) + 2
    assert int(response.headers["x-aivax-truncated-messages"]) == len(history) + 2 - len(sent)


def test_context_overflow_throw(live_asgi, api_key, funded, catalog_model):
    gw = gateway_create(
        organization=funded, name="Strict", catalog_model=catalog_model, context_max_tokens=20, context_overflow="throw"
    )
    response = _post(live_asgi, api_key.raw, {"model": gw.slug, "messages": _user("word " * 100)})
    assert response.status_code == 400
    assert _error(response)["code"] == "context_length_exceeded"


# -- errors -----------------------------------------------------------------------------------------------------


def test_authentication_errors_are_401(live_asgi, api_key, gateway):
    body = {"model": gateway.slug, "messages": _user("x")}
    for headers in ({}, {"Authorization": "Bearer sk-aivax-unknownunknownunknownunknownunknownunknownunknown"}):
        response = httpx.post(f"{live_asgi.url}/api/v1/chat/completions", json=body, headers=headers)
        assert response.status_code == 401
        assert _error(response)["type"] == "invalid_request_error"
    api_key_revoke(key=api_key.key)
    assert _post(live_asgi, api_key.raw, body).status_code == 401


def test_expired_key_and_sdk_exception(live_asgi, api_key, gateway):
    api_key_update(key=api_key.key, expires_at=timezone.now() - timedelta(minutes=1))
    sdk = openai.OpenAI(base_url=f"{live_asgi.url}/api/v1", api_key=api_key.raw, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        sdk.chat.completions.create(model=gateway.slug, messages=_user("x"))


def test_scope_and_gateway_restriction_are_403(live_asgi, org, gateway, funded, catalog_model):
    knowledge_only = api_key_create(organization=org, name="k", scopes=[Scope.KNOWLEDGE])
    response = _post(live_asgi, knowledge_only.raw, {"model": gateway.slug, "messages": _user("x")})
    assert response.status_code == 403 and _error(response)["code"] == "missing_scope"
    other = gateway_create(organization=funded, name="Other", catalog_model=catalog_model)
    restricted = api_key_create(organization=org, name="r", scopes=[Scope.INFERENCE], allowed_gateway_ids=[other.pk])
    response = _post(live_asgi, restricted.raw, {"model": gateway.slug, "messages": _user("x")})
    assert response.status_code == 403 and _error(response)["code"] == "gateway_not_allowed"
    assert _post(live_asgi, restricted.raw, {"model": other.slug, "messages": _user("x")}).status_code == 200


def test_unknown_and_foreign_gateways_are_404(live_asgi, gateway, outsider_key):
    for model in ("missing:0000", "00000000-0000-0000-0000-000000000000", gateway.slug, str(gateway.pk)):
        response = _post(live_asgi, outsider_key.raw, {"model": model, "messages": _user("x")})
        assert response.status_code == 404, model
        assert _error(response)["code"] == "model_not_found"
        assert _error(response)["param"] == "model"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 3}, "temperature"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes please"}, "stream"),
    ],
)
def test_invalid_requests_name_the_parameter(live_asgi, api_key, body, param):
    response = _post(live_asgi, api_key.raw, body)
    assert response.status_code == 400
    assert _error(response)["param"] == param


def test_malformed_json_is_400(live_asgi, api_key):
    response = httpx.post(
        f"{live_asgi.url}/api/v1/chat/completions",
        content=b"{not json",
        headers={"Authorization": f"Bearer {api_key.raw}"},
    )
    assert response.status_code == 400 and _error(response)["code"] == "invalid_json"


def test_unknown_fields_are_ignored(client, gateway, stub, upstream_model):
    client.chat.completions.create(model=gateway.slug, messages=_user("x"), extra_body={"frobnicate": True})
    assert "frobnicate" not in stub.app.requests_for(upstream_model)[-1]


def test_no_balance_is_402_before_any_upstream_call(live_asgi, api_key, org, catalog_model, stub, upstream_model):
    gw = gateway_create(organization=org, name="Broke", catalog_model=catalog_model)  # org has no credit
    response = _post(live_asgi, api_key.raw, {"model": gw.slug, "messages": _user("x")})
    assert response.status_code == 402
    assert _error(response)["type"] == "insufficient_quota"
    assert stub.app.requests_for(upstream_model) == []


def test_rate_limit_is_429(live_asgi, api_key, gateway, settings):
    settings.RATE_LIMIT_REQUESTS_PER_MINUTE = 2
    statuses = [_post(live_asgi, api_key.raw, {"model": gateway.slug, "messages": _user("x")}) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert _error(statuses[-1])["type"] == "rate_limit_error"
    assert int(statuses[-1].headers["Retry-After"]) > 0


def test_upstream_error_is_502_summarised_and_not_billed(live_asgi, api_key, gateway, stub, upstream_model):
    stub.app.script(upstream_model, status=400, error_message="bad thing with key sk-secret-123")
    response = _post(live_asgi, api_key.raw, {"model": gateway.slug, "messages": _user("x")})
    assert response.status_code == 502
    assert "sk-secret-123" not in response.text and "sk-platform-secret" not in response.text
    assert len(stub.app.requests_for(upstream_model)) == 1  # 4xx is not retried
    assert not BilledRequest.unscoped.filter(organization_id=gateway.organization_id).exists()


def test_upstream_5xx_is_retried_before_first_byte(client, gateway, stub, upstream_model):
    stub.app.script(upstream_model, status=503, fail_times=2, content="finally")
    assert client.chat.completions.create(model=gateway.slug, messages=_user("x")).choices[0].message.content == (
        "finally"
    )
    assert len(stub.app.requests_for(upstream_model)) == 3
    stub.app.script(upstream_model, status=503, fail_times=1, content="streamed")
    stream = client.chat.completions.create(model=gateway.slug, messages=_user("x"), stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "streamed"


def test_fallback_model_is_used_when_primary_fails(client, funded, catalog_model, stub, upstream_model):
    backup = catalog_model_upsert(
        name=f"@stub/{upstream_model}-backup", base_url=stub.base_url, upstream_model=f"{upstream_model}-backup"
    )
    stub.app.script(upstream_model, status=500)
    stub.app.script(f"{upstream_model}-backup", content="from backup")
    gw = gateway_create(
        organization=funded, name="Resilient", catalog_model=catalog_model, fallback_model_ids=[backup.pk]
    )
    completion = client.chat.completions.create(model=gw.slug, messages=_user("x"))
    assert completion.choices[0].message.content == "from backup"
    assert completion.model == backup.name


def test_unreachable_upstream_is_502_and_timeout_is_504(live_asgi, api_key, funded, settings, stub, upstream_model):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    dead = catalog_model_upsert(name="@dead/model", base_url=f"http://127.0.0.1:{dead_port}/v1", upstream_model="x")
    gw = gateway_create(organization=funded, name="Dead", catalog_model=dead)
    response = _post(live_asgi, api_key.raw, {"model": gw.slug, "messages": _user("x")})
    assert response.status_code == 502 and _error(response)["code"] == "upstream_error"

    settings.UPSTREAM_READ_TIMEOUT = 0.5
    stub.app.script(upstream_model, hang=True)
    slow = (
        CatalogModel.objects.get(upstream_model=upstream_model)
        if CatalogModel.objects.filter(upstream_model=upstream_model).exists()
        else catalog_model_upsert(name=f"@stub/{upstream_model}", base_url=stub.base_url, upstream_model=upstream_model)
    )
    gw = gateway_create(organization=funded, name="Slow", catalog_model=slow)
    started = time.monotonic()
    response = _post(live_asgi, api_key.raw, {"model": gw.slug, "messages": _user("x")})
    assert response.status_code == 504 and _error(response)["code"] == "upstream_timeout"
    assert time.monotonic() - started < 10


# -- streaming --------------------------------------------------------------------------------------------------


def test_sse_framing_bytewise(live_asgi, api_key, gateway):
    body = {"model": gateway.slug, "messages": _user("a b"), "stream": True, "stream_options": {"include_usage": True}}
    with _stream(live_asgi, api_key.raw, body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache, no-transform"
        assert response.headers["x-accel-buffering"] == "no"
        raw = b"".join(response.iter_bytes())
    assert raw.endswith(b"data: [DONE]\n\n")
    events = raw.split(b"\n\n")
    assert events[-1] == b"" and events[-2] == b"data: [DONE]"
    for event in events[:-2]:
        assert event.startswith(b"data: {") and b"\n" not in event
        payload = json.loads(event[len(b"data: ") :])
        assert payload["object"] == "chat.completion.chunk"
    final = json.loads(events[-3][len(b"data: ") :])
    assert final["choices"] == [] and final["usage"]["total_tokens"] > 0 and "generation_context" in final


def test_chunks_are_flushed_as_they_arrive(live_asgi, api_key, gateway, stub, upstream_model):
    stub.app.script(upstream_model, content="one two three", chunk_delay=0.4)
    body = {"model": gateway.slug, "messages": _user("x"), "stream": True}
    arrivals = []
    with _stream(live_asgi, api_key.raw, body) as response:
        started = time.monotonic()
        for line in response.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 3
    assert arrivals[1] - arrivals[0] > 0.25 and arrivals[2] - arrivals[1] > 0.25  # not buffered until the end


def test_keepalive_comments_on_a_slow_upstream(live_asgi, api_key, gateway, stub, upstream_model, settings):
    settings.SSE_KEEPALIVE_SECONDS = 0.2
    stub.app.script(upstream_model, content="late", chunk_delay=0.9)
    body = {"model": gateway.slug, "messages": _user("x"), "stream": True}
    with _stream(live_asgi, api_key.raw, body) as response:
        raw = b"".join(response.iter_bytes())
    assert b": keep-alive\n\n" in raw and raw.endswith(b"data: [DONE]\n\n")


def test_error_after_stream_started_is_an_sse_error_event(live_asgi, api_key, gateway, stub, upstream_model):
    stub.app.script(upstream_model, content="a b c d e f", break_after_chunks=2)
    body = {"model": gateway.slug, "messages": _user("x"), "stream": True}
    with _stream(live_asgi, api_key.raw, body) as response:
        assert response.status_code == 200
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    last = json.loads(events[-1][len("data: ") :])
    assert last["error"]["type"] == "api_error"
    first_id = json.loads(events[0][len("data: ") :])["id"]
    # What was generated before the break is billed, once, and marked as estimated.
    out = LedgerEntry.unscoped.get(request_id=first_id, sku="inference.chat_completions.out")
    assert out.quantity > 0 and out.estimated


def test_sdk_raises_on_midstream_error(client, gateway, stub, upstream_model):
    stub.app.script(upstream_model, content="a b c d e f", break_after_chunks=2)
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model=gateway.slug, messages=_user("x"), stream=True))


def test_client_disconnect_cancels_upstream_and_bills_once(live_asgi, api_key, gateway, stub, upstream_model):
    stub.app.script(upstream_model, content=" ".join(["tok"] * 200), chunk_delay=0.05)
    cancelled_before = stub.app.state.cancelled
    body = {"model": gateway.slug, "messages": _user("x"), "stream": True}
    received = 0
    with _stream(live_asgi, api_key.raw, body) as response:
        request_id = response.headers["x-request-id"]
        for line in response.iter_lines():
            if '"content":"' in line:
                received += 1
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


def test_byo_endpoint_pays_no_inference(client, funded, stub, upstream_model):
    from gateways.services import byo_endpoint_create

    endpoint = byo_endpoint_create(
        organization=funded, name="mine", base_url=stub.base_url, model_name=upstream_model, api_key="sk-tenant-own"
    )
    gw = gateway_create(organization=funded, name="BYO", byo_endpoint=endpoint)
    raw = client.post("/chat/completions", cast_to=object, body={"model": gw.slug, "messages": _user("x")})
    assert raw["generation_context"]["generated_usage"] == []
    assert stub.app.requests_for(upstream_model)[-1]["_authorization"] == "Bearer sk-tenant-own"
    assert BilledRequest.unscoped.get(request_id=raw["id"]).total == Decimal(0)


def test_billing_disabled_meters_nothing(client, gateway, settings):
    settings.BILLING_ENABLED = False
    raw = client.post("/chat/completions", cast_to=object, body={"model": gateway.slug, "messages": _user("x")})
    assert raw["generation_context"]["generated_usage"] == []
    assert not BilledRequest.unscoped.filter(request_id=raw["id"]).exists()
