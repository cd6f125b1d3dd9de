"""The OpenAI Responses API through a gateway: the real OpenAI Python SDK, unchanged apart from base_url and
api_key, against our live ASGI server and the stub upstream."""

from __future__ import annotations

import json
from decimal import Decimal

import openai
import pytest
from pydantic import BaseModel

from billing.models import LedgerEntry
from gateways.responses.objects import chat_request_id_for

pytestmark = pytest.mark.django_db(transaction=True)


def _ledger(response_id: str) -> list[tuple[str, int, Decimal]]:
    rows = LedgerEntry.unscoped.filter(request_id=chat_request_id_for(response_id)).order_by("sku")
    return [(r.sku, r.quantity, r.amount) for r in rows]


def _lines(generation_context: dict) -> list[tuple[str, int, Decimal]]:
    return sorted(
        (line["sku"], line["quantity"], Decimal(str(line["amount"]))) for line in generation_context["generated_usage"]
    )


@pytest.mark.parametrize("name_by", ["uuid", "slug"])
def test_create_text(client, gateway, name_by) -> None:
    model = str(gateway.pk) if name_by == "uuid" else gateway.slug
    response = client.responses.create(model=model, input="What is the capital of France?")
    assert response.id.startswith("resp_")
    assert response.object == "response" and response.status == "completed"
    assert response.output_text == "Echo: What is the capital of France?"
    message = response.output[0]
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert message.content[0].type == "output_text" and message.content[0].annotations == []
    usage = response.usage
    assert usage.output_tokens == 7 and usage.total_tokens == usage.input_tokens + 7
    assert usage.input_tokens_details.cached_tokens == 0 and usage.output_tokens_details.reasoning_tokens == 0
    context = response.model_extra["generation_context"]
    assert _lines(context) == _ledger(response.id)
    assert response.model == gateway.catalog_model.name


def test_instructions_follow_the_gateway_system_instruction(client, funded, catalog_model, stub, upstream_model):
    from gateways.services import gateway_create

    gateway = gateway_create(
        organization=funded, name="Pirate", catalog_model=catalog_model, system_instruction="You are a pirate."
    )
    response = client.responses.create(model=gateway.slug, instructions="Answer briefly.", input="Hello")
    assert response.output_text == "Echo: Hello"
    assert response.instructions == "Answer briefly."
    sent = stub.app.requests_for(upstream_model)[-1]["messages"]
    assert sent == [
        {"role": "system", "content": "You are a pirate."},
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Hello"},
    ]


class City(BaseModel):
    city: str
    country: str


def test_json_schema_output(client, gateway, stub, upstream_model) -> None:
    stub.app.script(upstream_model, content='{"city": "Paris", "country": "France"}')
    schema = City.model_json_schema() | {"additionalProperties": False}
    response = client.responses.create(
        model=gateway.slug,
        input="Where is the Eiffel tower?",
        text={"format": {"type": "json_schema", "name": "city", "schema": schema, "strict": True}},
        max_output_tokens=50,
        temperature=0.2,
    )
    assert json.loads(response.output_text) == {"city": "Paris", "country": "France"}
    assert response.text.format.type == "json_schema"
    sent = stub.app.requests_for(upstream_model)[-1]
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "city", "schema": schema, "strict": True},
    }
    assert (sent["max_completion_tokens"], sent["temperature"]) == (50, 0.2)
    parsed = client.responses.parse(model=gateway.slug, input="Where?", text_format=City)
    assert parsed.output_parsed == City(city="Paris", country="France")


def test_stream_deltas_reassemble_and_final_event_has_usage(client, gateway) -> None:
    with client.responses.stream(model=gateway.slug, input="one two three four") as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) == 5 and "".join(deltas) == "Echo: one two three four"
    assert final.output_text == "Echo: one two three four"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    kinds = [e.type for e in events if e.type != "response.output_text.delta"]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    last = events[-1].response
    assert last.status == "completed" and last.usage.output_tokens == 5
    assert _lines(last.model_extra["generation_context"]) == _ledger(last.id)
    assert len({e.response.id for e in events if hasattr(e, "response")}) == 1


def test_stream_is_server_sent_events_with_event_lines(live_asgi, api_key, gateway) -> None:
    import httpx

    body = {"model": gateway.slug, "input": "hi", "stream": True}
    headers = {"Authorization": f"Bearer {api_key.raw}"}
    with httpx.stream("POST", f"{live_asgi.url}/api/v1/responses", json=body, headers=headers, timeout=20) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        assert reply.headers["x-request-id"].startswith("chatcmpl-")
        text = "".join(reply.iter_text())
    blocks = [block for block in text.split("\n\n") if block]
    first = blocks[0].split("\n")
    assert first[0] == "event: response.created" and first[1].startswith("data: {")
    assert json.loads(first[1][6:])["type"] == "response.created"
    assert blocks[-1].startswith("event: response.completed\n")


def test_function_tool_round_trip(client, gateway, stub, upstream_model) -> None:
    calls = [{"id": "call_7", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]
    stub.app.script(upstream_model, content="", tool_calls=calls, finish_reason="tool_calls", answer_after_tool=True)
    tools = [
        {
            "type": "function",
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            "strict": True,
        }
    ]
    first = client.responses.create(model=gateway.slug, input="Weather in Paris?", tools=tools, tool_choice="auto")
    [call] = first.output
    assert call.type == "function_call" and call.status == "completed"
    assert (call.call_id, call.name, call.arguments) == ("call_7", "get_weather", '{"city":"Paris"}')
    sent = stub.app.requests_for(upstream_model)[-1]
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {k: tools[0][k] for k in ("name", "description", "parameters", "strict")},
        }
    ]
    assert sent["tool_choice"] == "auto"

    second = client.responses.create(
        model=gateway.slug,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"celsius": 21}'}],
        tools=tools,
    )
    assert second.output_text == 'From the tool: {"celsius": 21}'
    assert second.previous_response_id == first.id
    messages = stub.app.requests_for(upstream_model)[-1]["messages"]
    assert messages == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_7", "content": '{"celsius": 21}'},
    ]


def test_function_call_stream_events(client, gateway, stub, upstream_model) -> None:
    calls = [{"id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": '{"q":"x"}'}}]
    stub.app.script(upstream_model, content="", tool_calls=calls, finish_reason="tool_calls")
    tools = [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]
    with client.responses.stream(model=gateway.slug, input="look it up", tools=tools) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[4].arguments == '{"q":"x"}'
    [call] = final.output
    assert (call.type, call.call_id, call.name, call.arguments) == ("function_call", "call_9", "lookup", '{"q":"x"}')


def test_previous_response_id_continues_the_conversation(client, gateway, stub, upstream_model) -> None:
    first = client.responses.create(model=gateway.slug, input="My name is Ada.", instructions="Be nice.")
    with client.responses.stream(model=gateway.slug, input="What is my name?", previous_response_id=first.id) as s:
        second = s.get_final_response()
    third = client.responses.create(
        model=gateway.slug,
        previous_response_id=second.id,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "And again?"}]}],
    )
    assert third.output_text == "Echo: And again?"
    messages = stub.app.requests_for(upstream_model)[-1]["messages"]
    # Instructions are not carried over (as OpenAI): only the turns are.
    assert messages == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Echo: My name is Ada."},
        {"role": "user", "content": "What is my name?"},
        {"role": "assistant", "content": "Echo: What is my name?"},
        {"role": "user", "content": "And again?"},
    ]


def test_store_false_is_not_kept(client, gateway) -> None:
    response = client.responses.create(model=gateway.slug, input="forget me", store=False)
    assert response.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model=gateway.slug, input="again", previous_response_id=response.id)
    assert caught.value.body["param"] == "previous_response_id"


def test_retrieve_delete_and_another_organization_is_404(client, live_asgi, outsider_key, gateway) -> None:
    response = client.responses.create(model=gateway.slug, input="keep me", metadata={"ticket": "42"})
    fetched = client.responses.retrieve(response.id)
    assert fetched.output_text == "Echo: keep me" and fetched.metadata == {"ticket": "42"}
    assert fetched.model_extra["generation_context"] == response.model_extra["generation_context"]

    outsider = openai.OpenAI(base_url=f"{live_asgi.url}/api/v1", api_key=outsider_key.raw, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        outsider.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        outsider.responses.delete(response.id)
    client.responses.retrieve(response.id)  # still there: the outsider's delete touched nothing

    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(response.id)
    assert caught.value.body["code"] == "response_not_found"


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"temperature": 5}, "temperature"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"input": ""}, "input"),
    ],
)
def test_invalid_requests_are_openai_errors(client, gateway, kwargs, param) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(**{"model": gateway.slug, "input": "x", **kwargs})
    assert caught.value.body["param"] == param
    assert caught.value.body["type"] == "invalid_request_error"


def test_other_errors_are_openai_errors(client, live_asgi, gateway, stub, upstream_model) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="nope:0000", input="x")
    assert caught.value.body["param"] == "model"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{live_asgi.url}/api/v1", api_key="sk-wrong", max_retries=0).responses.create(
            model=gateway.slug, input="x"
        )
    stub.app.script(upstream_model, status=500)
    with pytest.raises(openai.APIStatusError) as failed:
        client.responses.create(model=gateway.slug, input="x")
    assert failed.value.status_code == 502 and failed.value.body["code"] == "upstream_error"


def test_stream_broken_upstream_ends_with_response_failed(client, gateway, stub, upstream_model) -> None:
    stub.app.script(upstream_model, content="one two three four five", break_after_chunks=2)
    with client.responses.stream(model=gateway.slug, input="x") as stream:
        events = list(stream)
    assert events[-1].type == "response.failed"
    failed = events[-1].response
    assert failed.status == "failed" and failed.error.code in ("upstream_error", "upstream_timeout")
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "one two"
    stored = client.responses.retrieve(failed.id)
    assert stored.status == "failed"


def test_input_items_list(client, live_asgi, outsider_key, gateway) -> None:
    first = client.responses.create(model=gateway.slug, input="first question")
    second = client.responses.create(
        model=gateway.slug,
        previous_response_id=first.id,
        input=[{"role": "user", "content": "second question"}],
    )
    items = list(client.responses.input_items.list(second.id))
    # Newest first: this turn's question, the earlier answer, the earlier question.
    assert [(i.type, getattr(i, "role", None)) for i in items] == [
        ("message", "user"),
        ("message", "assistant"),
        ("message", "user"),
    ]
    assert items[0].content[0].text == "second question" and items[0].id.startswith("msg_")
    assert items[1].id == first.output[0].id
    page = client.responses.input_items.list(second.id, order="asc", limit=1)
    assert [i.id for i in page.data] == [items[2].id] and page.has_more
    rest = client.responses.input_items.list(second.id, order="asc", after=items[2].id)
    assert [i.id for i in rest.data] == [items[1].id, items[0].id] and not rest.has_more
    outsider = openai.OpenAI(base_url=f"{live_asgi.url}/api/v1", api_key=outsider_key.raw, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        outsider.responses.input_items.list(second.id)
    with pytest.raises(openai.BadRequestError):
        client.responses.input_items.list(second.id, limit=500)
