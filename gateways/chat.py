"""Chat completions through a gateway: the inference API's one service, used by the API and the playground.

resolve gateway -> check key -> ground -> prepare messages and params -> reserve balance -> open upstream
(retries and fallbacks before the first byte) -> relay (JSON or SSE) -> settle exactly what was used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse

from aivax.errors import ApiError, PermissionDenied, ServerError, UpstreamError, UpstreamTimeout
from gateways import protocol
from gateways.grounding import Grounding, aground, arun_query_function_loop, is_search_tool_call
from gateways.metering import Meter, Usage
from gateways.prompting import PreparedCall, prepare_call
from gateways.protocol import ChatCompletionRequest
from gateways.resolve import GatewayConfig, aresolve_gateway
from gateways.upstream import Upstream, UpstreamFailure, iter_sse_chunks, open_with_retries, read_json
from quotas import gate as quotas
from quotas.policy import Limits

logger = logging.getLogger(__name__)
_background: set[asyncio.Task[Any]] = set()


@dataclass(frozen=True)
class Caller:
    organization_id: int
    key_id: uuid.UUID | None
    allowed_gateway_ids: frozenset[uuid.UUID] = frozenset()
    rate_limits: Limits | None = None  # the key's own; the organization's and its plan's apply too

    def may_use(self, gateway_id: str) -> bool:
        return not self.allowed_gateway_ids or uuid.UUID(gateway_id) in self.allowed_gateway_ids


def upstream_error(failure: UpstreamFailure) -> ApiError:
    if failure.timeout:
        return UpstreamTimeout(failure.summary)
    return UpstreamError(failure.summary)


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(protocol.dumps(body), status=status, content_type="application/json")
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def _generation_context(lines: list[Any], grounding: Grounding) -> dict[str, Any]:
    return {
        "generated_usage": [line.as_dict() for line in lines],
        "runned_functions": grounding.runned_functions,
        "documents": grounding.documents,
    }


def _info_headers(config: GatewayConfig, prepared: PreparedCall, request_id: str) -> dict[str, str]:
    headers = {"x-request-id": request_id, "x-aivax-gateway": config.slug}
    if prepared.ignored_overrides:
        headers["x-aivax-ignored-params"] = ",".join(prepared.ignored_overrides)
    if prepared.truncated_messages:
        headers["x-aivax-truncated-messages"] = str(prepared.truncated_messages)
    return headers


class PhaseTimer:
    """Durations of a request's phases, reported in a Server-Timing header (visible in browser devtools)."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.phases: list[tuple[str, float]] = []

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.phases.append((name, (now - self.last) * 1000))
        self.last = now

    def header(self) -> str:
        return ", ".join(f"{name};dur={ms:.2f}" for name, ms in self.phases)


async def handle_chat(caller: Caller, request: ChatCompletionRequest, *, force_usage: bool = False) -> HttpResponse:
    timer = PhaseTimer()
    config = await aresolve_gateway(caller.organization_id, request.model)
    timer.mark("resolve")
    if not caller.may_use(config.id):
        raise PermissionDenied("This API key is not allowed to use this gateway.", code="gateway_not_allowed")
    if not config.is_active:
        raise PermissionDenied("This gateway is disabled.", code="gateway_inactive")

    request_id = protocol.new_completion_id()
    # Rate limits before any work (grounding, query rewrites) and any reservation: a 429 costs and bills nothing.
    admission = await quotas.admit_inference(caller, messages=request.messages, request_id=request_id)
    timer.mark("quota")
    meter = Meter(
        request_id=request_id,
        organization_id=caller.organization_id,
        gateway_id=config.id,
        api_key_id=caller.key_id,
        metadata=request.metadata,
    )
    upstreams = [ref.upstream() for ref in config.upstreams]
    grounding = await aground(config, request, meter)
    timer.mark("ground")
    prepared = prepare_call(config, request, context_window=upstreams[0].context_window, grounding=grounding.text)
    payload: dict[str, Any] = {"messages": prepared.messages, **prepared.params}
    if grounding.tools:
        payload["tools"] = [*payload.get("tools", []), *grounding.tools]
    timer.mark("prepare")
    await meter.reserve(
        upstreams[0], prompt_tokens=prepared.prompt_token_estimate, max_completion_tokens=prepared.max_completion_tokens
    )
    timer.mark("reserve")
    replay = bool(grounding.tools)  # QueryFunction: tool rounds run server-side, non-streaming
    try:
        if replay:
            async with asyncio.timeout(settings.UPSTREAM_TOTAL_TIMEOUT):
                upstream, data = await arun_query_function_loop(config, upstreams, payload, meter, grounding)
        elif request.stream:
            payload["stream_options"] = {"include_usage": True}
            upstream, response = await open_with_retries(upstreams, payload, stream=True)
        else:
            async with asyncio.timeout(settings.UPSTREAM_TOTAL_TIMEOUT):
                upstream, response = await open_with_retries(upstreams, payload, stream=False)
                data = await read_json(response)
    except UpstreamFailure as failure:
        await meter.release()
        raise upstream_error(failure) from failure
    except TimeoutError as exc:
        await meter.release()
        raise UpstreamTimeout("The upstream model did not finish in time.") from exc
    except BaseException:
        await meter.release()
        raise

    timer.mark("upstream")
    headers = _info_headers(config, prepared, request_id)
    headers.update(admission.headers())  # OpenAI's x-ratelimit-* headers
    if request.stream and replay:
        # The answer is already complete (it needed server-side tool rounds): send it as a well-formed stream.
        body = await _complete(config, upstream, data, meter, prepared, grounding)
        headers["Server-Timing"] = timer.header()
        replayed = StreamingHttpResponse(
            _replay_as_stream(body, include_usage=request.include_usage or force_usage),
            content_type="text/event-stream",
        )
        for key, value in {**protocol.SSE_HEADERS, **headers}.items():
            replayed[key] = value
        return replayed
    if request.stream:
        relay = StreamRelay(
            config=config,
            upstream=upstream,
            response=response,
            meter=meter,
            prepared=prepared,
            grounding=grounding,
            include_usage=request.include_usage or force_usage,
        )
        headers["Server-Timing"] = timer.header()
        streaming = StreamingHttpResponse(relay.events(), content_type="text/event-stream")
        for key, value in {**protocol.SSE_HEADERS, **headers}.items():
            streaming[key] = value
        return streaming
    body = await _complete(config, upstream, data, meter, prepared, grounding)
    timer.mark("settle")
    headers["Server-Timing"] = timer.header()
    return _json(body, headers=headers)


async def _complete(
    config: GatewayConfig,
    upstream: Upstream,
    data: dict[str, Any],
    meter: Meter,
    prepared: PreparedCall,
    grounding: Grounding,
) -> dict[str, Any]:
    choice = (data.get("choices") or [{}])[0] or {}
    message = choice.get("message") or {}
    content = message.get("content")
    # Our own server-side search tool is never handed to the client, even if the model insists on calling it.
    tool_calls = [call for call in message.get("tool_calls") or [] if not is_search_tool_call(call)] or None
    prefill = config.assistant_prefill
    if prefill and config.include_prefill_in_message and isinstance(content, str):
        content = prefill + content
    usage = Usage.from_upstream(data.get("usage")) or Usage.estimate(
        prompt_tokens=prepared.prompt_token_estimate, completion_text=message.get("content") or ""
    )
    lines = await _settle_safely(meter, upstream, usage)
    return protocol.completion_response(
        completion_id=meter.request_id,
        created=protocol.now(),
        model=upstream.display_name,
        message=protocol.assistant_message(content, tool_calls, message.get("refusal"), grounding.annotations),
        finish_reason=choice.get("finish_reason"),
        usage=protocol.usage_object(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens),
        generation_context=_generation_context(lines, grounding),
        system_fingerprint=data.get("system_fingerprint"),
    )


async def _replay_as_stream(body: dict[str, Any], *, include_usage: bool) -> AsyncIterator[bytes]:
    """A finished chat.completion as chat.completion.chunk events, ending like a live stream."""
    choice = body["choices"][0]
    message = choice["message"]
    common = {"completion_id": body["id"], "created": body["created"], "model": body["model"]}
    delta: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    if message.get("tool_calls"):
        delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
    if message.get("annotations"):
        delta["annotations"] = message["annotations"]
    yield protocol.sse_event(protocol.chunk(**common, delta=delta))
    yield protocol.sse_event(protocol.chunk(**common, delta={}, finish_reason=choice.get("finish_reason")))
    if include_usage:
        yield protocol.sse_event(
            protocol.chunk(
                **common,
                delta={},
                with_choice=False,
                usage=body["usage"],
                extra={"generation_context": body["generation_context"]},
            )
        )
    yield protocol.SSE_DONE


async def _settle_safely(meter: Meter, upstream: Upstream, usage: Usage) -> list[Any]:
    """Settle in its own task: a client that goes away mid-settlement must not cancel the ledger write."""
    await quotas.record_tokens(meter.request_id, usage.prompt_tokens + usage.completion_tokens)
    task = asyncio.ensure_future(meter.settle(upstream, usage))
    _background.add(task)
    task.add_done_callback(_background.discard)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        logger.exception("settling %s failed", meter.request_id)
        raise ServerError("The request completed but could not be recorded; it was not billed.") from exc


_KEEPALIVE = object()


async def with_keepalive(source: AsyncIterator[Any], interval: float) -> AsyncIterator[Any]:
    """Yield from `source`, and a keep-alive marker whenever it is silent for `interval` seconds."""
    iterator = source.__aiter__()
    pending: asyncio.Future[Any] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield _KEEPALIVE
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


@dataclass
class StreamRelay:
    """Relays an upstream SSE stream to our client chunk by chunk, and bills exactly once whatever happens."""

    config: GatewayConfig
    upstream: Upstream
    response: httpx.Response
    meter: Meter
    prepared: PreparedCall
    grounding: Grounding
    include_usage: bool

    def __post_init__(self) -> None:
        self.created = protocol.now()
        self.generated: list[str] = []
        self.upstream_usage: Usage | None = None
        self.settled = False

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return protocol.sse_event(
            protocol.chunk(
                completion_id=self.meter.request_id,
                created=self.created,
                model=self.upstream.display_name,
                delta=delta,
                finish_reason=finish_reason,
            )
        )

    def _track(self, event: dict[str, Any]) -> None:
        for choice in event.get("choices") or []:
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                self.generated.append(delta["content"])
            for call in delta.get("tool_calls") or []:
                function = call.get("function") or {}
                self.generated.append(str(function.get("name") or "") + str(function.get("arguments") or ""))

    def _usage(self) -> Usage:
        return self.upstream_usage or Usage.estimate(
            prompt_tokens=self.prepared.prompt_token_estimate, completion_text="".join(self.generated)
        )

    async def _settle(self) -> list[Any]:
        self.settled = True
        return await _settle_safely(self.meter, self.upstream, self._usage())

    async def events(self) -> AsyncIterator[bytes]:
        try:
            prefill = self.config.assistant_prefill
            if prefill and self.config.include_prefill_in_message:
                yield self._chunk({"role": "assistant", "content": prefill})
            source = iter_sse_chunks(self.response)
            async with asyncio.timeout(settings.UPSTREAM_TOTAL_TIMEOUT):
                async for event in with_keepalive(source, settings.SSE_KEEPALIVE_SECONDS):
                    if event is _KEEPALIVE:
                        yield protocol.SSE_KEEPALIVE
                        continue
                    usage = Usage.from_upstream(event.get("usage"))
                    if usage is not None:
                        self.upstream_usage = usage
                    if not event.get("choices"):
                        continue  # the upstream's usage-only chunk; ours comes at the end
                    self._track(event)
                    event.update(id=self.meter.request_id, model=self.upstream.display_name, created=self.created)
                    event.pop("usage", None)
                    event["usage"] = None
                    yield protocol.sse_event(event)
            lines = await self._settle()
            if self.include_usage:
                usage = self._usage()
                yield protocol.sse_event(
                    protocol.chunk(
                        completion_id=self.meter.request_id,
                        created=self.created,
                        model=self.upstream.display_name,
                        delta={},
                        with_choice=False,
                        usage=protocol.usage_object(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens),
                        extra={"generation_context": _generation_context(lines, self.grounding)},
                    )
                )
            yield protocol.SSE_DONE
        except (UpstreamFailure, TimeoutError) as failure:
            # Bytes have been sent: no retry now. Bill what was generated, then end with an error event.
            error = (
                upstream_error(failure)
                if isinstance(failure, UpstreamFailure)
                else UpstreamTimeout("The upstream model did not finish in time.")
            )
            if not self.settled:
                with contextlib.suppress(ApiError):
                    await self._settle()
            yield protocol.sse_event(error.body())
        except ApiError as error:
            yield protocol.sse_event(error.body())
        except (asyncio.CancelledError, GeneratorExit):
            # The client went away: the upstream request is closed below at once; bill what was generated.
            if not self.settled:
                self.settled = True
                task = asyncio.ensure_future(self.meter.settle(self.upstream, self._usage()))
                _background.add(task)
                task.add_done_callback(_background.discard)
            raise
        finally:
            with contextlib.suppress(Exception):
                await self.response.aclose()


async def console_chat_stream(*, organization_id: int, user_id: int, payload: dict[str, Any]) -> HttpResponse:
    """The playground: the same service with a signed-in user instead of an API key. Always streams, with usage."""
    try:
        request = protocol.parse_chat_request(protocol.dumps({**payload, "stream": True}))
        return await handle_chat(Caller(organization_id=organization_id, key_id=None), request, force_usage=True)
    except ApiError as error:
        response = JsonResponse(error.body(), status=error.status)
        for key, value in error.headers.items():  # Retry-After, x-ratelimit-*
            response[key] = value
        return response
