"""The playground's chat endpoint: session + CSRF instead of an API key, scoped to the current organization,
the gateway forced from the URL, and the inference service's SSE stream passed through."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.http import HttpResponse, StreamingHttpResponse
from django.test import Client

CHUNKS = [
    {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]},
    {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "lo"}}]},
    {
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        "generation_context": {"generated_usage": [], "runned_functions": [], "documents": []},
    },
]


@pytest.fixture
def fake_stream(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    async def console_chat_stream(*, organization_id: int, user_id: int, payload: dict[str, Any]) -> HttpResponse:
        calls.append({"organization_id": organization_id, "user_id": user_id, "payload": payload})

        async def events():
            for chunk in CHUNKS:
                yield f"data: {json.dumps(chunk)}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingHttpResponse(events(), content_type="text/event-stream")

    monkeypatch.setattr("gateways.chat.console_chat_stream", console_chat_stream)
    return calls


def _body(response: HttpResponse) -> bytes:
    if not getattr(response, "streaming", False):
        return response.content

    async def collect() -> bytes:
        return b"".join([part async for part in response.streaming_content])

    return async_to_sync(collect)()


def _chat(client: Client, gateway_id: object, body: object) -> HttpResponse:
    return client.post(
        f"/console/gateways/{gateway_id}/playground/chat", json.dumps(body), content_type="application/json"
    )


HELLO = {"messages": [{"role": "user", "content": "Hi"}], "stream": True}


def test_streams_the_inference_service_answer(as_dev: Client, teammate, org, gateway, fake_stream) -> None:
    body = {**HELLO, "model": "someone-else:ffff", "stream": False, "temperature": 0.1}
    response = _chat(as_dev, gateway.pk, body)
    assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
    text = _body(response).decode()
    assert text.endswith("data: [DONE]\n\n") and '"Hel"' in text
    (call,) = fake_stream
    assert call["organization_id"] == org.pk and call["user_id"] == teammate.pk
    payload = call["payload"]
    assert payload["model"] == str(gateway.pk)  # the URL's gateway, whatever the body said
    assert payload["stream"] is True and payload["stream_options"] == {"include_usage": True}
    assert payload["temperature"] == 0.1 and payload["messages"] == HELLO["messages"]


@pytest.mark.parametrize("body", [[], {"messages": []}, {"messages": "hi"}, {}])
def test_bad_bodies(as_owner: Client, gateway, fake_stream, body: object) -> None:
    response = _chat(as_owner, gateway.pk, body)
    assert response.status_code == 400 and response.json()["error"]["message"]
    assert not fake_stream


def test_not_json(as_owner: Client, gateway, fake_stream) -> None:
    response = as_owner.post(f"/console/gateways/{gateway.pk}/playground/chat", "nope", content_type="application/json")
    assert response.status_code == 400


def test_who_may_chat(db: None, as_billing: Client, as_outsider: Client, gateway, fake_stream) -> None:
    assert _chat(Client(), gateway.pk, HELLO).status_code == 401
    assert _chat(as_billing, gateway.pk, HELLO).status_code == 403
    denied = _chat(as_outsider, gateway.pk, HELLO)
    assert denied.status_code == 404 and denied.json()["error"]["code"] == "not_found"
    assert not fake_stream


def test_get_is_not_allowed(as_owner: Client, gateway) -> None:
    assert as_owner.get(f"/console/gateways/{gateway.pk}/playground/chat").status_code == 405


def test_unavailable_inference(as_owner: Client, gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr("gateways.chat.console_chat_stream")
    response = _chat(as_owner, gateway.pk, HELLO)
    assert response.status_code == 503 and "not available" in response.json()["error"]["message"]


def test_page_holds_no_key(as_owner: Client, gateway, api_key) -> None:
    html = as_owner.get(f"/console/gateways/{gateway.pk}/playground").content.decode()
    assert f'data-url="/console/gateways/{gateway.pk}/playground/chat"' in html
    assert api_key.raw not in html and "sk-aivax-" not in html
    assert 'name="csrf-token"' in html
