"""OpenTelemetry traces, off by default. Nothing of OpenTelemetry is even imported unless the standard variables
ask for it: `OTEL_TRACES_EXPORTER=otlp` or an `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
(and not `OTEL_SDK_DISABLED=true`). The OTLP/HTTP exporter then reads the rest of the `OTEL_*` variables itself
(headers, timeout, protocol); `OTEL_SERVICE_NAME` names the service (default "aivax").

Spans: one server span per HTTP request (aivax/observability.py; it continues an incoming `traceparent`), and
inside it grounding, each upstream attempt (a client span with the GenAI semantic conventions: `gen_ai.*`), and
billing's reserve and settle (`gen_ai.usage.*`; opened by `metrics.billing_step`). Never message content, never
a key. Trace context is not sent to upstream providers (they are third parties).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import urlparse

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_tracer: Any = None
_provider: Any = None


def enabled_by_env(environ: Mapping[str, str] = os.environ) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure(*, exporter: Any = None, batch: bool = True) -> None:
    """Once per process (AivaxConfig.ready). `exporter` is for tests; by default OTLP over HTTP when enabled."""
    global _tracer, _provider
    if exporter is None and not enabled_by_env():
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "aivax")}))
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    _provider, _tracer = provider, provider.get_tracer("aivax")


def shutdown() -> None:
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def enabled() -> bool:
    return _tracer is not None


# The request span ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def request_span(scope: Mapping[str, Any]) -> Iterator[Any]:
    """A server span around one HTTP request (None when tracing is off); continues an incoming traceparent."""
    if _tracer is None:
        yield None
        return
    from opentelemetry.propagate import extract
    from opentelemetry.trace import SpanKind

    carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers") or ()}
    method = scope.get("method", "")
    attributes = {"http.request.method": method, "url.path": scope.get("path", "")}
    with _tracer.start_as_current_span(
        method, context=extract(carrier), kind=SpanKind.SERVER, attributes=attributes
    ) as span:
        yield span


def finish_request(span: Any, *, endpoint: str, status: int, fields: Mapping[str, Any]) -> None:
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    span.update_name(f"{span.attributes.get('http.request.method', '')} {endpoint}".strip())
    span.set_attribute("http.route", endpoint)
    span.set_attribute("http.response.status_code", status)
    for name in ("request_id", "organization_id", "gateway", "completion_id"):
        if fields.get(name) is not None:
            span.set_attribute(f"aivax.{name}", fields[name])
    if fields.get("model"):
        span.set_attribute("gen_ai.request.model", str(fields["model"]))
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


# Child spans (decorators: a one-line hunk where they are used) ----------------------------------------------------


def traced(name: str) -> Callable[[F], F]:
    """A span around an async function; free when tracing is off."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            if _tracer is None:
                return await func(*args, **kwargs)
            with _tracer.start_as_current_span(name):
                return await func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def upstream_call(func: F) -> F:
    """`open_exchange(upstream, payload, *, stream)`: a client span with the GenAI conventions, until the
    response headers (a stream's body is relayed after this span ends)."""

    @functools.wraps(func)
    async def wrapper(upstream: Any, payload: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
        if _tracer is None:
            return await func(upstream, payload, *args, **kwargs)
        from opentelemetry.trace import SpanKind, Status, StatusCode

        host = urlparse(str(getattr(upstream, "base_url", ""))).hostname or ""
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",  # every upstream speaks the OpenAI protocol
            "gen_ai.request.model": str(getattr(upstream, "model", "")),
            "server.address": host,
            "aivax.upstream": str(getattr(upstream, "display_name", "")),
            "aivax.stream": bool(kwargs.get("stream", False)),
        }
        for key, attribute in (
            ("max_tokens", "gen_ai.request.max_tokens"),
            ("max_completion_tokens", "gen_ai.request.max_tokens"),
            ("temperature", "gen_ai.request.temperature"),
            ("top_p", "gen_ai.request.top_p"),
            ("seed", "gen_ai.request.seed"),
        ):
            value = payload.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attributes[attribute] = value
        name = f"chat {attributes['gen_ai.request.model']}"
        with _tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes) as span:
            try:
                response = await func(upstream, payload, *args, **kwargs)
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__name__)
                status = getattr(exc, "status", None)
                if status:
                    span.set_attribute("http.response.status_code", int(status))
                span.set_status(Status(StatusCode.ERROR))
                raise
            span.set_attribute("http.response.status_code", getattr(response, "status_code", 0))
            return response

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def billing_span(step: str, meter: Any, *args: Any) -> Iterator[Any]:
    """`billing.<step>` around Meter.reserve/settle/release; settle's (upstream, usage) become gen_ai.* attributes."""
    if _tracer is None:
        yield None
        return
    attributes: dict[str, Any] = {"aivax.billing.request_id": str(getattr(meter, "request_id", ""))}
    if step == "settle" and len(args) >= 2:
        upstream, usage = args[0], args[1]
        attributes.update(
            {
                "gen_ai.response.model": str(getattr(upstream, "display_name", "")),
                "gen_ai.usage.input_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
                "gen_ai.usage.output_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
                "aivax.usage.estimated": bool(getattr(usage, "estimated", False)),
            }
        )
    with _tracer.start_as_current_span(f"billing.{step}", attributes=attributes) as span:
        yield span
