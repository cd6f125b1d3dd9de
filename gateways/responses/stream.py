"""Chat completion chunks in, the Responses API's semantic stream events out. Pure: no ORM, no HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateways import protocol as chat_protocol
from gateways.responses.items import new_item_id
from gateways.responses.objects import (
    function_call_item,
    output_annotations,
    output_text_part,
    response_object,
    status_for,
    usage_from_chat,
)
from gateways.responses.request import ResponsesRequest


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
        item: dict[str, Any] = {
            "id": new_item_id("msg"),
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
        }
        item["content"] = []
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
            item = function_call_item({**call, "function": {"name": function.get("name")}}, status="in_progress")
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
        status, incomplete = status_for(self.finish_reason)
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
