"""Responses input items: the request's input normalised (with ids), stored conversations turned into chat
messages, and listed as GET /responses/{id}/input_items pages. Pure: no ORM, no HTTP. Reasoning items in the
input are dropped, as a chat upstream has nowhere to put them."""

from __future__ import annotations

import uuid
from typing import Any

from aivax.errors import InvalidRequest

_USER_ROLES = {"user", "system", "developer"}


def new_item_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def unsupported(message: str, param: str) -> InvalidRequest:
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
        part_kind = part.get("type") if isinstance(part, dict) else None
        valid = (
            (part_kind in ("input_text", "output_text") and isinstance(part.get("text"), str))
            or (part_kind == "refusal" and isinstance(part.get("refusal"), str))
            or (part_kind == "input_image" and role == "user" and isinstance(part.get("image_url"), str))
        )
        if valid:
            parts.append(part)
        elif part_kind in ("input_text", "output_text", "refusal", "input_image"):
            raise InvalidRequest(f"Invalid content part at '{where}'.", param=where, code="invalid_value")
        else:
            raise unsupported(f"Content parts of type '{part_kind}' are not supported here.", f"{where}.type")
    return parts


_ID_PREFIXES = {"message": "msg", "function_call": "fc", "function_call_output": "fco"}


def normalize_input(value: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The request's input as Responses items of the kinds we keep (message, function_call, function_call_output),
    each with an id (the caller's, or a new one) as GET /responses/{id}/input_items lists them."""
    return [{**item, "id": item.get("id") or new_item_id(_ID_PREFIXES[item["type"]])} for item in _input_items(value)]


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
            raise unsupported(f"Input items of type '{kind}' are not supported.", f"{param}.type")
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
