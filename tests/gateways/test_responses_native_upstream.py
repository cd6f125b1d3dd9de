"""Upstreams that speak the Responses API natively (`wire_api = "responses"`): the chat service sends its payload
to /responses and reads the answer back, so both faces (chat completions and Responses) work on them, with the
same billing, streaming and tools."""

from __future__ import annotations

import pytest

from billing.models import LedgerEntry, Price
from gateways.models import CatalogModel, WireApi
from gateways.responses import wire
from gateways.services import byo_endpoint_create, catalog_model_upsert, gateway_create
from tests.gateways.conftest import PRICES

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def native_gateway(funded, stub, upstream_model):
    model: CatalogModel = catalog_model_upsert(
        name=f"@stub/{upstream_model}",
        base_url=stub.base_url,
        upstream_model=upstream_model,
        api_key="sk-platform-secret",
        context_window=4096,
        wire_api=WireApi.RESPONSES,
    )
    for sku, price in PRICES.items():
        Price.objects.create(catalog_model=model, sku=sku, unit_price=price)
    return gateway_create(organization=funded, name="Native", catalog_model=model)


def _ledger(request_id: str) -> dict[str, int]:
    return {r.sku: r.quantity for r in LedgerEntry.unscoped.filter(request_id=request_id)}


def test_chat_completions_face_on_a_native_upstream(client, native_gateway, stub, upstream_model) -> None:
    completion = client.chat.completions.create(
        model=native_gateway.slug,
        messages=[{"role": "user", "content": "hello native"}],
        max_tokens=30,
        temperature=0.5,
        stop=["zzz"],
    )
    assert completion.choices[0].message.content == "Echo: hello native"
    assert completion.choices[0].finish_reason == "stop"
    sent = stub.app.requests_for(upstream_model)[-1]
    assert sent["_path"] == "/responses" and sent["_authorization"] == "Bearer sk-platform-secret"
    assert sent["input"] == [{"type": "message", "role": "user", "content": "hello native"}]
    assert (sent["max_output_tokens"], sent["temperature"], sent["store"]) == (30, 0.5, False)
    assert "stop" not in sent and "messages" not in sent
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (5, 3)  # the stub's own count, not an estimate
    assert _ledger(completion.id) == {"inference.chat_completions.in": 5, "inference.chat_completions.out": 3}


def test_chat_stream_on_a_native_upstream(client, native_gateway) -> None:
    chunks = list(
        client.chat.completions.create(
            model=native_gateway.slug,
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: one two three"
    assert chunks[-1].usage.completion_tokens == 4
    out = LedgerEntry.unscoped.get(request_id=chunks[0].id, sku="inference.chat_completions.out")
    assert out.quantity == 4 and not out.estimated


@pytest.mark.parametrize("stream", [False, True])
def test_responses_face_tool_round_trip_on_a_native_upstream(
    client, native_gateway, stub, upstream_model, stream
) -> None:
    calls = [{"id": "call_n", "type": "function", "function": {"name": "get_weather", "arguments": '{"c":"Oslo"}'}}]
    stub.app.script(upstream_model, content="", tool_calls=calls, answer_after_tool=True)
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
    if stream:
        with client.responses.stream(model=native_gateway.slug, input="Weather?", tools=tools) as events:
            first = events.get_final_response()
    else:
        first = client.responses.create(model=native_gateway.slug, input="Weather?", tools=tools)
    [call] = first.output
    assert (call.type, call.call_id, call.name, call.arguments) == (
        "function_call",
        "call_n",
        "get_weather",
        '{"c":"Oslo"}',
    )
    assert stub.app.requests_for(upstream_model)[-1]["tools"] == [
        {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
    ]
    second = client.responses.create(
        model=native_gateway.slug,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": "call_n", "output": "snow"}],
        tools=tools,
    )
    assert second.output_text == "From the tool: snow"
    assert stub.app.requests_for(upstream_model)[-1]["input"] == [
        {"type": "message", "role": "user", "content": "Weather?"},
        {"type": "function_call", "call_id": "call_n", "name": "get_weather", "arguments": '{"c":"Oslo"}'},
        {"type": "function_call_output", "call_id": "call_n", "output": "snow"},
    ]


def test_native_upstream_failures_are_upstream_errors(client, native_gateway, stub, upstream_model) -> None:
    import openai

    stub.app.script(upstream_model, status=400, error_message="bad request")
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=native_gateway.slug, messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 502
    stub.app.script(upstream_model, content="one two three four", break_after_chunks=2)
    with client.responses.stream(model=native_gateway.slug, input="x") as events:
        kinds = [e.type for e in events]
    assert kinds[-1] == "response.failed"


def test_byo_endpoint_speaking_responses(client, funded, stub, upstream_model) -> None:
    endpoint = byo_endpoint_create(
        organization=funded,
        name="Mine",
        base_url=stub.base_url,
        model_name=upstream_model,
        wire_api=WireApi.RESPONSES,
    )
    gateway = gateway_create(organization=funded, name="BYO native", byo_endpoint=endpoint)
    response = client.responses.create(model=gateway.slug, input="hi")
    assert response.output_text == "Echo: hi"
    assert stub.app.requests_for(upstream_model)[-1]["_path"] == "/responses"


def test_wire_translation_both_ways() -> None:
    body = wire.responses_body(
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "a", "function": {"name": "f"}}]},
                {"role": "tool", "tool_call_id": "a", "content": "42"},
            ],
            "max_completion_tokens": 9,
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {}}},
            "seed": 1,
            "stream": True,
        }
    )
    assert body == {
        "model": "m",
        "store": False,
        "stream": True,
        "input": [
            {"type": "message", "role": "system", "content": "sys"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "function_call", "call_id": "a", "name": "f", "arguments": ""},
            {"type": "function_call_output", "call_id": "a", "output": "42"},
        ],
        "max_output_tokens": 9,
        "tool_choice": {"type": "function", "name": "f"},
        "text": {"format": {"type": "json_schema", "name": "s", "schema": {}}},
    }
    completion = wire.completion_from_response(
        {
            "id": "resp_x",
            "created_at": 5,
            "model": "m",
            "status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"},
            "output": [{"type": "message", "content": [{"type": "output_text", "text": "cut"}]}],
            "usage": {"input_tokens": 2, "output_tokens": 1, "input_tokens_details": {"cached_tokens": 1}},
        }
    )
    assert completion["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "cut"},
        "finish_reason": "length",
    }
    assert completion["usage"]["prompt_tokens_details"] == {"cached_tokens": 1}
    translator = wire.ChunkTranslator()
    failed = translator.feed({"type": "response.failed", "response": {"error": {"message": "boom"}}})
    assert failed == [{"error": {"message": "boom"}}]


def test_console_adds_an_endpoint_that_speaks_responses(org, owner) -> None:
    from django.test import Client

    from gateways.models import ByoEndpoint

    browser = Client()
    browser.force_login(owner)
    data = {
        "byo-name": "My Responses server",
        "byo-base_url": "http://127.0.0.1:8001/v1",
        "byo-model_name": "gpt-x",
        "byo-context_window": "8192",
        "byo-wire_api": "responses",
    }
    response = browser.post("/console/endpoints/new", data, headers={"HX-Request": "true"})
    assert response.status_code == 200 and 'name="byo-wire_api"' in response.content.decode()
    assert ByoEndpoint.objects.for_org(org).get().wire_api == WireApi.RESPONSES
