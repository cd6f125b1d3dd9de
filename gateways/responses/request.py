"""Responses API requests: validation (every problem a 400 naming the parameter, as OpenAI does) and translation
to the chat-completions request the one chat service runs. Pure: no ORM, no HTTP.

Shapes follow the official SDK types (openai/types/responses/*.py). What a chat-completions upstream cannot do
(built-in tools such as web_search, file inputs, item references) is refused with a 400 naming the parameter.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aivax.errors import InvalidRequest
from gateways import protocol as chat_protocol
from gateways.protocol import ChatCompletionRequest
from gateways.responses.items import items_to_messages, unsupported


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


def _chat_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for index, tool in enumerate(tools):
        if tool.get("type") != "function":
            raise unsupported(
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
    raise unsupported("Only 'none', 'auto', 'required' or a function tool choice are supported.", "tool_choice")


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
