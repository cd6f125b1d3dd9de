"""Relaying an answer to the client as a stream, and billing it exactly once whatever happens.

`StreamRelay.chunks()` turns upstream events (a live SSE stream, or a finished answer fed through
`completion_events`) into our `chat.completion.chunk` dicts, protocol-neutral: the HTTP/SSE framing is
`sse_response`, a thin outer layer (another protocol face can frame the same dicts its own way).

Billing, by where the stream ends:
- normally: the upstream's last event arrives; the meter settles (in its own task, so a client leaving during
  the write cannot cut it); the held-back finish chunk goes out carrying `generation_context` (and, with
  `include_usage`, OpenAI's usage chunk follows, carrying it too). The final chunk always names the cost.
- the upstream fails mid-stream: what was generated is settled, then an error event carrying the billed lines.
- the client leaves (before the first token, mid-stream, after the last content chunk, before `[DONE]`): the
  upstream request is closed at once and what was generated is settled in the background, once (the meter
  remembers a settlement, and the ledger's unique constraint refuses a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse

from aivax.errors import ApiError, RateLimited, ServerError, ServiceUnavailable, UpstreamError, UpstreamTimeout
from aivax.outage import unavailable_for
from billing.pricing import UsageLine
from gateways import protocol
from gateways.circuit import CircuitOpen
from gateways.grounding import Grounding, is_search_tool_call
from gateways.metering import Meter, TokenTally, Usage
from gateways.tools.loop import Comment
from gateways.upstream import Upstream, UpstreamFailure
from quotas import gate as quotas

logger = logging.getLogger(__name__)
_background: set[asyncio.Task[Any]] = set()

# Yielded by a chunk iterator when nothing happened for a while: the framing layer sends a keep-alive.
KEEPALIVE: dict[str, Any] = {}


def upstream_error(failure: UpstreamFailure | TimeoutError) -> ApiError:
    if isinstance(failure, TimeoutError):
        return UpstreamTimeout("The upstream model did not finish in time.")
    if isinstance(failure, CircuitOpen) or (failure.status == 429 and failure.retry_after is not None):
        # An open circuit, or an upstream 429 whose Retry-After outlasted our retry budget: the client waits.
        error_class = RateLimited if failure.status == 429 else ServiceUnavailable
        return error_class(failure.summary, headers={"Retry-After": str(math.ceil(failure.retry_after or 1))})
    if failure.timeout:
        return UpstreamTimeout(failure.summary)
    return UpstreamError(failure.summary)


def generation_context(lines: list[UsageLine], grounding: Grounding) -> dict[str, Any]:
    return {
        "generated_usage": [line.as_dict() for line in lines],
        "runned_functions": grounding.runned_functions,
        "documents": grounding.documents,
    }


def in_background(work: Awaitable[Any]) -> asyncio.Future[Any]:
    """Run `work` in its own task that a cancelled request cannot cancel (kept referenced until done)."""
    task = asyncio.ensure_future(work)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task


async def settle_safely(meter: Meter, upstream: Upstream | None, usage: Usage | None) -> list[UsageLine]:
    """Settle in its own task: a client that goes away mid-settlement must not cancel the ledger write."""
    if usage is not None:  # the token rate limits count the real total, not the admission's estimate
        await quotas.record_tokens(meter.request_id, usage.prompt_tokens + usage.completion_tokens)
    task = in_background(meter.settle(upstream, usage))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        logger.exception("settling %s failed", meter.request_id)
        # The database went away after the answer: its reservation stays held until the sweeper releases it.
        if (outage := unavailable_for(exc)) is not None:
            raise outage from exc
        raise ServerError("The request completed but could not be recorded; it was not billed.") from exc


async def with_keepalive(source: AsyncIterator[Any], interval: float) -> AsyncIterator[Any]:
    """Yield from `source`, and KEEPALIVE whenever it is silent for `interval` seconds."""
    iterator = source.__aiter__()
    pending: asyncio.Future[Any] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield KEEPALIVE
                continue
            finished, pending = pending, None
            try:
                item = finished.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(BaseException):
                await aclose()


async def completion_events(data: dict[str, Any], grounding: Grounding) -> AsyncIterator[dict[str, Any]]:
    """A finished upstream answer (server-side tool rounds run non-streaming) as the events a live stream of it
    would have sent, usage included, so it takes the one relay path. Our own search tool's calls stay inside."""
    choice = (data.get("choices") or [{}])[0] or {}
    message = choice.get("message") or {}
    delta: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    calls = [call for call in message.get("tool_calls") or [] if not is_search_tool_call(call)]
    if calls:
        delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(calls)]
    if grounding.annotations:
        delta["annotations"] = grounding.annotations
    yield {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
    yield {"choices": [{"index": 0, "delta": {}, "finish_reason": choice.get("finish_reason")}]}
    if data.get("usage"):
        yield {"choices": [], "usage": data["usage"]}


@dataclass
class StreamRelay:
    """Relays upstream events to our client chunk by chunk, and bills exactly once whatever happens."""

    upstream: Upstream
    source: AsyncIterator[dict[str, Any]]
    meter: Meter
    grounding: Grounding
    prompt_tokens: int
    include_usage: bool
    prefill: str | None = None
    close: Callable[[], Awaitable[None]] | None = None
    created: int = field(default_factory=protocol.now)

    def __post_init__(self) -> None:
        self.generated = TokenTally()  # counted as it streams: the answer itself is not kept
        self.upstream_usage: Usage | None = None
        self.annotated = False  # the grounding's annotations went out already (in a replayed answer's delta)

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None, **kwargs: Any) -> dict[str, Any]:
        return protocol.chunk(
            completion_id=self.meter.request_id,
            created=self.created,
            model=self.upstream.display_name,
            delta=delta,
            finish_reason=finish_reason,
            **kwargs,
        )

    def _track(self, event: dict[str, Any]) -> None:
        for choice in event.get("choices") or []:
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                self.generated.append(delta["content"])
            self.annotated = self.annotated or bool(delta.get("annotations"))
            for call in delta.get("tool_calls") or []:
                function = call.get("function") or {}
                self.generated.append(str(function.get("name") or "") + str(function.get("arguments") or ""))

    def usage(self) -> Usage:
        """The upstream's own count (its last report: cumulative reports are counted once), else our estimate."""
        return self.upstream_usage or Usage(self.prompt_tokens, self.generated.total(), estimated=True)

    def _context(self, lines: list[UsageLine]) -> dict[str, Any]:
        return {"generation_context": generation_context(lines, self.grounding)}

    async def chunks(self) -> AsyncIterator[dict[str, Any]]:
        finish: dict[str, Any] | None = None
        try:
            if self.prefill:
                yield self._chunk({"role": "assistant", "content": self.prefill})
            async with asyncio.timeout(settings.UPSTREAM_TOTAL_TIMEOUT):
                async for event in with_keepalive(self.source, settings.SSE_KEEPALIVE_SECONDS):
                    if event is KEEPALIVE or isinstance(event, Comment):
                        yield event  # silence, or progress while server-side tools run
                        continue
                    usage = Usage.from_upstream(event.get("usage"))
                    if usage is not None:
                        self.upstream_usage = usage
                    if not event.get("choices"):
                        continue  # the upstream's usage-only chunk; ours comes at the end
                    self._track(event)
                    event.update(id=self.meter.request_id, model=self.upstream.display_name, created=self.created)
                    event["object"] = "chat.completion.chunk"
                    event["usage"] = None
                    if any(choice.get("finish_reason") for choice in event["choices"]):
                        finish = event  # held back: it goes out last, with the cost
                        continue
                    yield event
            if self.grounding.annotations and not self.annotated:
                # Documents found by a search that ran during a live tool loop: cited once the answer is out.
                yield self._chunk({"annotations": self.grounding.annotations})
            lines = await settle_safely(self.meter, self.upstream, self.usage())
            finish = finish or self._chunk({}, "stop")
            finish.update(self._context(lines))
            yield finish
            if self.include_usage:
                yield self._chunk({}, with_choice=False, usage=self.usage().as_openai(), extra=self._context(lines))
        except (UpstreamFailure, TimeoutError) as failure:
            # Bytes have been sent: no retry now. Bill what was generated, then end with an error event.
            body = upstream_error(failure).body()
            with contextlib.suppress(ApiError):
                body.update(self._context(await settle_safely(self.meter, self.upstream, self.usage())))
            yield body
        except ApiError as error:
            # E.g. a balance that cannot pay the next tool round (402) after bytes were sent: bill the rounds done
            # and what was generated, which also closes the hold, then end with the error event.
            body = error.body()
            if self.meter.settled_lines is None:
                with contextlib.suppress(ApiError):
                    body.update(self._context(await settle_safely(self.meter, self.upstream, self.usage())))
            yield body
        except (asyncio.CancelledError, GeneratorExit):
            # The client went away: the upstream request is closed below at once; bill what was generated.
            if self.meter.settled_lines is None:
                in_background(self.meter.settle(self.upstream, self.usage()))
            raise
        finally:
            if self.close is not None:
                with contextlib.suppress(Exception):
                    await self.close()


async def sse_frames(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """OpenAI's SSE framing of chunk dicts: `data: {...}` events, keep-alive comments, `data: [DONE]` (not after
    an error event: that one ends the stream, as OpenAI's do)."""
    try:
        async for chunk in chunks:
            if isinstance(chunk, Comment):
                yield protocol.sse_comment(chunk.text)
                continue
            yield protocol.SSE_KEEPALIVE if chunk is KEEPALIVE else protocol.sse_event(chunk)
            if "error" in chunk:
                return
        yield protocol.SSE_DONE
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()  # a client that left: the relay's own handler bills and closes the upstream


def sse_response(frames: AsyncIterator[bytes], headers: dict[str, str]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(frames, content_type="text/event-stream")
    for key, value in {**protocol.SSE_HEADERS, **headers}.items():
        response[key] = value
    return response
