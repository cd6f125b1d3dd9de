"""The server-side tool loop: the one place where a model round that calls the gateway's own tools is answered
by the gateway (knowledge search under QueryFunction, tenants' HTTP functions and MCP tools alike).

A round: hold its worst case (the caller held the first), call the model, and if every call it makes is to a
server-side tool, run them (in parallel, gateways.tools.runtime), append the assistant message and the tool
results, record the round in the meter and go again; at most `max_rounds` rounds, the last with
``tool_choice: "none"``. A round that answers, or that calls any tool the gateway does not own, is the final
one: it goes to the client (the gateway's own calls filtered out of it) and is settled by the caller as usual.

Streaming (`stream`): the final round's tokens are relayed as they arrive. Content of every round is forwarded
live; tool-call deltas are assembled and held until the round ends, because only then is it known whether the
round is the gateway's to answer. While tools run the client gets SSE comments (``: running tool <name>``), and
the stream opens with one at once, so the first byte leaves before the first model round ends. Rounds after the
first stay on the upstream that answered the first: the relay bills the final round at that model's prices.

Crash notes: a round recorded with `add_round` is billed at settlement even if a later round fails; a round that
fails before answering is released with the request's hold (the caller's `release`/`abandon`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aivax import tokens
from gateways import protocol
from gateways.metering import Meter, Usage
from gateways.tools.runtime import ServerTool, call_name, owned_by_server, run_tool_calls
from gateways.upstream import Upstream, iter_sse_chunks, open_with_retries, read_json


class Comment(dict):  # type: ignore[type-arg]
    """A progress note in a chunk stream: framed as an SSE comment, ignored by every client."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


def client_calls(calls: list[dict[str, Any]], tools: Mapping[str, ServerTool]) -> list[dict[str, Any]]:
    """The calls the client should see: never the gateway's own tools."""
    return [call for call in calls if call_name(call) not in tools]


@dataclass
class ToolLoop:
    upstreams: list[Upstream]
    payload: dict[str, Any]
    meter: Meter
    tools: Mapping[str, ServerTool]
    runned: list[dict[str, Any]]
    requested: int | None = None
    max_rounds: int = 4
    rounds: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.payload = {**self.payload, "messages": list(self.payload["messages"])}
        self.max_rounds = max(1, self.max_rounds)

    def _prompt_tokens(self) -> int:
        count = tokens.count_messages(self.payload["messages"])
        if self.payload.get("tools"):
            count += tokens.count_text(protocol.dumps(self.payload["tools"]).decode())
        return count

    async def _next_round(self, upstreams: list[Upstream]) -> None:
        """Prepare round `self.rounds` (0-based): the last may not call tools; every round after the first holds
        its own worst case, the prompt having grown by the tool results."""
        if self.rounds == self.max_rounds - 1:
            self.payload["tool_choice"] = "none"
        if self.rounds:
            self.payload["max_completion_tokens"] = await self.meter.hold_round(
                upstreams, prompt_tokens=self._prompt_tokens(), requested=self.requested
            )

    def _is_tool_round(self, calls: list[dict[str, Any]]) -> bool:
        return self.rounds < self.max_rounds - 1 and owned_by_server(self.tools, calls)

    async def _answer_tools(
        self, upstream: Upstream, content: str | None, calls: list[dict[str, Any]], usage: Usage
    ) -> None:
        await self.meter.add_round(upstream, usage)
        self.payload["messages"].append({"role": "assistant", "content": content, "tool_calls": calls})
        self.payload["messages"].extend(await run_tool_calls(self.tools, calls, self.runned))
        self.rounds += 1

    # ---- a whole answer

    async def run(self) -> tuple[Upstream, dict[str, Any]]:
        """Non-streaming: the final round's `(upstream, data)`. Raises UpstreamFailure like a plain call."""
        upstreams = self.upstreams
        while True:
            await self._next_round(upstreams)
            prompt_tokens = self._prompt_tokens()
            upstream, response = await open_with_retries(upstreams, self.payload, stream=False)
            data = await read_json(response)
            message = ((data.get("choices") or [{}])[0] or {}).get("message") or {}
            calls = message.get("tool_calls") or []
            if not self._is_tool_round(calls):
                return upstream, data
            usage = Usage.from_upstream(data.get("usage")) or Usage.estimate(
                prompt_tokens=prompt_tokens, completion_text=(message.get("content") or "") + json.dumps(calls)
            )
            await self._answer_tools(upstream, message.get("content"), calls, usage)
            upstreams = [upstream]

    # ---- streaming

    async def stream(self, upstream: Upstream, response: Any) -> AsyncIterator[dict[str, Any]]:
        """Upstream-shaped events for the relay, starting from the first round's open streaming `response`."""
        yield Comment("processing")
        while True:
            prompt_tokens = self._prompt_tokens()
            content: list[str] = []
            assembled: dict[int, dict[str, Any]] = {}
            finish: dict[str, Any] | None = None
            usage_event: dict[str, Any] | None = None
            try:
                async for event in iter_sse_chunks(response):
                    if Usage.from_upstream(event.get("usage")) is not None:
                        usage_event = event
                    choices = event.get("choices") or []
                    if not choices:
                        continue
                    delta = choices[0].get("delta") or {}
                    for part in delta.pop("tool_calls", None) or []:
                        _assemble(assembled, part)
                    if choices[0].get("finish_reason"):
                        finish = event
                        continue
                    if isinstance(delta.get("content"), str):
                        content.append(delta["content"])
                    if delta:
                        yield event
            finally:
                await response.aclose()
            calls = [assembled[i] for i in sorted(assembled)]
            if not self._is_tool_round(calls):
                visible = client_calls(calls, self.tools)
                if visible:
                    yield _calls_event([{"index": i, **call} for i, call in enumerate(visible)])
                if finish is not None:
                    if calls and not visible:
                        finish["choices"][0]["finish_reason"] = "stop"
                    yield finish
                if usage_event is not None:
                    yield usage_event
                return
            usage = Usage.from_upstream((usage_event or {}).get("usage")) or Usage.estimate(
                prompt_tokens=prompt_tokens, completion_text="".join(content) + json.dumps(calls)
            )
            for call in calls:
                yield Comment(f"running tool {call_name(call)}")
            await self._answer_tools(upstream, "".join(content) or None, calls, usage)
            await self._next_round([upstream])
            upstream, response = await open_with_retries([upstream], self.payload, stream=True)


def _assemble(assembled: dict[int, dict[str, Any]], part: dict[str, Any]) -> None:
    """OpenAI streams a tool call in pieces keyed by index: the id and name first, the arguments in fragments."""
    index = int(part.get("index") or 0)
    call = assembled.setdefault(index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
    if part.get("id"):
        call["id"] = part["id"]
    function = part.get("function") or {}
    if function.get("name") and not call["function"]["name"]:
        call["function"]["name"] = function["name"]
    if function.get("arguments"):
        call["function"]["arguments"] += function["arguments"]


def _calls_event(calls: list[dict[str, Any]]) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": None}]}
