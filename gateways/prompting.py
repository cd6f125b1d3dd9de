"""From a gateway's configuration and a caller's request to the upstream payload. Pure functions, no I/O.

Order of the conversation sent upstream: the gateway's system instruction, the caller's messages (the last user
message passed through the user prompt template; grounding text inserted before it), then the assistant
prefill as a trailing assistant message that the model continues.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import Any

from aivax import tokens
from aivax.errors import InvalidRequest
from gateways.protocol import ChatCompletionRequest
from gateways.resolve import GatewayConfig

# Request field -> the override-policy name that allows it.
OVERRIDE_POLICY = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
    "stop": "stop",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "tools": "tools",
    "tool_choice": "tools",
    "response_format": "response_format",
}
# Room kept for the answer when the conversation is truncated to the window and nobody set a maximum.
ANSWER_ROOM_TOKENS = 1024


@dataclass
class PreparedCall:
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    prompt_token_estimate: int
    max_completion_tokens: int | None  # what the request or the gateway asks for (None: as much as fits)
    ignored_overrides: list[str] = field(default_factory=list)
    truncated_messages: int = 0


def effective_params(config: GatewayConfig, request: ChatCompletionRequest) -> tuple[dict[str, Any], list[str]]:
    """Gateway values, replaced by the request's where the override policy allows. Returns (params, ignored)."""
    params: dict[str, Any] = {
        "temperature": config.temperature,
        "top_p": config.top_p,
        "max_completion_tokens": config.max_completion_tokens,
        "stop": config.stop or None,
        "seed": config.seed,
        "presence_penalty": config.presence_penalty,
        "frequency_penalty": config.frequency_penalty,
    }
    ignored: list[str] = []
    for name, policy in OVERRIDE_POLICY.items():
        value = getattr(request, name)
        if value is None:
            continue
        if policy not in config.overridable:
            ignored.append(name)
            continue
        params["max_completion_tokens" if name == "max_tokens" else name] = value
    if request.user is not None:
        params["user"] = request.user
    return {k: v for k, v in params.items() if v is not None}, sorted(ignored)


def _apply_template(message: dict[str, Any], template: str) -> dict[str, Any]:
    content = message.get("content")
    if isinstance(content, str):
        return {**message, "content": template.replace("{prompt}", content)}
    if isinstance(content, list):
        parts = copy.deepcopy(content)
        for part in parts:
            if part.get("type") == "text":
                part["text"] = template.replace("{prompt}", part.get("text", ""))
                break
        return {**message, "content": parts}
    return message


def last_user_index(messages: list[dict[str, Any]]) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index]["role"] == "user":
            return index
    return None


def build_messages(
    config: GatewayConfig, request: ChatCompletionRequest, grounding: str | None = None
) -> list[dict[str, Any]]:
    messages = [m.model_dump(exclude_none=True) for m in request.messages]
    last_user = last_user_index(messages)
    if last_user is not None and config.user_prompt_template:
        messages[last_user] = _apply_template(messages[last_user], config.user_prompt_template)
    if grounding and last_user is not None:
        messages.insert(last_user, {"role": "user", "content": grounding})
    if config.system_instruction:
        messages.insert(0, {"role": "system", "content": config.system_instruction})
    if config.assistant_prefill:
        messages.append({"role": "assistant", "content": config.assistant_prefill})
    return messages


def fit_context(messages: list[dict[str, Any]], *, limit: int, overflow: str) -> tuple[list[dict[str, Any]], int, int]:
    """Keep the conversation within `limit` prompt tokens: drop the oldest messages, but never system messages,
    the last user message or anything after it; or refuse when the gateway says so.

    Linear: each message is counted once and the oldest are dropped against a running total (re-counting the
    conversation for each dropped message made a 3,000-message request cost seconds of CPU).
    Returns (kept messages, how many were dropped, the prompt-token count of what is kept)."""
    counts = [tokens.count_message(m) for m in messages]
    total = tokens.conversation_total(counts)
    if total <= limit:
        return messages, 0, total
    if overflow == "throw":
        raise InvalidRequest(
            f"This conversation has about {total} tokens, more than this gateway's context limit of {limit}.",
            param="messages",
            code="context_length_exceeded",
        )
    last_user = last_user_index(messages)
    protected_from = last_user if last_user is not None else len(messages) - 1
    dropped_at: set[int] = set()
    index = 0
    while total > limit and index < protected_from:
        role = messages[index]["role"]
        if role in ("system", "developer"):
            index += 1
            continue
        dropped_at.add(index)
        total -= counts[index]
        index += 1
        # An assistant tool call without its tool results (or the reverse) is invalid upstream: drop them together.
        while role == "assistant" and index < len(messages) and messages[index]["role"] == "tool":
            dropped_at.add(index)
            total -= counts[index]
            index += 1
    if total > limit:
        raise InvalidRequest(
            f"The last message alone exceeds this gateway's context limit of {limit} tokens.",
            param="messages",
            code="context_length_exceeded",
        )
    kept = [m for i, m in enumerate(messages) if i not in dropped_at]
    return kept, len(dropped_at), total


def prepare_call(
    config: GatewayConfig, request: ChatCompletionRequest, *, context_window: int, grounding: str | None = None
) -> PreparedCall:
    """The messages and parameters of the upstream call. The answer's cap is not among the parameters: the meter
    decides it (`Meter.hold_round`) from `max_completion_tokens` and what the balance can pay."""
    params, ignored = effective_params(config, request)
    asked = params.pop("max_completion_tokens", None)
    max_completion = int(asked) if asked is not None else None
    messages = build_messages(config, request, grounding)
    limit = config.context_max_tokens or max(context_window - (max_completion or ANSWER_ROOM_TOKENS), 256)
    messages, dropped, prompt_tokens = fit_context(messages, limit=limit, overflow=config.context_overflow)
    return PreparedCall(
        messages=messages,
        params=params,
        prompt_token_estimate=prompt_tokens,
        max_completion_tokens=max_completion,
        ignored_overrides=ignored,
        truncated_messages=dropped,
    )


# Above this much text (or this many messages), preparing a call runs in a worker thread: tokenizing it would
# otherwise hold the event loop (and every other request and stream on it) for milliseconds to seconds.
OFFLOAD_MIN_CHARS = 32_768
OFFLOAD_MIN_MESSAGES = 64


async def aprepare_call(
    config: GatewayConfig, request: ChatCompletionRequest, *, context_window: int, grounding: str | None = None
) -> PreparedCall:
    """prepare_call, off the event loop when the request is large."""
    if len(request.messages) < OFFLOAD_MIN_MESSAGES and _text_size(request, grounding) < OFFLOAD_MIN_CHARS:
        return prepare_call(config, request, context_window=context_window, grounding=grounding)
    return await asyncio.to_thread(prepare_call, config, request, context_window=context_window, grounding=grounding)


def _text_size(request: ChatCompletionRequest, grounding: str | None) -> int:
    size = len(grounding or "")
    for message in request.messages:
        content = message.content
        if isinstance(content, str):
            size += len(content)
        elif isinstance(content, list):
            size += sum(len(str(part.get("text") or "")) for part in content)
    return size
