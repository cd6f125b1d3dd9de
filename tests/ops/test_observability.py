"""/metrics (access, exposition, counters moving with traffic) and JSON logs with one request id per request."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aivax import log
from aivax.observability import endpoint_of, parse_server_timing

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "metrics-token-for-tests-0123456789"
CHAT = "/api/v1/chat/completions"


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples, name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == name and wanted <= set(lbls))


def _scrape(live_asgi) -> dict:
    response = httpx.get(f"{live_asgi.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return _samples(response.text)


def _chat(live_asgi, key: str, model: str, *, stream: bool = False, headers: dict | None = None) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "secret question"}], "stream": stream}
    return httpx.post(
        f"{live_asgi.url}{CHAT}",
        json=body,
        headers={"Authorization": f"Bearer {key}", **(headers or {})},
        timeout=20,
    )


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []


def test_metrics_refused_without_token_or_network(live_asgi, settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert httpx.get(f"{live_asgi.url}/metrics").status_code == 404
    bad = httpx.get(f"{live_asgi.url}/metrics", headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 404
    assert "aivax" not in bad.text


def test_metrics_open_to_configured_network(live_asgi, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    response = httpx.get(f"{live_asgi.url}/metrics")
    assert response.status_code == 200
    assert "aivax_http_requests_total" in response.text


def test_counters_move_with_traffic(live_asgi, metrics_token, api_key, gateway, stub, upstream_model):
    stub.app.script(upstream_model, content="hello there")
    endpoint = endpoint_of(CHAT)
    before = _scrape(live_asgi)
    assert _chat(live_asgi, api_key.raw, gateway.slug).status_code == 200
    streamed = _chat(live_asgi, api_key.raw, gateway.slug, stream=True)
    assert streamed.status_code == 200 and "[DONE]" in streamed.text
    assert _chat(live_asgi, api_key.raw + "x", gateway.slug).status_code == 401
    after = _scrape(live_asgi)

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    ok = {"endpoint": endpoint, "status": "200", "gateway": gateway.slug}
    assert moved("aivax_http_requests_total", **ok, model=f"@stub/{upstream_model}") == 2
    assert moved("aivax_http_requests_total", endpoint=endpoint, status="401") == 1
    assert moved("aivax_http_request_duration_seconds_count", endpoint=endpoint) == 3
    assert moved("aivax_time_to_first_chunk_seconds_count", gateway=gateway.slug) == 1
    assert moved("aivax_upstream_call_seconds_count", model=f"@stub/{upstream_model}", outcome="ok") == 2
    assert moved("aivax_request_phase_seconds_count", phase="hold") == 2
    assert moved("aivax_billing_step_seconds_count", step="reserve", outcome="ok") == 2
    assert moved("aivax_billing_step_seconds_count", step="settle", outcome="ok") == 2  # the stream's too
    out_tokens = moved("aivax_billed_quantity_total", sku="inference.chat_completions.out")
    assert out_tokens >= 4  # two answers of two words
    assert moved("aivax_billed_quantity_total", sku="inference.chat_completions.in") > 0
    assert moved("aivax_billed_usd_total", sku="inference.chat_completions.out") == pytest.approx(out_tokens * 0.000002)
    assert _value(after, "aivax_open_streams") == 0
    assert ("aivax_ingestion_queue_depth", frozenset()) not in after  # labelled by queue
    assert any(name == "aivax_ingestion_queue_depth" for name, _ in after)


def test_upstream_errors_and_retries_by_kind(live_asgi, metrics_token, api_key, gateway, stub, upstream_model):
    stub.app.script(upstream_model, status=503, fail_times=1, content="ok")
    before = _scrape(live_asgi)
    assert _chat(live_asgi, api_key.raw, gateway.slug).status_code == 200
    after = _scrape(live_asgi)
    assert (
        _value(after, "aivax_upstream_errors_total", kind="http_503")
        - _value(before, "aivax_upstream_errors_total", kind="http_503")
        == 1
    )
    assert (
        _value(after, "aivax_upstream_retries_total", kind="http_503")
        - _value(before, "aivax_upstream_retries_total", kind="http_503")
        == 1
    )


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Everything logged through the standard logging module, rendered by our JSON formatter."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(log.formatter("json"))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)  # an in-process Celery worker (another test) may have raised it
    root.addHandler(handler)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_every_log_line_of_a_request_is_json_with_its_request_id(
    live_asgi, json_lines, api_key, gateway, stub, upstream_model
):
    # One failed attempt first: the retry writes a log line from deep inside the request.
    stub.app.script(upstream_model, status=502, fail_times=1, content="fine")
    response = _chat(live_asgi, api_key.raw, gateway.slug, headers={"X-Request-ID": "lb-7f3a-0001"})
    assert response.status_code == 200
    deadline = time.monotonic() + 5  # the access line is written just after the last byte is sent
    while '"event": "request"' not in json_lines.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines() if line.strip()]
    mine = [line for line in lines if line.get("request_id") == "lb-7f3a-0001"]
    assert len(mine) >= 2, lines
    assert all(line.get("request_id") == "lb-7f3a-0001" for line in lines if line.get("logger") != "aivax-warm-up")
    access = next(line for line in mine if line["event"] == "request")
    assert access["status"] == 200 and access["endpoint"] == endpoint_of(CHAT)
    assert access["organization_id"] == gateway.organization_id
    assert access["key_prefix"] == api_key.key.prefix
    assert access["gateway"] == gateway.slug
    assert access["model"] == f"@stub/{upstream_model}"
    assert access["completion_id"] == response.headers["x-request-id"]
    assert access["duration_ms"] > 0 and "upstream_ms" in access
    retry = next(line for line in mine if "attempt 1 failed" in line["event"])
    assert retry["level"] == "info"
    text = json_lines.getvalue()
    assert api_key.raw not in text and "secret question" not in text and "sk-platform-secret" not in text


def test_request_id_is_returned_and_insane_ones_are_replaced(live_asgi):
    given = httpx.get(f"{live_asgi.url}/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    for bad in ("has space", "x" * 200, "new\\nline"):
        replaced = httpx.get(f"{live_asgi.url}/healthz", headers={"X-Request-ID": bad})
        assert replaced.headers["x-request-id"] != bad
        assert len(replaced.headers["x-request-id"]) == 32
    assert httpx.get(f"{live_asgi.url}/healthz").headers["x-request-id"]


def test_unsafe_fields_never_reach_a_line(json_lines):
    with log.request_scope("r-1"):
        extra = {"api_key": "sk-aivax-abc", "messages": ["hi"], "status": 3, "request": "GET /q?term=private"}
        logging.getLogger("t").info("hello", extra=extra)  # django.request passes the request object like this
    line = json.loads(json_lines.getvalue().splitlines()[-1])
    assert line["request_id"] == "r-1" and line["status"] == 3
    assert "api_key" not in line and "messages" not in line and "request" not in line


def test_celery_tasks_carry_the_request_id(json_lines):
    from aivax.log import CELERY_HEADER, _on_postrun, _on_prerun, _on_publish

    headers: dict = {}
    with log.request_scope("req-from-web"):
        _on_publish(headers=headers)
    assert headers == {CELERY_HEADER: "req-from-web"}

    class Task:
        name = "knowledge.ingest_document"

        class request:  # mimics celery's Task.request
            aivax_request_id = "req-from-web"

    _on_prerun(task_id="t1", task=Task())
    logging.getLogger("worker").info("indexing")
    _on_postrun(task_id="t1")
    line = json.loads(json_lines.getvalue().splitlines()[-1])
    assert line["request_id"] == "req-from-web" and line["task"] == "knowledge.ingest_document"
    assert log.current_request_id() is None


def test_server_timing_parser():
    assert parse_server_timing("resolve;dur=1.5, reserve;dur=2") == [("resolve", 0.0015), ("reserve", 0.002)]
    assert parse_server_timing("junk, x;dur=abc") == []


@pytest.mark.django_db(transaction=True)
def test_a_task_on_a_real_worker_logs_with_the_request_id_that_queued_it():
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_prerun

    from aivax.celery import app
    from billing.tasks import release_stale_reservations

    seen: list[str | None] = []

    def record(**_kwargs) -> None:  # connected after aivax.log's receiver, so it sees the bound id
        seen.append(log.current_request_id())

    task_prerun.connect(record, weak=False)
    try:
        with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, shutdown_timeout=10):
            with log.request_scope("req-queued-by-web"):
                release_stale_reservations.delay()
            deadline = time.monotonic() + 20
            while not seen and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        task_prerun.disconnect(record)
    assert seen == ["req-queued-by-web"]
