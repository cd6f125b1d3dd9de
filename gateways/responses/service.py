"""A Responses request end to end: the conversation (earlier stored turns + this input) -> the chat service ->
a Response object or its semantic event stream -> stored (when `store`) for GET and `previous_response_id`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from aivax.db import run_db
from aivax.errors import ApiError
from gateways import protocol as chat_protocol
from gateways.chat import Caller
from gateways.responses import adapter, selectors, services
from gateways.responses.items import normalize_input
from gateways.responses.objects import response_from_completion, response_id_for
from gateways.responses.request import CHAT_TO_RESPONSES_PARAM, ResponsesRequest, chat_request, parse_request
from gateways.responses.stream import StreamTranslator, sse_event
from gateways.tools.loop import Comment

logger = logging.getLogger(__name__)


def _headers(chat_headers: dict[str, str]) -> dict[str, str]:
    headers = dict(chat_headers)
    if "x-aivax-ignored-params" in headers:
        names = headers["x-aivax-ignored-params"].split(",")
        headers["x-aivax-ignored-params"] = ",".join(CHAT_TO_RESPONSES_PARAM.get(n, n) for n in names)
    return headers


async def _conversation(caller: Caller, request: ResponsesRequest) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = []
    if request.previous_response_id:
        previous = await run_db(
            selectors.response_get,
            organization_id=caller.organization_id,
            response_id=request.previous_response_id,
            param="previous_response_id",
        )
        history = [*previous.input_items, *previous.body.get("output", [])]
    return [*history, *normalize_input(request.input)]


async def _store(caller: Caller, body: dict[str, Any], items: list[dict[str, Any]]) -> None:
    # The request is answered and billed by now; a failed write loses only the stored copy, so it is logged, not
    # turned into an error for a response the caller has already paid for.
    try:
        await run_db(services.response_store, organization_id=caller.organization_id, body=body, input_items=items)
    except Exception:
        logger.exception("storing response %s failed", body.get("id"))


async def handle_response(caller: Caller, request: ResponsesRequest) -> HttpResponseBase:
    items = await _conversation(caller, request)
    result = await adapter.run_chat(caller, chat_request(request, items))
    response_id = response_id_for(result.request_id)
    headers = _headers(result.headers)
    response: HttpResponseBase
    if result.completion is not None:
        body = response_from_completion(result.completion, response_id=response_id, request=request)
        if request.store:
            await _store(caller, body, items)
        response = HttpResponse(chat_protocol.dumps(body), content_type="application/json")
    else:
        assert result.chunks is not None
        translator = StreamTranslator(response_id=response_id, created_at=chat_protocol.now(), request=request)
        response = StreamingHttpResponse(
            _events(caller, request, items, translator, result.chunks), content_type="text/event-stream"
        )
        headers = {**chat_protocol.SSE_HEADERS, **headers}
    for key, value in headers.items():
        response[key] = value
    return response


async def _events(
    caller: Caller,
    request: ResponsesRequest,
    items: list[dict[str, Any]],
    translator: StreamTranslator,
    chunks: AsyncIterator[dict[str, Any]],
) -> AsyncIterator[bytes]:
    try:
        for event in translator.start():
            yield sse_event(event)
        async for chunk in chunks:
            if chunk is adapter.KEEPALIVE:
                yield chat_protocol.SSE_KEEPALIVE
                continue
            if isinstance(chunk, Comment):  # progress while server-side tools run
                yield chat_protocol.sse_comment(chunk.text)
                continue
            if isinstance(chunk.get("error"), dict):
                final = translator.fail(chunk["error"])
                break
            for event in translator.feed(chunk):
                yield sse_event(event)
        else:
            final = translator.finish()
        # Stored before the last event, so a client that retrieves the response right after it finds it.
        if request.store:
            await _store(caller, final[-1]["response"], items)
        for event in final:
            yield sse_event(event)
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


async def console_responses_stream(*, organization_id: int, user_id: int, payload: dict[str, Any]) -> HttpResponseBase:
    """The playground's Responses mode: its chat-shaped body (messages, max_tokens) as a streamed, unstored
    Responses request by the signed-in user. Errors are OpenAI error objects, as on the API."""
    body: dict[str, Any] = {
        "model": payload.get("model"),
        "input": payload.get("messages"),
        "stream": True,
        "store": False,
    }
    for name in ("temperature", "instructions"):
        if name in payload:
            body[name] = payload[name]
    if "max_tokens" in payload:
        body["max_output_tokens"] = payload["max_tokens"]
    try:
        request = parse_request(chat_protocol.dumps(body))
        return await handle_response(Caller(organization_id=organization_id, key_id=None), request)
    except ApiError as error:
        return JsonResponse(error.body(), status=error.status)
