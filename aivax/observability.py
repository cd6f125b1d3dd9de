"""The outermost ASGI layer: a request id, one access line and the request metrics for every HTTP request
(the console, /api/ and the rest alike, since it wraps both of aivax.asgi's handlers), and `/metrics`.

It reads only what the app already says in its response headers (`x-aivax-gateway`, `Server-Timing`,
`content-type`) and what the code recorded with `log.annotate()`; it never reads a request or response body.
An app that sets its own `x-request-id` (inference: the completion id, which is also the ledger's request id)
keeps it; the access line then carries both (`request_id`, `completion_id`).

`/metrics` answers only a bearer `METRICS_TOKEN` or a client address inside `METRICS_ALLOWED_NETWORKS`; anyone
else gets a 404, as if it did not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import time
from functools import lru_cache
from typing import Any

import structlog

from aivax import log, metrics, tracing
from aivax.asgi_types import App as ASGIApp
from aivax.asgi_types import Message, Receive, Scope, Send

METRICS_PATH = "/metrics"
_QUIET_PATHS = frozenset({"/healthz", "/readyz", METRICS_PATH})
access_logger = structlog.get_logger("aivax.access")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value
    return None


@lru_cache(maxsize=4096)
def endpoint_of(path: str) -> str:
    """The URL pattern serving `path` (bounded label values), or "unmatched"."""
    from django.urls import Resolver404, resolve

    try:
        match = resolve(path)
    except Resolver404:
        return "unmatched"
    return "/" + (match.route or match.view_name or "unknown")


def parse_server_timing(value: str) -> list[tuple[str, float]]:
    """`resolve;dur=1.2, reserve;dur=2.0` -> [("resolve", 0.0012), ("reserve", 0.002)] (seconds)."""
    phases = []
    for part in value.split(","):
        name, _, params = part.strip().partition(";")
        for param in params.split(";"):
            key, _, raw = param.strip().partition("=")
            if key == "dur" and name:
                with contextlib.suppress(ValueError):
                    phases.append((name.strip()[:32], float(raw) / 1000))
    return phases


class RequestObserver:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == METRICS_PATH:
            await metrics_endpoint(scope, receive, send)
            return
        request_id = log.sane_request_id(_header(scope, b"x-request-id")) or log.new_request_id()
        started = time.perf_counter()
        seen: dict[str, Any] = {"status": 500, "stream": False, "first_chunk": None, "timing": ""}

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                own_id = False
                for key, value in headers:
                    name = key.lower()
                    if name == b"content-type" and value.startswith(b"text/event-stream"):
                        seen["stream"] = True
                    elif name == b"x-aivax-gateway":
                        log.annotate(gateway=value.decode("latin-1"))
                    elif name == b"server-timing":
                        seen["timing"] = value.decode("latin-1")
                    elif name == b"x-request-id":
                        own_id = True
                        if value.decode("latin-1") != request_id:
                            log.annotate(completion_id=value.decode("latin-1"))
                if not own_id:
                    headers.append((b"x-request-id", request_id.encode()))
                seen["status"] = message["status"]
                if seen["stream"]:
                    metrics.OPEN_STREAMS.inc()
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and seen["first_chunk"] is None and message.get("body"):
                seen["first_chunk"] = time.perf_counter() - started
            await send(message)

        with log.request_scope(request_id) as state, tracing.request_span(scope) as span:
            try:
                await self.app(scope, receive, observed_send)
            finally:
                if seen["stream"]:
                    metrics.OPEN_STREAMS.dec()
                self._finish(scope, state, seen, time.perf_counter() - started, span)

    def _finish(self, scope: Scope, state: dict[str, Any], seen: dict[str, Any], seconds: float, span: Any) -> None:
        path = scope["path"]
        endpoint = endpoint_of(path)
        phases = parse_server_timing(seen["timing"]) if seen["timing"] else []
        first_chunk = seen["first_chunk"] if seen["stream"] else None
        metrics.record_request(
            endpoint=endpoint,
            method=scope.get("method", ""),
            status=seen["status"],
            gateway=str(state.get("gateway", "")),
            model=str(state.get("model", "")),
            seconds=seconds,
            first_chunk=first_chunk,
        )
        metrics.record_phases(phases)
        tracing.finish_request(span, endpoint=endpoint, status=seen["status"], fields=state)
        fields: dict[str, Any] = {
            "method": scope.get("method"),
            "path": path,
            "endpoint": endpoint,
            "status": seen["status"],
            "duration_ms": round(seconds * 1000, 2),
        }
        if first_chunk is not None:
            fields["first_chunk_ms"] = round(first_chunk * 1000, 2)
        fields.update({f"{name}_ms": round(sec * 1000, 2) for name, sec in phases})
        level = logging.DEBUG if path in _QUIET_PATHS else logging.INFO
        access_logger.log(level, "request", **fields)


# /metrics ------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _networks(raw: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in raw)


def metrics_allowed(scope: Scope) -> bool:
    from django.conf import settings

    token = settings.METRICS_TOKEN or ""
    if token:
        auth = (_header(scope, b"authorization") or b"").decode("latin-1")
        scheme, _, presented = auth.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode()):
            return True
    client = scope.get("client")
    networks = _networks(tuple(settings.METRICS_ALLOWED_NETWORKS or ()))
    if client and networks:
        try:
            address = ipaddress.ip_address(client[0])
        except ValueError:
            return False
        return any(address in network for network in networks)
    return False


async def metrics_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    if scope.get("method") not in ("GET", "HEAD") or not metrics_allowed(scope):
        status, body, content_type = 404, b"Not found\n", "text/plain; charset=utf-8"
    else:
        # Reading other processes' files and asking the broker for the queue length block: off the event loop.
        body, content_type = await asyncio.to_thread(metrics.render)
        status = 200
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type.encode()), (b"cache-control", b"no-store")],
        }
    )
    await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body})
