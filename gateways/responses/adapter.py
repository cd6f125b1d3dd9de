"""The one place the Responses face calls the chat service: `gateways.chat.run_chat`, the service's protocol-neutral
seam (grounding, overrides, truncation, holds and billing, rate limits and errors are the chat service's own). It
gives back either the chat.completion dict or an async iterator of chat.completion.chunk dicts (the final one
carries `generation_context`; `KEEPALIVE` marks a silent upstream; a failed stream ends with an `{"error": ...}`
chunk). Closing the iterator closes the upstream call and bills what was generated, as on chat completions.
"""

from __future__ import annotations

from gateways import chat, relay
from gateways.chat import Caller, ChatResult
from gateways.protocol import ChatCompletionRequest

__all__ = ["KEEPALIVE", "ChatResult", "run_chat"]

KEEPALIVE = relay.KEEPALIVE


async def run_chat(caller: Caller, request: ChatCompletionRequest) -> ChatResult:
    """Errors before the first byte are raised (ApiError) as on chat completions."""
    return await chat.run_chat(caller, request, include_usage=True)
