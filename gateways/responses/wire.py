"""Upstreams that speak the Responses API natively (a catalog model's or endpoint's `wire_api = "responses"`).

The chat service stays the one service: it builds a chat-completions payload as for any upstream, and the
upstream client (gateways/upstream.py) sends it through here to `POST {base_url}/responses` and reads the answer
back as a chat.completion (or chat.completion.chunk events). Pure functions, no I/O. Chat parameters the
Responses API does not have (stop, seed, penalties) are not sent; the upstream is asked not to store anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

_DROPPED = {"stop", "seed", "presence_penalty", "frequency_penalty", "stream_options", "n", "logit_bias"}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return ""


def _input_message(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if isinstance(content, list):
        parts = []
        for part in content:
            if part.get("type") == "image_url":
                image = part.get("image_url") or {}
                parts.append(
                    {"type": "input_image", "image_url": image.get("url"), "detail": image.get("detail", "auto")}
                )
            else:
                parts.append({"type": "input_text", "text": str(part.get("text") or "")})
        return {"type": "message", "role": message["role"], "content": parts}
    return {"type": "message", "role": message["role"], "content": _text(content)}


def input_items(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message.get("tool_call_id"),
                    "output": _text(message.get("content")),
                }
            )
        elif role == "assistant":
            text = _text(message.get("content"))
            if text:
                items.append({"type": "message", "role": "assistant", "content": text})
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                items.append(
                    {
                        "type": "function_call",
                        "call_id": call.get("id"),
                        "name": function.get("name"),
                        "arguments": function.get("arguments") or "",
                    }
                )
        else:
            items.append(_input_message({**message, "role": "user" if role == "function" else role}))
    return items


def responses_body(chat: dict[str, Any]) -> dict[str, Any]:
    """A chat-completions request body as a Responses request body."""
    body: dict[str, Any] = {"model": chat["model"], "input": input_items(chat.get("messages") or []), "store": False}
    for key, value in chat.items():
        if key in ("model", "messages") or key in _DROPPED or value is None:
            continue
        if key in ("max_tokens", "max_completion_tokens"):
            body["max_output_tokens"] = value
        elif key == "tools":
            body["tools"] = [{"type": "function", **(tool.get("function") or {})} for tool in value]
        elif key == "tool_choice":
            body["tool_choice"] = (
                {"type": "function", "name": value["function"]["name"]} if isinstance(value, dict) else value
            )
        elif key == "response_format":
            kind = value.get("type")
            if kind == "json_schema":
                body["text"] = {"format": {"type": "json_schema", **(value.get("json_schema") or {})}}
            elif kind in ("json_object", "text"):
                body["text"] = {"format": {"type": kind}}
        else:
            body[key] = value  # temperature, top_p, metadata, user, stream, parallel_tool_calls
    return body


def chat_usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    if not isinstance(usage, dict) or "input_tokens" not in usage:
        return None
    prompt = int(usage.get("input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    cached = int((usage.get("input_tokens_details") or {}).get("cached_tokens") or 0)
    reasoning = int((usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def _finish_reason(response: dict[str, Any], has_calls: bool) -> str:
    reason = (response.get("incomplete_details") or {}).get("reason")
    if reason == "max_output_tokens":
        return "length"
    if reason == "content_filter":
        return "content_filter"
    return "tool_calls" if has_calls else "stop"


def _tool_call(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item.get("call_id"),
        "type": "function",
        "function": {"name": item.get("name"), "arguments": item.get("arguments") or ""},
    }


def completion_from_response(response: dict[str, Any]) -> dict[str, Any]:
    """A Response object as a chat.completion. Anything that is not one (no `output` list) stays as it was, for
    the caller to refuse as an unexpected answer."""
    output = response.get("output")
    if not isinstance(output, list):
        return response
    texts: list[str] = []
    refusals: list[str] = []
    calls = []
    for item in output:
        if item.get("type") == "message":
            for part in item.get("content") or []:
                if part.get("type") == "output_text":
                    texts.append(str(part.get("text") or ""))
                elif part.get("type") == "refusal":
                    refusals.append(str(part.get("refusal") or ""))
        elif item.get("type") == "function_call":
            calls.append(_tool_call(item))
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if refusals:
        message["refusal"] = "".join(refusals)
    if calls:
        message["tool_calls"] = calls
    completion: dict[str, Any] = {
        "id": response.get("id"),
        "object": "chat.completion",
        "created": int(response.get("created_at") or 0),
        "model": response.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": _finish_reason(response, bool(calls))}],
    }
    usage = chat_usage(response.get("usage"))
    if usage is not None:
        completion["usage"] = usage
    return completion


@dataclass
class ChunkTranslator:
    """Responses stream events in, chat.completion.chunk dicts out (an `{"error": ...}` dict for a failure)."""

    started: bool = False
    calls: dict[int, int] = field(default_factory=dict)  # output_index -> chat tool-call index

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        if not self.started:
            self.started = True
            delta = {"role": "assistant", **delta}
        return {
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind == "response.output_text.delta":
            return [self._chunk({"content": str(event.get("delta") or "")})]
        if kind == "response.output_item.added" and (event.get("item") or {}).get("type") == "function_call":
            item = event["item"]
            index = self.calls.setdefault(int(event.get("output_index") or 0), len(self.calls))
            call = {"index": index, **_tool_call(item)}
            return [self._chunk({"tool_calls": [call]})]
        if kind == "response.function_call_arguments.delta":
            open_call = self.calls.get(int(event.get("output_index") or 0))
            if open_call is None:
                return []
            return [
                self._chunk({"tool_calls": [{"index": open_call, "function": {"arguments": event.get("delta") or ""}}]})
            ]
        if kind in ("response.completed", "response.incomplete"):
            response = event.get("response") or {}
            chunks = [self._chunk({}, _finish_reason(response, bool(self.calls)))]
            usage = chat_usage(response.get("usage"))
            if usage is not None:
                chunks.append({"object": "chat.completion.chunk", "choices": [], "usage": usage})
            return chunks
        if kind in ("response.failed", "error"):
            error = (event.get("response") or {}).get("error") or event
            return [{"error": {"message": str(error.get("message") or "the response failed")}}]
        return []


def chunk_lines(lines: list[str], translator: ChunkTranslator) -> list[str]:
    """Lines of a Responses SSE stream as `data:` lines of chat chunks (other lines are dropped)."""
    out = []
    for line in lines:
        if not line.startswith("data:"):
            continue
        try:
            event = json.loads(line[5:].strip())
        except ValueError:
            continue
        if isinstance(event, dict):
            out += ["data: " + json.dumps(chunk) for chunk in translator.feed(event)]
    return out
