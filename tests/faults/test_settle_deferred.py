"""An answer that was delivered is never left unbilled: PostgreSQL goes away while a stream is relaying, so its
settle cannot be written when the answer ends. The client still gets the whole answer and its final chunk names
the lines; the settlement is kept (Redis) and written once the database is back, by the same process, or, if
that process died meanwhile, by the sweeper. The ledger then holds exactly the lines `generation_context` named."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import httpx

from tests.faults.stack import FaultStack

WORDS = " ".join(f"word{i}" for i in range(20))


def _stream_across_outage(stack: FaultStack, gateway: str) -> tuple[str, list[dict[str, Any]]]:
    """Start a slow stream, stop PostgreSQL once it is relaying, read it to the end; (request id, billed lines)."""
    payload = {"model": gateway, "messages": [{"role": "user", "content": WORDS}], "stream": True}
    events: list[dict[str, Any]] = []
    done = False
    with (
        httpx.Client(timeout=60) as client,
        client.stream("POST", f"{stack.url}/api/v1/chat/completions", json=payload, headers=stack.headers()) as r,
    ):
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                done = True
                continue
            events.append(json.loads(data))
            if len(events) == 1:
                stack.stop_postgres()  # reserved and relaying: only the settle is left to write
    errors = [e for e in events if "error" in e]
    assert done and not errors, (errors, stack.web_log()[-3000:])
    final = events[-1]
    assert final["choices"][0]["finish_reason"] == "stop"
    lines = final["generation_context"]["generated_usage"]
    assert lines and all(Decimal(str(line["amount"])) > 0 for line in lines), final
    return final["id"], lines


def _ledger(stack: FaultStack, request_id: str) -> list[tuple[str, int, Decimal, Decimal]]:
    rows = stack.sql(
        "SELECT sku, quantity, unit_price, amount FROM billing_ledgerentry WHERE request_id = %s ORDER BY sku",
        [request_id],
    )
    return [(sku, int(q), Decimal(p), Decimal(a)) for sku, q, p, a in rows]


def _expected(lines: list[dict[str, Any]]) -> list[tuple[str, int, Decimal, Decimal]]:
    return sorted(
        (line["sku"], int(line["quantity"]), Decimal(str(line["unit_price"])), Decimal(str(line["amount"])))
        for line in lines
    )


def _assert_ledger(stack: FaultStack, request_id: str, lines: list[dict[str, Any]]) -> None:
    assert _ledger(stack, request_id) == _expected(lines)


def _wait_for_ledger(stack: FaultStack, request_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not _ledger(stack, request_id):
        assert time.monotonic() < deadline, stack.web_log()
        time.sleep(0.3)


def test_settle_during_outage_is_written_when_the_database_returns(healthy: FaultStack) -> None:
    stack = healthy
    gateway = stack.seed["gateways"]["steady"]
    stack.stub.app.script("steady", chunk_delay=0.15)
    request_id, lines = _stream_across_outage(stack, gateway)
    stack.start_postgres()
    # The same process writes it (backoff: within seconds of the database's return), settling its hold.
    _wait_for_ledger(stack, request_id, timeout=40)
    _assert_ledger(stack, request_id, lines)
    status = stack.sql("SELECT status FROM billing_reservation WHERE request_id = %s", [request_id])
    assert status == [("settled",)]
    stack.stub.app.script("steady")


def test_settle_kept_across_a_crash_is_written_by_the_sweeper(healthy: FaultStack) -> None:
    stack = healthy
    gateway = stack.seed["gateways"]["steady"]
    stack.stub.app.script("steady", chunk_delay=0.15)
    request_id, lines = _stream_across_outage(stack, gateway)
    stack.kill_web()  # the process that kept it in memory is gone: only Redis has it now
    stack.start_postgres()
    stack.start_web()
    assert not _ledger(stack, request_id)
    stack.sweep_reservations()  # drains pending settlements before releasing stale holds
    _assert_ledger(stack, request_id, lines)
    stack.sweep_reservations()  # a second drain writes nothing more
    _assert_ledger(stack, request_id, lines)
    stack.stub.app.script("steady")
    # `healthy` then checks: nothing held, zero drift.
