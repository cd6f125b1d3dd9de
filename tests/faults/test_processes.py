"""Processes killed mid-work: a web process SIGKILLed with streams in flight leaves held reservations that the
sweeper releases (nothing half-written: the ledger reconciles); a Celery worker SIGKILLed mid-document leaves the
document to the sweeper, which queues it again: indexed once, no duplicate chunks, billed once."""

from __future__ import annotations

import time

from tests.faults.stack import FaultStack, Traffic


def test_web_process_killed_mid_stream_reservations_swept(healthy: FaultStack) -> None:
    stack = healthy
    gateway = stack.seed["gateways"]["steady"]
    stack.stub.app.script("steady", chunk_delay=0.3)
    with Traffic(stack, gateway, workers=6, text=" ".join(["word"] * 40), streams_only=True) as traffic:
        deadline = time.monotonic() + 15
        while stack.held_reservations() < 4:  # slow streams open, each holding a reservation
            assert time.monotonic() < deadline, (traffic.outcomes[:3], stack.web_log())
            time.sleep(0.1)
        stack.kill_web()
    held = [row[0] for row in stack.sql("SELECT request_id FROM billing_reservation WHERE status = 'held'")]
    assert len(held) >= 4
    # Nothing half-written: the killed requests have no ledger line and no request summary.
    assert stack.sql("SELECT count(*) FROM billing_ledgerentry WHERE request_id = ANY(%s)", [held])[0][0] == 0
    assert stack.sql("SELECT count(*) FROM billing_billedrequest WHERE request_id = ANY(%s)", [held])[0][0] == 0
    assert all(o.status in (0, 200) for _, o in traffic.outcomes)
    stack.start_web()
    assert stack.chat(gateway, "after the crash").status == 200
    stack.stub.app.script("steady")
    # `healthy` runs the sweeper, then checks: nothing held, zero drift.
