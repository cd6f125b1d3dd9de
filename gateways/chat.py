"""Chat completions through a gateway: the inference API's one service, used by the API and the playground.

The request path, top to bottom, each step handing the next what it needs once:

    authenticate (the API builds a Caller) -> resolve the gateway -> gate (key may use it, active, rate limit)
    -> route (a routing gateway's rating round picks the model: gateways.routing) -> admit (claim the request
    id; refused at the balance floor before any paid work) -> ground (rewrites and searches, each held before it
    runs) -> prepare messages -> hold the call's worst case and cap the upstream to it -> call (retries and
    fallbacks before the first byte; with server-side tools, the tool loop: gateways.tools.loop) -> relay
    (gateways.relay) -> settle.

The seam for protocol faces: `run_chat(caller, request, include_usage=...)` returns a `ChatResult`: either the
finished completion dict (billed, with `generation_context`) or an async iterator of chunk dicts (billed when
it ends; the final chunk carries `generation_context`; `relay.KEEPALIVE` marks silence, a `gateways.tools.loop.Comment`
progress while tools run), plus informational
headers. `handle_chat` is the OpenAI face: JSON or SSE framing around it, nothing else.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpResponse, JsonResponse

from aivax import tokens
from aivax.errors import ApiError, PermissionDenied
from gateways import protocol, relay
from gateways.caller import Caller
from gateways.grounding import Grounding, aground
from gateways.metering import Meter, Usage
from gateways.prompting import PreparedCall, aprepare_call
from gateways.protocol import ChatCompletionRequest
from gateways.resolve import GatewayConfig, aresolve_gateway
from gateways.routing.service import Route, aroute
from gateways.tools.loop import ToolLoop
from gateways.tools.request import server_tools_for
from gateways.tools.runtime import ServerTool, call_name
from gateways.upstream import Upstream, UpstreamFailure, iter_sse_chunks, open_with_retries, read_json
from quotas import gate as quotas
from quotas.gate import Admission

__all__ = ["Caller", "ChatResult", "console_chat_stream", "handle_chat", "run_chat"]


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


@dataclass
class ChatResult:
    """What the service hands a protocol face: exactly one of `completion` and `chunks` is set."""

    request_id: str
    headers: dict[str, str]
    completion: dict[str, Any] | None = None
    chunks: AsyncIterator[dict[str, Any]] | None = None


def _info_headers(config: GatewayConfig, prepared: PreparedCall, request_id: str) -> dict[str, str]:
    headers = {"x-request-id": request_id, "x-aivax-gateway": config.slug}
    if prepared.ignored_overrides:
        headers["x-aivax-ignored-params"] = ",".join(prepared.ignored_overrides)
    if prepared.truncated_messages:
        headers["x-aivax-truncated-messages"] = str(prepared.truncated_messages)
    return headers


async def _gate(caller: Caller, request: ChatCompletionRequest, request_id: str) -> tuple[GatewayConfig, Admission]:
    config = await aresolve_gateway(caller.organization_id, request.model)
    if not caller.may_use(config.id):
        raise PermissionDenied("This API key is not allowed to use this gateway.", code="gateway_not_allowed")
    if not config.is_active:
        raise PermissionDenied("This gateway is disabled.", code="gateway_inactive")
    # Rate limits before any work (grounding, query rewrites) and any hold: a 429 costs and bills nothing.
    admission = await quotas.admit_inference(caller, messages=request.messages, request_id=request_id)
    return config, admission


async def run_chat(
    caller: Caller, request: ChatCompletionRequest, *, include_usage: bool, request_id: str | None = None
) -> ChatResult:
    timer = PhaseTimer()
    request_id = request_id or protocol.new_completion_id()
    config, admission = await _gate(caller, request, request_id)
    timer.mark("resolve")
    upstreams = [ref.upstream() for ref in config.upstreams]  # keys decrypted once, here
    meter = Meter(caller=caller, request_id=request_id, gateway_id=config.id, metadata=request.metadata)
    route: Route | None = None
    try:
        if config.router:  # the rating round is held and billed like any round; it never fails the request
            route = await aroute(config, [{"role": m.role, "content": m.content} for m in request.messages], meter)
            upstreams = route.upstreams
            timer.mark("route")
        if config.knowledge_collection_id:
            await meter.admit()  # grounding costs money: refuse an exhausted balance before doing it
        grounding = await aground(config, upstreams, request, meter)
        timer.mark("ground")
        prepared = await aprepare_call(
            config, request, context_window=upstreams[0].context_window, grounding=grounding.text
        )
        payload: dict[str, Any] = {"messages": prepared.messages, **prepared.params}
        prompt_tokens = prepared.prompt_token_estimate
        server_tools = server_tools_for(config, meter, grounding)
        if server_tools:
            payload["tools"] = [*payload.get("tools", []), *(tool.definition for tool in server_tools.values())]
        if payload.get("tools"):
            prompt_tokens += tokens.count_text(protocol.dumps(payload["tools"]).decode())
        payload["max_completion_tokens"] = await meter.hold_round(
            upstreams, prompt_tokens=prompt_tokens, requested=prepared.max_completion_tokens
        )
        timer.mark("hold")
        source, upstream, data, close = await _call(
            config, upstreams, payload, meter, grounding, server_tools, prepared, request
        )
    except asyncio.CancelledError:
        relay.in_background(meter.abandon())  # the client left mid-call: bill what the upstream read, once
        raise
    except BaseException:
        await meter.release()  # nothing produced: free the hold (paid grounding steps are still billed)
        raise
    timer.mark("upstream")
    headers = _info_headers(config, prepared, meter.request_id)
    if route is not None:
        headers["x-aivax-route"] = route.header()
    headers.update(admission.headers())  # OpenAI's x-ratelimit-* headers
    if request.stream:
        headers["Server-Timing"] = timer.header()
        stream = relay.StreamRelay(
            upstream=upstream,
            source=source if source is not None else relay.completion_events(data or {}, grounding),
            meter=meter,
            grounding=grounding,
            prompt_tokens=prepared.prompt_token_estimate,
            include_usage=include_usage,
            prefill=config.assistant_prefill if config.include_prefill_in_message else None,
            close=close,
        )
        return ChatResult(request_id=meter.request_id, headers=headers, chunks=stream.chunks())
    body = await _complete(config, upstream, data or {}, meter, prepared, grounding, set(server_tools))
    timer.mark("settle")
    headers["Server-Timing"] = timer.header()
    return ChatResult(request_id=meter.request_id, headers=headers, completion=body)


async def _call(
    config: GatewayConfig,
    upstreams: list[Upstream],
    payload: dict[str, Any],
    meter: Meter,
    grounding: Grounding,
    server_tools: dict[str, ServerTool],
    prepared: PreparedCall,
    request: ChatCompletionRequest,
) -> tuple[AsyncIterator[dict[str, Any]] | None, Upstream, dict[str, Any] | None, Any]:
    """Open the upstream call: (live event stream | None, upstream, finished answer | None, close callback)."""
    try:
        if server_tools:  # rounds that call the gateway's own tools are answered here (gateways.tools.loop)
            loop = ToolLoop(
                upstreams,
                payload,
                meter,
                server_tools,
                grounding.runned_functions,
                requested=prepared.max_completion_tokens,
                max_rounds=config.max_tool_rounds,
            )
            if request.stream:
                loop.payload["stream_options"] = {"include_usage": True}
                upstream, response = await open_with_retries(upstreams, loop.payload, stream=True)
                return loop.stream(upstream, response), upstream, None, response.aclose
            async with asyncio.timeout(settings.UPSTREAM_TOTAL_TIMEOUT):
                upstream, data = await loop.run()
            return None, upstream, data, None
        if request.stream:
            payload["stream_options"] = {"include_usage": True}
            upstream, response = await open_with_retries(upstreams, payload, stream=True)
            return iter_sse_chunks(response, upstream), upstream, None, response.aclose
        async with asyncio.timeout(settings.UPSTREAM_TOTAL_TIMEOUT):
            upstream, response = await open_with_retries(upstreams, payload, stream=False)
            return None, upstream, await read_json(response), None
    except (UpstreamFailure, TimeoutError) as failure:
        raise relay.upstream_error(failure) from failure


async def _complete(
    config: GatewayConfig,
    upstream: Upstream,
    data: dict[str, Any],
    meter: Meter,
    prepared: PreparedCall,
    grounding: Grounding,
    owned: set[str],
) -> dict[str, Any]:
    choice = (data.get("choices") or [{}])[0] or {}
    message = choice.get("message") or {}
    content = message.get("content")
    # The gateway's own tools are never handed to the client, even if the model insists on calling them.
    tool_calls = [call for call in message.get("tool_calls") or [] if call_name(call) not in owned] or None
    finish_reason = choice.get("finish_reason")
    if finish_reason == "tool_calls" and not tool_calls:
        finish_reason = "stop"
    prefill = config.assistant_prefill
    if prefill and config.include_prefill_in_message and isinstance(content, str):
        content = prefill + content
    usage = Usage.from_upstream(data.get("usage")) or Usage.estimate(
        prompt_tokens=prepared.prompt_token_estimate, completion_text=message.get("content") or ""
    )
    lines = await relay.settle_safely(meter, upstream, usage)
    return protocol.completion_response(
        completion_id=meter.request_id,
        created=protocol.now(),
        model=upstream.display_name,
        message=protocol.assistant_message(content, tool_calls, message.get("refusal"), grounding.annotations),
        finish_reason=finish_reason,
        usage=usage.as_openai(),
        generation_context=relay.generation_context(lines, grounding),
        system_fingerprint=data.get("system_fingerprint"),
    )


def _json(body: dict[str, Any], headers: dict[str, str]) -> HttpResponse:
    response = HttpResponse(protocol.dumps(body), content_type="application/json")
    for key, value in headers.items():
        response[key] = value
    return response


async def handle_chat(
    caller: Caller, request: ChatCompletionRequest, *, force_usage: bool = False, request_id: str | None = None
) -> HttpResponse:
    """The OpenAI face of `run_chat`: a JSON completion, or an SSE stream ending in `data: [DONE]`."""
    result = await run_chat(caller, request, include_usage=request.include_usage or force_usage, request_id=request_id)
    if result.chunks is not None:
        return relay.sse_response(relay.sse_frames(result.chunks), result.headers)
    assert result.completion is not None
    return _json(result.completion, result.headers)


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
