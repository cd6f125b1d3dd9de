"""Odd but parseable chat requests get a 400 naming the parameter (never a 500), and a huge conversation neither
costs quadratic CPU nor stalls the event loop for other requests."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from django.test import override_settings

from aivax import tokens
from gateways import prompting, protocol
from gateways.services import gateway_create
from quotas import gate

pytestmark = pytest.mark.django_db(transaction=True)


def _post(live_asgi, key: str, body: dict | bytes) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{live_asgi.url}/api/v1/chat/completions",
        content=content,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=30,
    )


def _error(response: httpx.Response) -> dict:
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def _nested(depth: int) -> dict:
    node: dict = {}
    root = node
    for _ in range(depth):
        node["x"] = {}
        node = node["x"]
    return root


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "gw\x00", "messages": _user("hi")}, "model"),
        ({"messages": _user("hi\x00there")}, "messages[0].content"),
        ({"messages": [{"role": "user", "name": "a\x00", "content": "hi"}]}, "messages[0].name"),
        ({"messages": _user("hi"), "metadata": {"k": "v\x00"}}, "metadata.k"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": None}]}]}, "messages[0].content"),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": "f"}]}]},
            "messages[0].tool_calls[0].function",
        ),
        ({"messages": _user("hi"), "tools": [_nested(200)]}, "tools"),
        ({"messages": _user("hi"), "response_format": _nested(200)}, "response_format"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "a", "x": _nested(200)}]}]}, "messages"),
        ({"messages": _user("hi"), "max_tokens": 2**40}, "max_tokens"),
        ({"messages": _user("hi"), "seed": 2**63}, "seed"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(live_asgi, api_key, gateway, body, param):
    response = _post(live_asgi, api_key.raw, {"model": gateway.slug, **body})
    assert response.status_code == 400, response.text
    assert _error(response)["param"] == param


def test_special_token_text_is_ordinary_text(live_asgi, api_key, gateway):
    # The tokenizer refuses "<|endoftext|>" unless told it is ordinary text: that was a 500 on every count.
    response = _post(live_asgi, api_key.raw, {"model": gateway.slug, "messages": _user("say <|endoftext|> now")})
    assert response.status_code == 200, response.text


def test_a_message_too_long_for_the_tokenizer_is_a_context_error(live_asgi, api_key, gateway):
    # 1.2 million characters: past what the encoder takes in one call (it raised ValueError: a 500).
    response = _post(live_asgi, api_key.raw, {"model": gateway.slug, "messages": _user("word " * 240_000)})
    assert response.status_code == 400, response.text
    assert _error(response)["code"] == "context_length_exceeded"


def test_too_many_messages_are_refused_before_any_work(live_asgi, api_key, gateway):
    with override_settings(CHAT_MAX_MESSAGES=100):
        response = _post(live_asgi, api_key.raw, {"model": gateway.slug, "messages": _user("hi") * 101})
    assert response.status_code == 400
    assert (_error(response)["param"], _error(response)["code"]) == ("messages", "too_many_messages")


def test_too_much_text_is_refused(live_asgi, api_key, gateway):
    with override_settings(CHAT_MAX_INPUT_CHARS=1000):
        response = _post(live_asgi, api_key.raw, {"model": gateway.slug, "messages": _user("x" * 1001)})
    assert response.status_code == 400
    assert _error(response)["code"] == "request_too_large"


def test_context_fitting_counts_each_message_once(monkeypatch):
    calls = []
    real = tokens.count_text
    monkeypatch.setattr(tokens, "count_text", lambda text: calls.append(1) or real(text))
    messages = [{"role": "user" if i % 2 else "assistant", "content": f"message number {i}"} for i in range(1001)]
    kept, dropped, total = prompting.fit_context(messages, limit=200, overflow="truncate")
    assert len(calls) == len(messages)  # re-counting per dropped message was ~n²/2 calls
    assert dropped == len(messages) - len(kept) and dropped > 900
    assert kept[-1] == messages[-1]
    assert total == tokens.count_messages(kept) <= 200


def test_context_fitting_drops_tool_results_with_their_call():
    messages = [
        {"role": "system", "content": "s"},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "content": "result " * 50, "tool_call_id": "1"},
        {"role": "user", "content": "last"},
    ]
    kept, dropped, _ = prompting.fit_context(messages, limit=30, overflow="truncate")
    assert [m["role"] for m in kept] == ["system", "user"] and dropped == 2


async def test_a_10000_message_request_does_not_stall_other_requests(
    live_asgi, api_key, funded, catalog_model, monkeypatch
):
    # A strict gateway refuses the conversation after counting all of it: validating and counting are the cost.
    strict = await asyncio.to_thread(
        gateway_create,
        organization=funded,
        name="Strict",
        catalog_model=catalog_model,
        context_max_tokens=1000,
        context_overflow="throw",
    )
    turn = "lorem ipsum dolor sit amet " * 10
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": turn} for i in range(10_000)]
    body = json.dumps({"model": strict.slug, "messages": messages}).encode()
    headers = {"Authorization": f"Bearer {api_key.raw}", "Content-Type": "application/json"}

    # Where the heavy work ran, not how long it took (timings flake on a shared machine): parsing, the quota's
    # token estimate and context fitting of a large request must run in a worker thread, never on the event loop
    # that serves every other request. /healthz keeps answering meanwhile.
    ran_on_loop: dict[str, list[bool]] = {}

    def watched(name, function):
        def wrapper(*args, **kwargs):
            try:
                asyncio.get_running_loop()
                on_loop = True
            except RuntimeError:
                on_loop = False
            ran_on_loop.setdefault(name, []).append(on_loop)
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(protocol, "parse_chat_request", watched("parse", protocol.parse_chat_request))
    monkeypatch.setattr(prompting, "prepare_call", watched("prepare", prompting.prepare_call))
    monkeypatch.setattr(gate, "estimate_prompt_tokens", watched("estimate", gate.estimate_prompt_tokens))
    with override_settings(CHAT_MAX_MESSAGES=20_000):
        async with httpx.AsyncClient(base_url=live_asgi.url, timeout=60) as http:
            await http.post("/api/v1/chat/completions", json={"model": strict.slug, "messages": _user("hi")})
            ran_on_loop.clear()
            chat = asyncio.create_task(http.post("/api/v1/chat/completions", content=body, headers=headers))
            while not chat.done():
                assert (await http.get("/healthz")).status_code == 200
            response = await chat
    assert response.status_code == 400
    assert _error(response)["code"] == "context_length_exceeded"
    assert ran_on_loop == {"parse": [False], "estimate": [False], "prepare": [False]}, ran_on_loop
