"""The OpenAI chat-completions protocol, in one pure module (no ORM, no HTTP): request validation, response and
chunk shapes, SSE framing and JSON encoding. The seed's `data: [END]` terminator breaks every OpenAI SDK, so
streams end with OpenAI's `data: [DONE]`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from aivax import inputs
from aivax.errors import InvalidRequest
from billing.money import dumps as money_dumps

SSE_DONE = b"data: [DONE]\n\n"
SSE_KEEPALIVE = b": keep-alive\n\n"
SSE_HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",  # nginx and friends: do not buffer this response
    "Connection": "keep-alive",
}
Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
# Integer columns and the widest integers upstreams accept: larger values are refused here, not by the database.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
# Request-size caps (settings may lower or raise them): past them a request is refused before any tokenizing.
DEFAULT_MAX_MESSAGES = 2048
DEFAULT_MAX_INPUT_CHARS = 4_000_000


def dumps(value: Any) -> bytes:
    """Money (Decimal) as exact JSON numbers with fixed decimals, never through a float (billing.money)."""
    return money_dumps(value)


def sse_event(payload: dict[str, Any]) -> bytes:
    return b"data: " + dumps(payload) + b"\n\n"


def sse_comment(text: str) -> bytes:
    """A comment line (ignored by SSE clients): progress notes such as ``: running tool <name>``."""
    return b": " + " ".join(text.split()).encode() + b"\n\n"


def new_completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(max_length=256)
    arguments: str = ""


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = Field(default=None, max_length=256)
    type: str = "function"
    function: FunctionCall


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[dict[str, Any]] | None = None
    name: str | None = Field(default=None, max_length=256)
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = Field(default=None, max_length=256)

    @field_validator("content")
    @classmethod
    def _parts_are_well_formed(cls, value: Any) -> Any:
        if isinstance(value, list):
            for index, part in enumerate(value):
                if not isinstance(part.get("type"), str):
                    raise ValueError(f"content part {index} needs a 'type'")
                if part["type"] == "text" and not isinstance(part.get("text"), str):
                    raise ValueError(f"content part {index} is of type 'text' and needs a string 'text'")
        return value


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """Fields we act on. Anything else is accepted and ignored (see KNOWN_IGNORED in docs)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=INT32_MAX)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=INT32_MAX)
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=-INT64_MAX - 1, le=INT64_MAX)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    user: str | None = Field(default=None, max_length=256)
    n: int | None = Field(default=None, ge=1, le=1)

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: str | list[str] | None) -> list[str] | None:
        if value is None:
            return None
        items = [value] if isinstance(value, str) else value
        if len(items) > 4:
            raise ValueError("at most 4 stop sequences")
        return items

    @field_validator("metadata")
    @classmethod
    def _metadata_size(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and (len(value) > 16 or any(len(k) > 64 or len(v) > 512 for k, v in value.items())):
            raise ValueError("up to 16 pairs, keys up to 64 and values up to 512 characters")
        return value

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def ignored_fields(self) -> list[str]:
        return sorted((self.model_extra or {}).keys())


def _param_from_loc(loc: tuple[Any, ...]) -> str:
    return inputs.param_name(loc) or ""


# pydantic validates while holding the GIL: a long conversation is validated a batch of messages at a time, so a
# caller running this in a worker thread (gateways/api.py does for large bodies) lets the event loop in between.
_MESSAGES_BATCH = 256
_messages_adapter: TypeAdapter[list[Message]] = TypeAdapter(list[Message])


def _validate(data: dict[str, Any]) -> ChatCompletionRequest:
    messages = data.get("messages")
    if not isinstance(messages, list) or len(messages) <= _MESSAGES_BATCH:
        return ChatCompletionRequest.model_validate(data)
    request = ChatCompletionRequest.model_validate({**data, "messages": messages[:_MESSAGES_BATCH]})
    validated = list(request.messages)
    for start in range(_MESSAGES_BATCH, len(messages), _MESSAGES_BATCH):
        try:
            validated += _messages_adapter.validate_python(messages[start : start + _MESSAGES_BATCH])
        except ValidationError as exc:
            # Report the position in the whole conversation, as one validation of it would have.
            errors = exc.errors(include_url=False)
            for error in errors:
                loc = list(error["loc"])
                error["loc"] = ("messages", start + loc[0], *loc[1:]) if loc and isinstance(loc[0], int) else loc
            raise ValidationError.from_exception_data(exc.title, errors) from None  # type: ignore[arg-type]
    return request.model_copy(update={"messages": validated})


def request_schema() -> dict[str, Any]:
    """ChatCompletionRequest's JSON schema with its definitions inlined (an OpenAPI operation cannot carry $defs)."""
    schema = ChatCompletionRequest.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(definitions[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return inline(schema)


def _text_size(message: Message) -> int:
    content = message.content
    size = len(content) if isinstance(content, str) else 0
    if isinstance(content, list):
        size += sum(len(part["text"]) for part in content if part["type"] == "text")
    for call in message.tool_calls or []:
        size += len(call.function.name) + len(call.function.arguments)
    return size


@dataclass(frozen=True)
class RequestLimits:
    """How big a chat request may be before it is refused outright (settings CHAT_MAX_MESSAGES and
    CHAT_MAX_INPUT_CHARS): the caps that keep validation, tokenizing and context fitting bounded."""

    max_messages: int = DEFAULT_MAX_MESSAGES
    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS

    @classmethod
    def from_settings(cls) -> RequestLimits:
        from django.conf import settings

        return cls(
            max_messages=int(settings.CHAT_MAX_MESSAGES),
            max_input_chars=int(settings.CHAT_MAX_INPUT_CHARS),
        )


def parse_chat_request(body: bytes, limits: RequestLimits | None = None) -> ChatCompletionRequest:
    """Validate a request body; any problem is a 400 naming the parameter, as OpenAI does.

    Cheap checks first (JSON shape, NUL characters, nesting depth, message count), so an oversized request is
    refused before pydantic builds thousands of objects for it."""
    limits = limits or RequestLimits.from_settings()
    data = inputs.loads(body)
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    messages = data.get("messages")
    if isinstance(messages, list) and len(messages) > limits.max_messages:
        raise InvalidRequest(
            f"Invalid value for 'messages': {len(messages)} messages, more than the {limits.max_messages} allowed.",
            param="messages",
            code="too_many_messages",
        )
    try:
        request = _validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        param = _param_from_loc(tuple(error["loc"])) or None
        if error["type"] == "missing":
            message = f"Missing required parameter: '{param}'."
            code = "missing_required_parameter"
        else:
            message = f"Invalid value for '{param}': {error['msg']}."
            code = "invalid_value"
        raise InvalidRequest(message, param=param, code=code) from exc
    size = sum(_text_size(m) for m in request.messages)
    if size > limits.max_input_chars:
        raise InvalidRequest(
            f"Invalid value for 'messages': {size} characters of text, more than the {limits.max_input_chars} allowed.",
            param="messages",
            code="request_too_large",
        )
    return request


def completion_response(
    *,
    completion_id: str,
    created: int,
    model: str,
    message: dict[str, Any],
    finish_reason: str | None,
    usage: dict[str, Any],
    generation_context: dict[str, Any],
    system_fingerprint: str | None = None,
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": system_fingerprint,
        "generation_context": generation_context,
    }


def assistant_message(
    content: str | None,
    tool_calls: list[dict[str, Any]] | None,
    refusal: str | None = None,
    annotations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": content,
        "refusal": refusal,
        "annotations": annotations or [],
        "tool_calls": tool_calls or [],
    }


def chunk(
    *,
    completion_id: str,
    created: int,
    model: str,
    delta: dict[str, Any],
    finish_reason: str | None = None,
    usage: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    with_choice: bool = True,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
        if with_choice
        else [],
        "usage": usage,
    }
    if extra:
        body.update(extra)
    return body


def usage_object(prompt_tokens: int, completion_tokens: int, cached_tokens: int | None) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    usage["prompt_tokens_details"] = {"cached_tokens": cached_tokens or 0}
    return usage


def now() -> int:
    return int(time.time())
