"""Response objects, built from what the chat service answered. Pure: no ORM, no HTTP."""

from __future__ import annotations

from typing import Any

from gateways import protocol as chat_protocol
from gateways.responses.items import new_item_id
from gateways.responses.request import ResponsesRequest

RESPONSE_ID_PREFIX = "resp_"
_CHAT_ID_PREFIX = "chatcmpl-"
_INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


def response_id_for(chat_request_id: str) -> str:
    """resp_<hex> for chatcmpl-<hex>: the ledger's request id and the response id name the same request."""
    return RESPONSE_ID_PREFIX + chat_request_id.removeprefix(_CHAT_ID_PREFIX)


def chat_request_id_for(response_id: str) -> str:
    return _CHAT_ID_PREFIX + response_id.removeprefix(RESPONSE_ID_PREFIX)


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


def status_for(finish_reason: str | None) -> tuple[str, dict[str, Any] | None]:
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


def function_call_item(call: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    function = call.get("function") or {}
    return {
        "id": new_item_id("fc"),
        "type": "function_call",
        "status": status,
        "call_id": call.get("id") or new_item_id("call"),
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
    status, incomplete = status_for(choice.get("finish_reason"))
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
            {"id": new_item_id("msg"), "type": "message", "status": status, "role": "assistant", "content": parts}
        )
    output += [function_call_item(call) for call in tool_calls]
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
