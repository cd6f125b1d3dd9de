"""The Responses translation modules alone (pure), and the retention of stored responses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from aivax.errors import InvalidRequest, NotFound
from gateways.responses import items, objects, request, selectors, services, stream
from gateways.responses.models import StoredResponse
from gateways.responses.tasks import responses_delete_expired


def _request(**fields):
    return request.ResponsesRequest.model_validate({"model": "m", "input": "x", **fields})


def test_items_to_messages_joins_a_turn_and_parallel_calls() -> None:
    normalized = items.normalize_input(
        [
            {"role": "developer", "content": "Be terse."},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Two cities?"}]},
            {"role": "assistant", "content": "Checking."},
            {"type": "function_call", "call_id": "a", "name": "w", "arguments": '{"c":1}'},
            {"type": "function_call", "call_id": "b", "name": "w", "arguments": '{"c":2}'},
            {"type": "function_call_output", "call_id": "a", "output": "sun"},
            {"type": "function_call_output", "call_id": "b", "output": [{"type": "input_text", "text": "rain"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
        ]
    )
    assert items.items_to_messages(normalized) == [
        {"role": "developer", "content": "Be terse."},
        {"role": "user", "content": "Two cities?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "w", "arguments": '{"c":1}'}},
                {"id": "b", "type": "function", "function": {"name": "w", "arguments": '{"c":2}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "a", "content": "sun"},
        {"role": "tool", "tool_call_id": "b", "content": "rain"},
    ]


def test_images_become_chat_content_parts() -> None:
    normalized = items.normalize_input(
        [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": "https://example.test/a.png", "detail": "low"},
                ],
            }
        ]
    )
    [message] = items.items_to_messages(normalized)
    assert message["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.test/a.png", "detail": "low"}},
    ]


@pytest.mark.parametrize(
    ("value", "param"),
    [
        ([{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}], "input[0].content[0].type"),
        ([{"role": "tool", "content": "x"}], "input[0].role"),
        ([{"type": "function_call", "call_id": "a", "name": "w"}], "input[0].arguments"),
    ],
)
def test_unsupported_input_names_the_parameter(value, param) -> None:
    with pytest.raises(InvalidRequest) as caught:
        items.normalize_input(value)
    assert caught.value.param == param


def test_chat_request_translation() -> None:
    asked = _request(
        instructions="Be brief.",
        max_output_tokens=64,
        tool_choice={"type": "function", "name": "w"},
        tools=[{"type": "function", "name": "w", "parameters": {"type": "object"}}],
        text={"format": {"type": "json_object"}},
        metadata={"k": "v"},
        reasoning={"effort": "low"},
    )
    chat = request.chat_request(asked, items.normalize_input(asked.input))
    assert chat.messages[0].model_dump(exclude_none=True) == {"role": "system", "content": "Be brief."}
    assert chat.max_completion_tokens == 64
    assert chat.tool_choice == {"type": "function", "function": {"name": "w"}}
    assert chat.tools == [{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}]
    assert chat.response_format == {"type": "json_object"}
    assert chat.metadata == {"k": "v"}


def _chunk(delta=None, finish=None, **extra):
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "c", "model": "up", "choices": choices, **extra}


def test_stream_translator_text_then_two_tool_calls() -> None:
    translator = stream.StreamTranslator(response_id="resp_1", created_at=1, request=_request())
    events = translator.start()
    events += translator.feed(_chunk({"role": "assistant", "content": "Let me"}))
    events += translator.feed(_chunk({"content": " check."}))
    events += translator.feed(_chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "w"}}]}))
    events += translator.feed(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"c":'}}]}))
    events += translator.feed(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}))
    events += translator.feed(
        _chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "w", "arguments": "{}"}}]})
    )
    events += translator.feed(_chunk({}, "tool_calls"))
    events += translator.feed(_chunk(usage={"prompt_tokens": 3, "completion_tokens": 4}, generation_context={}))
    events += translator.finish()
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [(e["type"], e.get("output_index")) for e in events] == [
        ("response.created", None),
        ("response.in_progress", None),
        ("response.output_item.added", 0),
        ("response.content_part.added", 0),
        ("response.output_text.delta", 0),
        ("response.output_text.delta", 0),
        ("response.output_text.done", 0),
        ("response.content_part.done", 0),
        ("response.output_item.done", 0),
        ("response.output_item.added", 1),
        ("response.function_call_arguments.delta", 1),
        ("response.function_call_arguments.delta", 1),
        ("response.function_call_arguments.done", 1),
        ("response.output_item.done", 1),
        ("response.output_item.added", 2),
        ("response.function_call_arguments.delta", 2),
        ("response.function_call_arguments.done", 2),
        ("response.output_item.done", 2),
        ("response.completed", None),
    ]
    final = events[-1]["response"]
    assert final["output"][0]["content"][0]["text"] == "Let me check."
    assert [(i["call_id"], i["arguments"]) for i in final["output"][1:]] == [("a", '{"c":1}'), ("b", "{}")]
    assert final["usage"]["total_tokens"] == 7


def test_length_limit_is_incomplete() -> None:
    translator = stream.StreamTranslator(response_id="resp_1", created_at=1, request=_request())
    translator.start()
    translator.feed(_chunk({"content": "cut"}, "length"))
    last = translator.finish()[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    body = objects.response_from_completion(
        {"choices": [{"message": {"content": "cut"}, "finish_reason": "length"}], "model": "up", "created": 1},
        response_id="resp_2",
        request=_request(),
    )
    assert (body["status"], body["output"][0]["status"]) == ("incomplete", "incomplete")


def test_ids_map_to_the_ledger_request_id() -> None:
    assert objects.response_id_for("chatcmpl-abc") == "resp_abc"
    assert objects.chat_request_id_for("resp_abc") == "chatcmpl-abc"


@pytest.mark.django_db
def test_expired_responses_are_hidden_then_deleted(org, outsider_org, settings) -> None:
    settings.RESPONSES_RETENTION_DAYS = 30
    kept = services.response_store(organization_id=org.pk, body={"id": "resp_kept"}, input_items=[])
    old = services.response_store(organization_id=outsider_org.pk, body={"id": "resp_old"}, input_items=[])
    StoredResponse.unscoped.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert kept.expires_at - kept.created_at == timedelta(days=30)
    with pytest.raises(NotFound):
        selectors.response_get(organization_id=outsider_org.pk, response_id="resp_old")
    assert responses_delete_expired() == 1
    assert list(StoredResponse.unscoped.values_list("pk", flat=True)) == ["resp_kept"]
