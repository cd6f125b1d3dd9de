"""The real OpenAI Python SDK against our live ASGI server, through a gateway, to the stub upstream."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from billing.models import LedgerEntry
from billing.services import reconcile_balances

pytestmark = pytest.mark.django_db(transaction=True)


def _ledger(request_id: str) -> list[tuple[str, int, Decimal]]:
    rows = LedgerEntry.unscoped.filter(request_id=request_id).order_by("sku")
    return [(r.sku, r.quantity, r.amount) for r in rows]


def _lines(generation_context: dict) -> list[tuple[str, int, Decimal]]:
    return sorted(
        (line["sku"], line["quantity"], Decimal(str(line["amount"]))) for line in generation_context["generated_usage"]
    )


@pytest.mark.parametrize("name_by", ["uuid", "slug"])
@pytest.mark.parametrize("path", ["/chat/completions", "/chat-completions"])
def test_non_streaming_both_paths_and_names(client, gateway, name_by, path) -> None:
    model = str(gateway.pk) if name_by == "uuid" else gateway.slug
    raw = client.post(
        path,
        cast_to=object,
        body={"model": model, "messages": [{"role": "user", "content": "What is the capital of France?"}]},
    )
    assert raw["object"] == "chat.completion"
    assert raw["model"] == gateway.catalog_model.name
    message = raw["choices"][0]["message"]
    assert message == {
        "role": "assistant",
        "content": "Echo: What is the capital of France?",
        "refusal": None,
        "annotations": [],
        "tool_calls": [],
    }
    assert raw["choices"][0]["finish_reason"] == "stop"
    assert raw["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}
    assert raw["service_tier"] == "default"
    context = raw["generation_context"]
    assert context["runned_functions"] == []
    assert {line["sku"] for line in context["generated_usage"]} == {
        "inference.chat_completions.in",
        "inference.chat_completions.out",
    }
    assert _lines(context) == _ledger(raw["id"])


def test_sdk_typed_response(client, gateway) -> None:
    completion = client.chat.completions.create(
        model=gateway.slug, messages=[{"role": "user", "content": "hello there"}]
    )
    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.usage is not None and completion.usage.completion_tokens == 3


def test_streaming_with_usage_matches_ledger(client, gateway) -> None:
    stream = client.chat.completions.create(
        model=gateway.slug,
        messages=[{"role": "user", "content": "one two three four"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: one two three four"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == 5
    context = last.model_extra["generation_context"]
    assert _lines(context) == _ledger(last.id)
    assert len({c.id for c in chunks}) == 1


def test_streaming_without_usage_has_no_usage_chunk(client, gateway) -> None:
    chunks = list(
        client.chat.completions.create(model=gateway.slug, messages=[{"role": "user", "content": "hi"}], stream=True)
    )
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert _ledger(chunks[0].id), "a stream is billed even when the client did not ask to see usage"


async def test_async_sdk_stream_and_not(aclient, gateway) -> None:
    completion = await aclient.chat.completions.create(
        model=str(gateway.pk), messages=[{"role": "user", "content": "async"}]
    )
    assert completion.choices[0].message.content == "Echo: async"
    stream = await aclient.chat.completions.create(
        model=gateway.slug, messages=[{"role": "user", "content": "async stream"}], stream=True
    )
    parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(parts) == "Echo: async stream"


def test_models_list_and_get(client, gateway) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == [gateway.slug]
    assert client.models.retrieve(gateway.slug).id == gateway.slug
    assert client.models.retrieve(str(gateway.pk)).id == gateway.slug
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope:0000")


def test_tool_calls_pass_through(client, gateway, stub, upstream_model) -> None:
    calls = [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]
    stub.app.script(upstream_model, content="", tool_calls=calls, finish_reason="tool_calls")
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    completion = client.chat.completions.create(
        model=gateway.slug, messages=[{"role": "user", "content": "weather?"}], tools=tools
    )
    call = completion.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments) == ("call_1", "get_weather", '{"city":"Paris"}')
    assert stub.app.requests_for(upstream_model)[-1]["tools"] == tools
    stream = client.chat.completions.create(
        model=gateway.slug, messages=[{"role": "user", "content": "weather?"}], tools=tools, stream=True
    )
    deltas = [tc for c in stream if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].function.name == "get_weather"


def test_cached_tokens_priced_once(client, gateway, stub, upstream_model) -> None:
    stub.app.script(upstream_model, content="ok", cached_tokens=4)
    raw = client.post(
        "/chat/completions",
        cast_to=object,
        body={"model": gateway.slug, "messages": [{"role": "user", "content": "a b c d e f g h"}]},
    )
    usage = raw["usage"]
    lines = {line["sku"]: line for line in raw["generation_context"]["generated_usage"]}
    assert lines["inference.chat_completions.in.cached"]["quantity"] == 4
    assert lines["inference.chat_completions.in"]["quantity"] == usage["prompt_tokens"] - 4
    assert usage["prompt_tokens_details"]["cached_tokens"] == 4


def test_platform_key_is_sent_upstream_and_never_returned(client, gateway, stub, upstream_model) -> None:
    raw = client.post(
        "/chat/completions",
        cast_to=object,
        body={"model": gateway.slug, "messages": [{"role": "user", "content": "x"}]},
    )
    assert stub.app.requests_for(upstream_model)[-1]["_authorization"] == "Bearer sk-platform-secret"
    assert "sk-platform-secret" not in str(raw)


def test_reconciliation_has_no_drift_after_traffic(client, gateway) -> None:
    for _ in range(3):
        client.chat.completions.create(model=gateway.slug, messages=[{"role": "user", "content": "x"}])
    assert all(check.drift == 0 for check in reconcile_balances())
