"""The one place the Responses face calls the chat service.

`run_chat` hands a chat request to `gateways.chat.handle_chat` (so grounding, overrides, truncation, billing,
rate limits and errors are the chat service's own) and gives back either the chat.completion dict or an async
iterator of chat.completion.chunk dicts. Today it reads handle_chat's HTTP response (JSON body or SSE bytes);
when the chat service offers an internal seam returning those dicts directly, only this module changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from django.http import StreamingHttpResponse

from gateways.chat import Caller, handle_chat
from gateways.protocol import ChatCompletionRequest

KEEPALIVE: dict[str, Any] = {"_keepalive": True}  # a silent upstream: the caller sends a keep-alive comment
_INFO_HEADERS = ("x-request-id", "x-aivax-gateway", "x-aivax-ignored-params", "x-aivax-truncated-messages")


@dataclass
class ChatResult:
    request_id: str  # the chat service's request id: the ledger's key for this request
    headers: dict[str, str]
    completion: dict[str, Any] | None = None  # non-streaming
    chunks: AsyncIterator[dict[str, Any]] | None = None  # streaming; KEEPALIVE marks a keep-alive


async def _chunks(response: StreamingHttpResponse) -> AsyncIterator[dict[str, Any]]:
    # The relay's own generator (not Django's wrapper around it), so closing ours closes it at once: a client
    # that goes away stops the upstream call and bills what was generated, exactly as on chat completions.
    source = response._iterator
    buffer = b""
    try:
        async for part in source:
            buffer += bytes(part)
            while b"\n\n" in buffer:
                raw, buffer = buffer.split(b"\n\n", 1)
                if raw.startswith(b":"):
                    yield KEEPALIVE
                    continue
                data = b"\n".join(line[5:].lstrip() for line in raw.split(b"\n") if line.startswith(b"data:"))
                if not data:
                    continue
                if data == b"[DONE]":
                    return
                yield orjson.loads(data)
    finally:
        with contextlib.suppress(Exception):
            await source.aclose()


async def run_chat(caller: Caller, request: ChatCompletionRequest) -> ChatResult:
    """Errors before the first byte are raised (ApiError) as on chat completions; errors during a stream arrive
    as a final `{"error": {...}}` chunk."""
    response = await handle_chat(caller, request, force_usage=True)
    headers = {name: response[name] for name in _INFO_HEADERS if response.has_header(name)}
    if response.has_header("Server-Timing"):
        headers["Server-Timing"] = response["Server-Timing"]
    result = ChatResult(request_id=response["x-request-id"], headers=headers)
    if isinstance(response, StreamingHttpResponse):
        result.chunks = _chunks(response)
    else:
        result.completion = orjson.loads(response.content)
    return result
