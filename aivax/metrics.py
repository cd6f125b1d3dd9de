"""Prometheus metrics: every definition in this one module, and small `record_*` helpers the rest calls.

Several processes (uvicorn workers, Celery workers) count into one set of series with prometheus-client's
multi-process mode: set `PROMETHEUS_MULTIPROC_DIR` to an empty folder shared by the processes of one machine
*before* they start (`make run` and the Docker image do); each process writes its own mmap files there and a
scrape of `/metrics` on any worker sums them. Without it (tests, a single process) the default registry is used.

Labels are bounded: `endpoint` is the URL pattern (never the raw path), `gateway` a gateway slug, `model` the
upstream model's display name, `sku` a price SKU. Money here is a float for dashboards; the ledger is exact.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

# Seconds: API requests range from a millisecond (models list) to minutes (long streams).
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

REQUESTS = Counter("aivax_http_requests", "HTTP requests served", ["endpoint", "method", "status", "gateway", "model"])
REQUEST_SECONDS = Histogram(
    "aivax_http_request_duration_seconds", "Whole request, until the last byte", ["endpoint"], buckets=_LATENCY
)
FIRST_CHUNK_SECONDS = Histogram(
    "aivax_time_to_first_chunk_seconds", "Streams: request start to the first body chunk", ["gateway"], buckets=_LATENCY
)
PHASE_SECONDS = Histogram(
    "aivax_request_phase_seconds",
    "Phases of an inference request (resolve, ground, prepare, reserve, upstream, settle)",
    ["phase"],
    buckets=(*_FAST, 5, 10, 30, 60),
)
OPEN_STREAMS = Gauge("aivax_open_streams", "Event streams being sent now", multiprocess_mode="livesum")
RATE_LIMITED = Counter("aivax_rate_limited", "Requests refused with 429", ["endpoint"])

UPSTREAM_SECONDS = Histogram(
    "aivax_upstream_call_seconds", "Upstream call until its response headers", ["model", "outcome"], buckets=_LATENCY
)
UPSTREAM_ERRORS = Counter("aivax_upstream_errors", "Failed upstream attempts", ["kind"])
UPSTREAM_RETRIES = Counter("aivax_upstream_retries", "Upstream attempts retried after a failure", ["kind"])

BILLING_SECONDS = Histogram(
    "aivax_billing_step_seconds", "Billing steps: reserve, settle, release", ["step", "outcome"], buckets=_FAST
)
BILLED_QUANTITY = Counter("aivax_billed_quantity", "Billed units by SKU (tokens for token SKUs)", ["sku"])
BILLED_USD = Counter("aivax_billed_usd", "Billed amount by SKU, USD (approximate; the ledger is exact)", ["sku"])

DOCUMENTS = Counter("aivax_documents_ingested", "Documents through ingestion, by outcome", ["status"])
CHUNKS = Counter("aivax_chunks_ingested", "Chunks embedded and stored")
CELERY_TASKS = Counter("aivax_celery_tasks", "Celery task outcomes", ["task", "outcome"])


# Helpers called by the rest of the code (one line each at the call site) -----------------------------------------


def record_request(
    *, endpoint: str, method: str, status: int, gateway: str, model: str, seconds: float, first_chunk: float | None
) -> None:
    REQUESTS.labels(endpoint, method, str(status), gateway, model).inc()
    REQUEST_SECONDS.labels(endpoint).observe(seconds)
    if first_chunk is not None:
        FIRST_CHUNK_SECONDS.labels(gateway).observe(first_chunk)
    if status == 429:
        RATE_LIMITED.labels(endpoint).inc()


def record_phases(phases: Iterable[tuple[str, float]]) -> None:
    for name, seconds in phases:
        PHASE_SECONDS.labels(name).observe(seconds)


def record_upstream_call(*, model: str, seconds: float, outcome: str) -> None:
    UPSTREAM_SECONDS.labels(model, outcome).observe(seconds)


def upstream_failure_kind(failure: Any) -> str:
    """timeout, http_<status>, blocked or connection: a small set, never the message."""
    if getattr(failure, "timeout", False):
        return "timeout"
    status = getattr(failure, "status", None)
    if status:
        return f"http_{status}"
    if "not allowed" in str(failure):
        return "blocked"
    return "connection"


def record_upstream_failure(failure: Any, *, retrying: bool) -> None:
    kind = upstream_failure_kind(failure)
    UPSTREAM_ERRORS.labels(kind).inc()
    if retrying:
        UPSTREAM_RETRIES.labels(kind).inc()


def record_billed(lines: Any) -> Any:
    """Count a settlement's lines (objects with sku, quantity, amount); returns `lines` so a caller can wrap."""
    for line in lines or ():
        BILLED_QUANTITY.labels(line.sku).inc(max(int(line.quantity), 0))
        BILLED_USD.labels(line.sku).inc(max(float(line.amount), 0.0))
    return lines


def record_ingested(*, chunks: int) -> None:
    CHUNKS.inc(chunks)


def record_document(status: str) -> str:
    DOCUMENTS.labels(status).inc()
    return status


def record_task(task: str, outcome: str) -> None:
    CELERY_TASKS.labels(task, outcome).inc()


# Celery task outcomes, connected once (AivaxConfig.ready) -------------------------------------------------------


def connect_celery() -> None:
    from celery.signals import task_failure, task_retry, task_success, worker_ready

    def _name(sender: Any) -> str:
        return str(getattr(sender, "name", None) or sender or "unknown")

    def _success(sender: Any = None, **_kw: Any) -> None:
        record_task(_name(sender), "success")

    def _failure(sender: Any = None, **_kw: Any) -> None:
        record_task(_name(sender), "failure")

    def _retry(sender: Any = None, request: Any = None, **_kw: Any) -> None:
        record_task(str(getattr(request, "task", None) or _name(sender)), "retry")

    worker_ready.connect(_serve_worker_metrics, weak=False, dispatch_uid="aivax.metrics.worker_ready")
    task_success.connect(_success, weak=False, dispatch_uid="aivax.metrics.success")
    task_failure.connect(_failure, weak=False, dispatch_uid="aivax.metrics.failure")
    task_retry.connect(_retry, weak=False, dispatch_uid="aivax.metrics.retry")


def _serve_worker_metrics(**_kwargs: Any) -> None:
    """A Celery worker has no web server: with CELERY_METRICS_PORT set, its main process serves the metrics of
    its pool processes on that port (inside the deployment's private network; no token there)."""
    port = os.environ.get("CELERY_METRICS_PORT")
    if not port:
        return
    from prometheus_client import start_http_server

    registry = REGISTRY
    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    start_http_server(int(port), addr=os.environ.get("CELERY_METRICS_ADDR", "0.0.0.0"), registry=registry)


# Exposition ----------------------------------------------------------------------------------------------------


class QueueDepthCollector:
    """The Celery queue's length in the broker, read at scrape time (not a per-process value)."""

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("aivax_ingestion_queue_depth", "Tasks waiting in the Celery queue", labels=["queue"])
        queue, depth = _queue_depth()
        if depth is not None:
            family.add_metric([queue], depth)
        yield family


_broker: Any = None


def _queue_depth() -> tuple[str, float | None]:
    global _broker
    from django.conf import settings

    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    url = settings.CELERY_BROKER_URL
    if not str(url).startswith(("redis://", "rediss://", "unix://")):
        return queue, None
    try:
        import redis

        if _broker is None:
            _broker = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        prefix = (settings.CELERY_BROKER_TRANSPORT_OPTIONS or {}).get("global_keyprefix", "")
        return queue, float(_broker.llen(f"{prefix}{queue}"))
    except Exception:  # a scrape reports what it can; a broker outage shows up as a missing series
        return queue, None


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render() -> tuple[bytes, str]:
    """The exposition text of every process on this machine (multi-process mode) or of this one."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    broker = CollectorRegistry()
    broker.register(QueueDepthCollector())
    return text + generate_latest(broker), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (open streams) in multi-process mode."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def time_upstream_call(func: Any) -> Any:
    """Decorates `open_exchange(upstream, ...)`: its latency until response headers, by model and outcome."""
    import functools
    import time

    @functools.wraps(func)
    async def timed(upstream: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await func(upstream, *args, **kwargs)
            outcome = "ok"
            return result
        finally:
            record_upstream_call(
                model=str(getattr(upstream, "display_name", "")), seconds=time.perf_counter() - started, outcome=outcome
            )

    return timed


def billing_step(step: str) -> Any:
    """Decorates `Meter.reserve/settle/release`: latency by step and outcome, and a `billing.<step>` span."""
    import functools
    import time

    from aivax import tracing

    def decorate(func: Any) -> Any:
        @functools.wraps(func)
        async def timed(meter: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            outcome = "error"
            with tracing.billing_span(step, meter, *args):
                try:
                    result = await func(meter, *args, **kwargs)
                    outcome = "ok"
                    return result
                finally:
                    BILLING_SECONDS.labels(step, outcome).observe(time.perf_counter() - started)

        return timed

    return decorate
