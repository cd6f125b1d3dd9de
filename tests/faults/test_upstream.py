"""Upstream faults, each made for real by the stub upstream (or by stopping it): 429 with Retry-After within and
beyond the retry budget, 5xx, a stopped upstream, a read timeout, a stream that dies or stalls mid-way, a TLS
error, and the per-upstream circuit breaker (fail fast, or straight to the fallback model)."""

from __future__ import annotations

import time

from tests.faults.stack import FaultStack


def _billed(stack: FaultStack, request_id: str) -> tuple[int, bool]:
    """(completion tokens charged, estimated) of one request, from the ledger."""
    rows = stack.sql(
        "SELECT quantity, estimated FROM billing_ledgerentry WHERE request_id = %s AND sku LIKE %s",
        [request_id, "%.out"],
    )
    assert len(rows) == 1, rows
    return int(rows[0][0]), bool(rows[0][1])


def test_429_within_the_budget_is_retried_after_its_retry_after(restored: FaultStack) -> None:
    stack = restored
    stack.stub.app.script("limited", status=429, retry_after="1", fail_times=1)
    started = time.monotonic()
    outcome = stack.chat(stack.seed["gateways"]["limited"])
    assert outcome.status == 200, outcome
    assert time.monotonic() - started >= 1.0  # it waited as told
    assert len(stack.stub.app.requests_for("limited")) == 2


def test_429_beyond_the_budget_is_passed_on_with_its_retry_after(restored: FaultStack) -> None:
    stack = restored
    stack.stub.app.script("limited", status=429, retry_after="30")
    before = len(stack.stub.app.requests_for("limited"))
    started = time.monotonic()
    outcome = stack.chat(stack.seed["gateways"]["limited"])
    assert outcome.status == 429, outcome
    assert outcome.retry_after == "30" and outcome.body is not None
    assert outcome.body["error"]["type"] == "rate_limit_error"
    assert time.monotonic() - started < 2.5  # no 30-second wait on our side
    assert len(stack.stub.app.requests_for("limited")) == before + 1
    stack.stub.app.script("limited")


def test_breaker_opens_after_repeated_5xx_fails_fast_then_recovers(restored: FaultStack) -> None:
    stack = restored
    gateway = stack.seed["gateways"]["breaker"]
    stack.stub.app.script("breaker", status=500)
    first = stack.chat(gateway)
    assert first.status == 502 and first.body is not None  # three attempts, then the failure is summarised
    assert len(stack.stub.app.requests_for("breaker")) == 3
    # Open: refused at once with 503 + Retry-After, the upstream is not called.
    for stream in (False, True):
        started = time.monotonic()
        outcome = stack.chat(gateway, stream=stream)
        assert outcome.status == 503 and outcome.retry_after, outcome
        assert time.monotonic() - started < 0.5
    assert len(stack.stub.app.requests_for("breaker")) == 3
    # The upstream heals; after the open period one trial request closes the breaker.
    stack.stub.app.script("breaker")
    time.sleep(3.2)
    assert stack.chat(gateway).status == 200
    assert stack.chat(gateway, stream=True).done


def test_open_breaker_sends_requests_straight_to_the_fallback_model(restored: FaultStack) -> None:
    stack = restored
    gateway = stack.seed["gateways"]["with_fallback"]
    stack.stub.app.script("primary", status=503)
    outcome = stack.chat(gateway)
    assert outcome.status == 200 and outcome.body is not None
    assert outcome.body["model"] == "@stub/fallback"
    primary_calls = len(stack.stub.app.requests_for("primary"))
    started = time.monotonic()
    outcome = stack.chat(gateway, stream=True)
    assert outcome.done and outcome.events[0]["model"] == "@stub/fallback"
    assert time.monotonic() - started < 1.0  # no retries against the broken primary any more
    assert len(stack.stub.app.requests_for("primary")) == primary_calls
    stack.stub.app.script("primary")


def test_stopped_upstream_is_a_clean_502_and_served_again_when_back(restored: FaultStack) -> None:
    stack = restored
    gateway = stack.seed["gateways"]["flaky"]
    stack.stop_stub()
    outcome = stack.chat(gateway)
    assert outcome.status == 502 and outcome.body is not None, outcome
    assert outcome.body["error"]["code"] == "upstream_error"
    stack.start_stub()
    time.sleep(3.2)  # the breaker opened on the connection errors
    assert stack.chat(gateway).status == 200


def test_read_timeout_is_a_504(restored: FaultStack) -> None:
    stack = restored
    stack.stub.app.script("stall", hang=True)
    outcome = stack.chat(stack.seed["gateways"]["stall"], timeout=30)
    assert outcome.status == 504, outcome
    assert outcome.body is not None and outcome.body["error"]["code"] == "upstream_timeout"
    stack.stub.app.script("stall")


def test_stream_that_stalls_mid_way_ends_with_an_error_event_and_bills_what_arrived(restored: FaultStack) -> None:
    stack = restored
    time.sleep(3.2)  # let the previous test's breaker close
    stack.stub.app.script("stall", stall_after_chunks=3)
    outcome = stack.chat(stack.seed["gateways"]["stall"], "one two three four five six", stream=True, timeout=30)
    assert outcome.status == 200 and outcome.error_event is not None and not outcome.done, outcome
    assert outcome.error_event["error"]["code"] == "upstream_timeout"
    received = "".join(e["choices"][0]["delta"].get("content") or "" for e in outcome.events if e.get("choices"))
    assert received.startswith("Echo:") and "six" not in received
    tokens, estimated = _billed(stack, outcome.events[0]["id"])
    assert tokens > 0 and estimated
    stack.stub.app.script("stall")


def test_stream_that_dies_mid_way_ends_with_an_error_event_and_bills_what_arrived(restored: FaultStack) -> None:
    stack = restored
    stack.stub.app.script("cut", break_after_chunks=2)
    outcome = stack.chat(stack.seed["gateways"]["cut"], "one two three four five six", stream=True)
    assert outcome.status == 200 and outcome.error_event is not None and not outcome.done, outcome
    assert outcome.error_event["error"]["code"] == "upstream_error"
    tokens, estimated = _billed(stack, outcome.events[0]["id"])
    assert tokens > 0 and estimated


def test_tls_failure_is_a_clean_502(restored: FaultStack) -> None:
    outcome = restored.chat(restored.seed["gateways"]["tls"])
    assert outcome.status == 502 and outcome.body is not None, outcome
    assert "sk-" not in str(outcome.body)
