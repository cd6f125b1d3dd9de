"""Upstream OpenAI-compatible providers, in one place: the hardened, guarded clients of aivax.outbound (one pool
per event loop and policy), errors summarised and scrubbed there (never echoed raw, never carrying a key or an
internal host; a catalog provider's words never reach tenants), and retries with backoff that happen only before
the first byte reaches the client."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx

from aivax import log, metrics, outbound, tracing
from gateways.responses import wire

logger = logging.getLogger(__name__)

MAX_ATTEMPTS_PER_UPSTREAM = 3
BACKOFF_SECONDS = (0.2, 0.6)


@dataclass(frozen=True)
class Upstream:
    base_url: str
    model: str
    api_key: str
    display_name: str
    tenant_owned: bool  # a tenant's own endpoint: guarded client, no inference billing
    catalog_model_id: UUID | None
    context_window: int
    wire_api: str = "chat_completions"  # or "responses": the upstream speaks OpenAI's Responses API natively
    # The name this upstream reads the answer's cap under: OpenAI's `max_completion_tokens` (its reasoning models
    # refuse `max_tokens`), or `max_tokens` for servers that know only that.
    output_limit_param: str = "max_completion_tokens"


class UpstreamFailure(Exception):
    """A failed upstream exchange, summarised for the client."""

    def __init__(
        self,
        summary: str,
        *,
        status: int | None = None,
        retryable: bool,
        timeout: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(summary)
        self.summary = summary
        self.status = status
        self.retryable = retryable
        self.timeout = timeout
        self.retry_after = retry_after


def _client(upstream: Upstream) -> httpx.AsyncClient:
    return outbound.shared_async_client(outbound.Policy.TENANT if upstream.tenant_owned else outbound.Policy.PLATFORM)


def _summary(upstream: Upstream | None, what: str, reason: str) -> str:
    """A tenant's own endpoint: what it said, scrubbed. A catalog provider's words stay in our logs."""
    if upstream is None:
        return outbound.summarise(reason, what=what, verbatim=False)
    return outbound.summarise(
        reason,
        what=what,
        secrets=[upstream.api_key],
        hosts=[outbound.host_of(upstream.base_url)],
        verbatim=upstream.tenant_owned,
    )


def _retry_after(response: httpx.Response) -> float | None:
    # Not capped here: open_with_retries waits only within its budget and passes a longer wait on to the client.
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


@metrics.time_upstream_call
@tracing.upstream_call
async def open_exchange(upstream: Upstream, payload: dict[str, Any], *, stream: bool) -> httpx.Response:
    """Send one request; return the response once its status is 2xx (body unread when streaming)."""
    client = _client(upstream)
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if stream else "application/json"}
    if upstream.api_key:
        headers["Authorization"] = f"Bearer {upstream.api_key}"
    body = {**payload, "model": upstream.model, "stream": stream}
    if upstream.output_limit_param != "max_completion_tokens" and "max_completion_tokens" in body:
        body[upstream.output_limit_param] = body.pop("max_completion_tokens")
    path = "/chat/completions"
    if upstream.wire_api == "responses":
        path, body = "/responses", wire.responses_body(body)
    request = client.build_request(
        "POST", f"{upstream.base_url}{path}", json=body, headers=headers, timeout=outbound.upstream_timeout()
    )
    try:
        response = await client.send(request, stream=True)
    except httpx.ConnectError as exc:
        if outbound.is_blocked(exc):
            raise UpstreamFailure("The endpoint's address is not allowed.", retryable=False) from exc
        raise UpstreamFailure("Could not reach the upstream model (ConnectError).", retryable=True) from exc
    except httpx.TimeoutException as exc:
        raise UpstreamFailure("The upstream model did not answer in time.", retryable=True, timeout=True) from exc
    except httpx.HTTPError as exc:
        raise UpstreamFailure(f"Could not reach the upstream model ({type(exc).__name__}).", retryable=True) from exc
    if response.status_code >= 300:
        raw = await outbound.aread_capped(response)
        status = outbound.status_summary(response.status_code, verbatim=upstream.tenant_owned)
        raise UpstreamFailure(
            _summary(upstream, f"The upstream model returned {status}", outbound.error_reason(raw)),
            status=response.status_code,
            retryable=outbound.is_retryable_status(response.status_code),
            retry_after=_retry_after(response),
        )
    return response


async def open_with_retries(
    upstreams: list[Upstream], payload: dict[str, Any], *, stream: bool
) -> tuple[Upstream, httpx.Response]:
    """Try each upstream in order (the gateway's model, then its fallbacks), retrying retryable failures with
    backoff. Nothing has been sent to our client yet, so retrying is safe."""
    from gateways import circuit  # the per-upstream breakers (fail fast, or on to the fallback, while one is down)

    last: UpstreamFailure | None = None
    budget = circuit.RetryBudget()
    for upstream in upstreams:
        breaker = circuit.breaker_for(upstream.base_url, upstream.model)
        for attempt in range(MAX_ATTEMPTS_PER_UPSTREAM):
            if not breaker.allow():
                last = circuit.CircuitOpen(breaker) if last is None else last
                break
            try:
                log.annotate(model=upstream.display_name)
                response = await open_exchange(upstream, payload, stream=stream)
            except UpstreamFailure as failure:
                last = failure
                circuit.record(breaker, failure)
                metrics.record_upstream_failure(
                    failure, retrying=failure.retryable and attempt + 1 < MAX_ATTEMPTS_PER_UPSTREAM
                )
                logger.info("upstream %s attempt %d failed: %s", upstream.display_name, attempt + 1, failure.summary)
                if not failure.retryable or attempt + 1 >= MAX_ATTEMPTS_PER_UPSTREAM:
                    break
                wait = failure.retry_after or BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]
                if not budget.spend(wait):
                    break  # a longer wait than the budget allows: the next upstream, or the failure goes out
                await asyncio.sleep(wait)
            else:
                breaker.record_success()
                return upstream, response
    assert last is not None
    raise last


async def read_json(response: httpx.Response) -> dict[str, Any]:
    try:
        raw = await outbound.aread_limited(response)
    except outbound.ResponseTooLarge as exc:
        raise UpstreamFailure("The upstream model sent a response that is too large.", retryable=False) from exc
    except httpx.TimeoutException as exc:
        raise UpstreamFailure("The upstream model did not answer in time.", retryable=True, timeout=True) from exc
    except httpx.HTTPError as exc:
        raise UpstreamFailure("The upstream connection broke.", retryable=True) from exc
    finally:
        await response.aclose()
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise UpstreamFailure("The upstream model sent a response that is not JSON.", retryable=True) from exc
    if _speaks_responses(response) and isinstance(data, dict):
        data = wire.completion_from_response(data)
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise UpstreamFailure("The upstream model sent an unexpected response.", retryable=True)
    return data


def _speaks_responses(response: httpx.Response) -> bool:
    try:
        return response.request.url.path.endswith("/responses")
    except RuntimeError:  # a response built by hand, without its request
        return False


async def _lines(response: httpx.Response) -> AsyncIterator[str]:
    """The stream's lines; a native Responses stream's events arrive as `data:` lines of chat chunks."""
    translator = wire.ChunkTranslator() if _speaks_responses(response) else None
    async for line in outbound.aiter_lines_limited(response):
        if translator is None:
            yield line
        else:
            for translated in wire.chunk_lines([line], translator):
                yield translated


async def iter_sse_chunks(response: httpx.Response, upstream: Upstream | None = None) -> AsyncIterator[dict[str, Any]]:
    """Parsed `data:` events of an upstream stream until [DONE]. A body that ends without [DONE] and without a
    finish_reason was cut short: that is a failure, not a normal end. An error event is summarised like an error
    status (without ``upstream``, as a catalog provider's: no details)."""
    finished = False
    try:
        async for line in _lines(response):
            if not line.startswith("data:"):
                continue  # comments, event names, blank separators
            data = line[5:].strip()
            if data in ("[DONE]", "[END]"):
                return
            try:
                event = json.loads(data)
            except (ValueError, RecursionError):
                continue
            if isinstance(event, dict) and "error" in event and "choices" not in event:
                reason = outbound.error_reason(event)
                raise UpstreamFailure(
                    _summary(upstream, "The upstream model failed mid-stream", reason), retryable=False
                )
            if isinstance(event, dict):
                finished = finished or any(c.get("finish_reason") for c in event.get("choices") or [])
                yield event
    except outbound.ResponseTooLarge as exc:
        raise UpstreamFailure("The upstream model sent an event that is too large.", retryable=False) from exc
    except httpx.TimeoutException as exc:
        raise UpstreamFailure("The upstream model stopped sending.", retryable=False, timeout=True) from exc
    except httpx.HTTPError as exc:
        raise UpstreamFailure("The upstream connection broke mid-stream.", retryable=False) from exc
    if not finished:
        raise UpstreamFailure("The upstream stream ended before the answer was complete.", retryable=False)
