"""OpenTelemetry traces: off unless the OTEL_* variables ask; when on, one trace per request continuing an
incoming traceparent, with grounding, the upstream call (GenAI conventions) and billing as child spans."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from aivax import tracing

pytestmark = pytest.mark.django_db(transaction=True)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_off_unless_the_standard_variables_ask(environ, on):
    assert tracing.enabled_by_env(environ) is on


def test_off_by_default():
    assert not tracing.enabled()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure(exporter=exporter, batch=False)
    try:
        yield exporter
    finally:
        tracing.shutdown()


def test_a_request_is_one_trace_with_genai_spans(live_asgi, spans, api_key, gateway, stub, upstream_model):
    stub.app.script(upstream_model, content="bonjour tout le monde")
    response = httpx.post(
        f"{live_asgi.url}/api/v1/chat/completions",
        json={"model": gateway.slug, "messages": [{"role": "user", "content": "secret question"}], "max_tokens": 50},
        headers={"Authorization": f"Bearer {api_key.raw}", "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
        timeout=20,
    )
    assert response.status_code == 200
    deadline = time.monotonic() + 5  # the server span ends just after the last byte is sent
    while not any(s.kind.name == "SERVER" for s in spans.get_finished_spans()) and time.monotonic() < deadline:
        time.sleep(0.02)
    finished = {s.name: s for s in spans.get_finished_spans()}
    server = finished["POST /api/v1/chat/completions"]
    assert format(server.context.trace_id, "032x") == TRACE_ID  # continues the caller's trace
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["aivax.gateway"] == gateway.slug

    upstream = finished[f"chat {upstream_model}"]
    assert upstream.kind.name == "CLIENT"
    assert upstream.attributes["gen_ai.operation.name"] == "chat"
    assert upstream.attributes["gen_ai.request.model"] == upstream_model
    assert upstream.attributes["gen_ai.request.max_tokens"] == 50
    settle = finished["billing.settle"]
    assert settle.attributes["gen_ai.usage.output_tokens"] == 4
    assert settle.attributes["gen_ai.usage.input_tokens"] > 0
    for name in ("aivax.grounding", "billing.reserve", "billing.settle", f"chat {upstream_model}"):
        span = finished[name]
        assert span.context.trace_id == server.context.trace_id, name
        assert span.parent is not None and span.parent.span_id == server.context.span_id, name

    values = " ".join(str(v) for s in spans.get_finished_spans() for v in (s.attributes or {}).values())
    assert "secret question" not in values and api_key.raw not in values and "sk-platform-secret" not in values
