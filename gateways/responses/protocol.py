"""The OpenAI Responses protocol, pure (no ORM, no HTTP): request validation, translation to a chat-completions
request, and from a chat completion (or its chunk stream) back to a Response object (or semantic SSE events).

Shapes follow the official SDK types (openai/types/responses/*.py). What a chat-completions upstream cannot do
(built-in tools such as web_search, file inputs, item references, reasoning items) is refused with a 400 naming
the parameter; reasoning items in the input are dropped, as a chat upstream has nowhere to put them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aivax.errors import InvalidRequest
from gateways import protocol as chat_protocol
from gateways.protocol import ChatCompletionRequest

RESPONSE_ID_PREFIX = "resp_"
_CHAT_ID_PREFIX = "chatcmpl-"
_USER_ROLES = {"user", "system", "developer"}
_INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


class TextConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    format: dict[str, Any] | None = None


class ResponsesRequest(BaseModel):
    """Fields we act on. Others (reasoning, truncation, include, service_tier, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200)
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    text: TextConfig | None = None
    metadata: dict[str, str] | None = None
    stream: bool = False
    store: bool = True
    previous_response_id: str | None = Field(default=None, max_length=100)
    parallel_tool_calls: bool | None = None
    user: str | None = Field(default=None, max_length=256)


def _param(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and ("[" in part or part in {"str", "bool", "int", "float"}):
            continue  # pydantic's union-branch labels are not parameter names
        else:
            out += ("." if out else "") + str(part)
    return out


def parse_request(body: bytes) -> ResponsesRequest:
    """Validate a request body; any problem is a 400 naming the parameter, as OpenAI does."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("We could not parse the JSON body of your request.", code="invalid_json") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    try:
        request = ResponsesRequest.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        param = _param(tuple(error["loc"])) or None
        if error["type"] == "missing":
            raise InvalidRequest(
                f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
            ) from exc
        raise InvalidRequest(
            f"Invalid value for '{param}': {error['msg']}.", param=param, code="invalid_value"
        ) from exc
    if request.input == "" or request.input == []:
        raise InvalidRequest("'input' must not be empty.", param="input", code="invalid_value")
    return request


# -- input items ---------------------------------------------------------------------------------------------


def _unsupported(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="unsupported_value")


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(str(p.get("text") or p.get("refusal") or "") for p in value if isinstance(p, dict))
    return ""


def _content_parts(content: Any, role: str, param: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        kind = "output_text" if role == "assistant" else "input_text"
        return [{"type": kind, "text": content, **({"annotations": []} if role == "assistant" else {})}]
    if not isinstance(content, list):
        raise InvalidRequest(f"Invalid value for '{param}': a string or a list of content parts.", param=param)
    parts = []
    for index, part in enumerate(content):
        where = f"{param}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        valid = (
            (kind in ("input_text", "output_text") and isinstance(part.get("text"), str))
            or (kind == "refusal" and isinstance(part.get("refusal"), str))
            or (kind == "input_image" and role == "user" and isinstance(part.get("image_url"), str))
        )
        if valid:
            parts.append(part)
        elif kind in ("input_text", "output_text", "refusal", "input_image"):
            raise InvalidRequest(f"Invalid content part at '{where}'.", param=where, code="invalid_value")
        else:
            raise _unsupported(f"Content parts of type '{kind}' are not supported here.", f"{where}.type")
    return parts


_ID_PREFIXES = {"message": "msg", "function_call": "fc", "function_call_output": "fco"}


def normalize_input(value: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The request's input as Responses items of the kinds we keep (message, function_call, function_call_output),
    each with an id (the caller's, or a new one) as GET /responses/{id}/input_items lists them."""
    return [{**item, "id": item.get("id") or _item_id(_ID_PREFIXES[item["type"]])} for item in _input_items(value)]


def _input_items(value: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    items: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        param = f"input[{index}]"
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role not in _USER_ROLES | {"assistant"}:
                raise InvalidRequest(f"Invalid value for '{param}.role'.", param=f"{param}.role", code="invalid_value")
            parts = _content_parts(item.get("content"), role, f"{param}.content")
            kept = {"type": "message", "role": role, "content": parts}
            items.append({**kept, **({"id": item["id"]} if isinstance(item.get("id"), str) else {})})
        elif kind == "function_call":
            for name in ("call_id", "name", "arguments"):
                if not isinstance(item.get(name), str):
                    raise InvalidRequest(
                        f"Missing required parameter: '{param}.{name}'.",
                        param=f"{param}.{name}",
                        code="missing_required_parameter",
                    )
            items.append(
                {
                    "type": "function_call",
                    "call_id": item["call_id"],
                    "name": item["name"],
                    "arguments": item["arguments"],
                    **({"id": item["id"]} if isinstance(item.get("id"), str) else {}),
                }
            )
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str):
                raise InvalidRequest(
                    f"Missing required parameter: '{param}.call_id'.",
                    param=f"{param}.call_id",
                    code="missing_required_parameter",
                )
            output = item.get("output")
            if not isinstance(output, (str, list)):
                raise InvalidRequest(f"Invalid value for '{param}.output'.", param=f"{param}.output")
            kept = {"type": "function_call_output", "call_id": item["call_id"], "output": output}
            items.append({**kept, **({"id": item["id"]} if isinstance(item.get("id"), str) else {})})
        elif kind == "reasoning":
            continue  # a chat-completions upstream has no place for reasoning items
        else:
            raise _unsupported(f"Input items of type '{kind}' are not supported.", f"{param}.type")
    return items


def items_to_messages(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Responses items (input and earlier output) as a chat-completions conversation."""
    messages: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type")
        if kind == "message" and item.get("role") == "assistant":
            messages.append({"role": "assistant", "content": _text_of(item.get("content"))})
        elif kind == "message":
            parts = item.get("content") or []
            if all(p.get("type") != "input_image" for p in parts):
                content: Any = _text_of(parts)
            else:
                content = [
                    {"type": "image_url", "image_url": {"url": p["image_url"], "detail": p.get("detail") or "auto"}}
                    if p.get("type") == "input_image"
                    else {"type": "text", "text": p.get("text") or ""}
                    for p in parts
                ]
            messages.append({"role": item.get("role", "user"), "content": content})
        elif kind == "function_call":
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            }
            previous = messages[-1] if messages else None
            if previous is not None and previous["role"] == "assistant":
                # One assistant turn: its text and its (parallel) tool calls are one chat message.
                previous.setdefault("tool_calls", []).append(call)
                if previous.get("content") == "":
                    previous["content"] = None
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": _text_of(item["output"])})
    return messages


# -- request translation -------------------------------------------------------------------------------------


def _chat_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for index, tool in enumerate(tools):
        if tool.get("type") != "function":
            raise _unsupported(
                f"Tools of type '{tool.get('type')}' are not supported; use function tools.", f"tools[{index}].type"
            )
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise InvalidRequest(
                f"Missing required parameter: 'tools[{index}].name'.",
                param=f"tools[{index}].name",
                code="missing_required_parameter",
            )
        function = {key: tool[key] for key in ("name", "description", "parameters", "strict") if key in tool}
        out.append({"type": "function", "function": function})
    return out


def _chat_tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise InvalidRequest(f"Invalid value for 'tool_choice': '{choice}'.", param="tool_choice")
        return choice
    if choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise _unsupported("Only 'none', 'auto', 'required' or a function tool choice are supported.", "tool_choice")


def _response_format(fmt: dict[str, Any]) -> dict[str, Any] | None:
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        if not isinstance(fmt.get("name"), str) or not isinstance(fmt.get("schema"), dict):
            raise InvalidRequest(
                "'text.format' of type 'json_schema' needs a 'name' and a 'schema'.", param="text.format"
            )
        schema = {key: fmt[key] for key in ("name", "schema", "description", "strict") if key in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidRequest(f"Invalid value for 'text.format.type': '{kind}'.", param="text.format.type")


def chat_request(request: ResponsesRequest, items: list[dict[str, Any]]) -> ChatCompletionRequest:
    """The chat-completions request this Responses request stands for; `items` is the whole conversation."""
    messages = items_to_messages(items)
    if request.instructions:
        # A system message of the caller's: the gateway's own instruction and override policy apply as on chat.
        messages.insert(0, {"role": "system", "content": request.instructions})
    if not any(m["role"] != "system" for m in messages):
        raise InvalidRequest("'input' must contain at least one message or tool output.", param="input")
    payload: dict[str, Any] = {"model": request.model, "messages": messages, "stream": request.stream}
    for name in ("temperature", "top_p", "metadata", "user"):
        if getattr(request, name) is not None:
            payload[name] = getattr(request, name)
    if request.max_output_tokens is not None:
        payload["max_completion_tokens"] = request.max_output_tokens
    if request.tools:
        payload["tools"] = _chat_tools(request.tools)
    if request.tool_choice is not None:
        payload["tool_choice"] = _chat_tool_choice(request.tool_choice)
    if request.text is not None and request.text.format is not None:
        response_format = _response_format(request.text.format)
        if response_format is not None:
            payload["response_format"] = response_format
    return chat_protocol.parse_chat_request(chat_protocol.dumps(payload))


# Chat names in x-aivax-ignored-params, as a Responses caller spelled them.
CHAT_TO_RESPONSES_PARAM = {"max_completion_tokens": "max_output_tokens", "response_format": "text.format"}


# -- response objects ----------------------------------------------------------------------------------------


def response_id_for(chat_request_id: str) -> str:
    """resp_<hex> for chatcmpl-<hex>: the ledger's request id and the response id name the same request."""
    return RESPONSE_ID_PREFIX + chat_request_id.removeprefix(_CHAT_ID_PREFIX)


def chat_request_id_for(response_id: str) -> str:
    return _CHAT_ID_PREFIX + response_id.removeprefix(RESPONSE_ID_PREFIX)


def _item_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def output_annotations(annotations: list[dict[str, Any]] | None, text: str) -> list[dict[str, Any]]:
    """Chat annotations as Responses ones: a cited knowledge document is a `file_citation` of the whole answer
    (file_id and filename are the document's id and name) that keeps our `document_citation` details."""
    out: list[dict[str, Any]] = []
    for annotation in annotations or []:
        kind = annotation.get("type")
        if kind == "document_citation":
            citation = annotation.get("document_citation") or {}
            out.append(
                {
                    "type": "file_citation",
                    "file_id": citation.get("document_id"),
                    "filename": citation.get("document_name") or "",
                    "index": len(text),
                    "document_citation": citation,
                }
            )
        elif kind == "url_citation":
            out.append({"type": "url_citation", **(annotation.get("url_citation") or {})})
    return out


def usage_from_chat(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    if not usage:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    reasoning = int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + completion,
    }


def _status(finish_reason: str | None) -> tuple[str, dict[str, Any] | None]:
    reason = _INCOMPLETE_REASONS.get(finish_reason or "")
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def response_object(
    *,
    response_id: str,
    created_at: int,
    request: ResponsesRequest,
    status: str,
    model: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    generation_context: dict[str, Any] | None = None,
    incomplete_details: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    text_format = (request.text.format if request.text else None) or {"type": "text"}
    body: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": incomplete_details,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "model": model,
        "output": output,
        "parallel_tool_calls": True if request.parallel_tool_calls is None else request.parallel_tool_calls,
        "previous_response_id": request.previous_response_id,
        "service_tier": "default",
        "store": request.store,
        "temperature": request.temperature,
        "text": {"format": text_format},
        "tool_choice": request.tool_choice if request.tool_choice is not None else "auto",
        "tools": request.tools or [],
        "top_p": request.top_p,
        "truncation": "disabled",
        "usage": usage,
        "user": request.user,
        "metadata": request.metadata or {},
    }
    if generation_context is not None:
        body["generation_context"] = generation_context
    return body


def _function_call_item(call: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    function = call.get("function") or {}
    return {
        "id": _item_id("fc"),
        "type": "function_call",
        "status": status,
        "call_id": call.get("id") or _item_id("call"),
        "name": function.get("name") or "",
        "arguments": function.get("arguments") or "",
    }


def output_text_part(text: str, annotations: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}


def response_from_completion(
    completion: dict[str, Any], *, response_id: str, request: ResponsesRequest
) -> dict[str, Any]:
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    status, incomplete = _status(choice.get("finish_reason"))
    text = message.get("content")
    refusal = message.get("refusal")
    tool_calls = message.get("tool_calls") or []
    output: list[dict[str, Any]] = []
    if text or refusal or not tool_calls:
        parts = []
        if text or not refusal:
            parts.append(output_text_part(text or "", output_annotations(message.get("annotations"), text or "")))
        if refusal:
            parts.append({"type": "refusal", "refusal": refusal})
        output.append(
            {"id": _item_id("msg"), "type": "message", "status": status, "role": "assistant", "content": parts}
        )
    output += [_function_call_item(call) for call in tool_calls]
    return response_object(
        response_id=response_id,
        created_at=int(completion.get("created") or chat_protocol.now()),
        request=request,
        status=status,
        model=str(completion.get("model") or ""),
        output=output,
        usage=usage_from_chat(completion.get("usage")),
        generation_context=completion.get("generation_context"),
        incomplete_details=incomplete,
    )


def input_items_page(items: list[dict[str, Any]], *, limit: int, order: str, after: str | None) -> dict[str, Any]:
    """A stored conversation's input as OpenAI's list object (newest first unless order='asc')."""
    ordered = [{"status": "completed", **item} for item in (items if order == "asc" else reversed(items))]
    if after is not None:
        ids = [item.get("id") for item in ordered]
        if after not in ids:
            raise InvalidRequest(f"No input item with id '{after}'.", param="after", code="invalid_value")
        ordered = ordered[ids.index(after) + 1 :]
    page = ordered[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0].get("id") if page else None,
        "last_id": page[-1].get("id") if page else None,
        "has_more": len(ordered) > limit,
    }


# -- streaming -----------------------------------------------------------------------------------------------


def sse_event(event: dict[str, Any]) -> bytes:
    """One Responses event as OpenAI sends it: an `event:` line naming its type, then the `data:` line."""
    return b"event: " + event["type"].encode() + b"\ndata: " + chat_protocol.dumps(event) + b"\n\n"


@dataclass
class StreamTranslator:
    """chat.completion.chunk dicts in, Responses stream events out (dicts, numbered by `sequence_number`).

    start() -> feed(chunk)* -> finish() or fail(error). Output items are opened when their first delta arrives and
    closed (`*.done` events) when the next item starts or the stream ends, so each event can be flushed at once.
    """

    response_id: str
    created_at: int
    request: ResponsesRequest
    model: str = ""
    sequence: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    generation_context: dict[str, Any] | None = None
    finish_reason: str | None = None
    _text: list[str] = field(default_factory=list)
    _annotations: list[dict[str, Any]] = field(default_factory=list)
    _open_message: int | None = None
    _open_call: int | None = None
    _calls: dict[int, int] = field(default_factory=dict)  # chat tool-call index -> output index

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def snapshot(self, status: str, **extra: Any) -> dict[str, Any]:
        return response_object(
            response_id=self.response_id,
            created_at=self.created_at,
            request=self.request,
            status=status,
            model=self.model,
            output=[dict(item) for item in self.items],
            **extra,
        )

    def start(self) -> list[dict[str, Any]]:
        return [
            self._event("response.created", response=self.snapshot("in_progress")),
            self._event("response.in_progress", response=self.snapshot("in_progress")),
        ]

    def _open_text(self) -> list[dict[str, Any]]:
        events = self._close_call()
        item = {"id": _item_id("msg"), "type": "message", "status": "in_progress", "role": "assistant", "content": []}
        self.items.append(item)
        self._open_message = len(self.items) - 1
        self._text, self._annotations = [], []
        events.append(self._event("response.output_item.added", output_index=self._open_message, item=dict(item)))
        events.append(
            self._event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=self._open_message,
                content_index=0,
                part=output_text_part("", []),
            )
        )
        return events

    def _close_text(self, status: str = "completed") -> list[dict[str, Any]]:
        if self._open_message is None:
            return []
        index, self._open_message = self._open_message, None
        item = self.items[index]
        text = "".join(self._text)
        part = output_text_part(text, output_annotations(self._annotations, text))
        item.update(status=status, content=[part])
        common = {"item_id": item["id"], "output_index": index, "content_index": 0}
        return [
            self._event("response.output_text.done", **common, text=text, logprobs=[]),
            self._event("response.content_part.done", **common, part=part),
            self._event("response.output_item.done", output_index=index, item=dict(item)),
        ]

    def _close_call(self, status: str = "completed") -> list[dict[str, Any]]:
        if self._open_call is None:
            return []
        index, self._open_call = self._open_call, None
        item = self.items[index]
        item["status"] = status
        return [
            self._event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                name=item["name"],
                arguments=item["arguments"],
            ),
            self._event("response.output_item.done", output_index=index, item=dict(item)),
        ]

    def _tool_call_delta(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        chat_index = int(call.get("index") or 0)
        function = call.get("function") or {}
        if chat_index not in self._calls:
            events += self._close_text() + self._close_call()
            item = _function_call_item({**call, "function": {"name": function.get("name")}}, status="in_progress")
            self.items.append(item)
            self._calls[chat_index] = self._open_call = len(self.items) - 1
            events.append(self._event("response.output_item.added", output_index=self._open_call, item=dict(item)))
        index = self._calls[chat_index]
        item = self.items[index]
        if function.get("name") and not item["name"]:
            item["name"] = function["name"]
        delta = function.get("arguments") or ""
        if delta:
            item["arguments"] += delta
            if index == self._open_call:
                events.append(
                    self._event(
                        "response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=delta
                    )
                )
        return events

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        self.model = str(chunk.get("model") or self.model)
        if chunk.get("usage"):
            self.usage = usage_from_chat(chunk["usage"])
        if chunk.get("generation_context") is not None:
            self.generation_context = chunk["generation_context"]
        events: list[dict[str, Any]] = []
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                if self._open_message is None:
                    events += self._open_text()
                self._text.append(content)
                item = self.items[self._open_message]  # type: ignore[index]
                events.append(
                    self._event(
                        "response.output_text.delta",
                        item_id=item["id"],
                        output_index=self._open_message,
                        content_index=0,
                        delta=content,
                        logprobs=[],
                    )
                )
            if delta.get("annotations"):
                if self._open_message is None:
                    events += self._open_text()
                self._annotations += delta["annotations"]
            for call in delta.get("tool_calls") or []:
                events += self._tool_call_delta(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def finish(self) -> list[dict[str, Any]]:
        status, incomplete = _status(self.finish_reason)
        # An empty answer is still one (empty) message, as OpenAI sends it.
        events = self._open_text() if not self.items else []
        events += self._close_text(status) + self._close_call()
        final = self.snapshot(
            status, usage=self.usage, generation_context=self.generation_context, incomplete_details=incomplete
        )
        kind = "response.completed" if status == "completed" else "response.incomplete"
        events.append(self._event(kind, response=final))
        return events

    def fail(self, error: dict[str, Any]) -> list[dict[str, Any]]:
        """The chat stream ended with an error event: the response fails with that error (what was generated so
        far stays in `output`, marked incomplete)."""
        for item in self.items:
            if item.get("status") == "in_progress":
                item["status"] = "incomplete"
        if self._open_message is not None:
            text = "".join(self._text)
            self.items[self._open_message]["content"] = [output_text_part(text, [])]
        self._open_message = self._open_call = None
        detail = {"code": error.get("code") or "server_error", "message": error.get("message") or "The model failed."}
        final = self.snapshot("failed", usage=self.usage, generation_context=self.generation_context, error=detail)
        return [self._event("response.failed", response=final)]
