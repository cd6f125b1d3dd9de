"""Processes killed mid-work: a web process SIGKILLed with streams in flight leaves held reservations that the
sweeper releases (nothing half-written: the ledger reconciles); a Celery worker SIGKILLed mid-document leaves the
document to the sweeper, which queues it again: indexed once, no duplicate chunks, billed once."""

from __future__ import annotations

import time

import httpx

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


def test_worker_killed_mid_document_is_requeued_indexed_once_billed_once(healthy: FaultStack) -> None:
    stack = healthy
    headers = stack.headers()
    with httpx.Client(base_url=f"{stack.url}/api/v1", headers=headers, timeout=30) as api:
        response = api.post("/collections", json={"collectionName": "Faults", "chunkMaxTokens": 32})
        assert response.status_code == 201, response.text
        collection_id = response.json()["data"]["id"]
        text = "\n\n".join(f"Paragraph {i} tells of lamps, kettles and the warranty of item {i}." for i in range(600))
        stack.start_worker()  # loads the local embedding model before it takes a task
        response = api.put(f"/collections/{collection_id}/documents", json={"name": "big.txt", "contents": text})
        assert response.status_code == 200, response.text
        document_id = response.json()["data"]["documentId"]

    def status() -> tuple[str, int]:
        row = stack.sql("SELECT status, attempts FROM knowledge_document WHERE id = %s", [document_id])[0]
        return str(row[0]), int(row[1])

    deadline = time.monotonic() + 120
    while status()[0] != "processing":
        assert time.monotonic() < deadline and status()[0] == "queued", (status(), stack.worker_log())
        time.sleep(0.05)
    time.sleep(0.5)  # mid-document: parsing done, embedding under way
    stack.kill_worker()
    assert status() == ("processing", 1)  # what a dead worker leaves behind
    assert stack.sql("SELECT count(*) FROM knowledge_chunk WHERE document_id = %s", [document_id])[0][0] == 0

    # The sweeper (its stale limit passed) queues it again; a new worker indexes it.
    out = stack.manage(
        "shell",
        "-c",
        "from datetime import timedelta; from django.utils import timezone; "
        "from knowledge.sweep import documents_requeue_stale as s; "
        "print(s(now=timezone.now() + timedelta(hours=1)))",
    )
    assert "requeued=1" in out, out
    stack.start_worker()
    deadline = time.monotonic() + 180
    while status()[0] != "indexed":
        assert time.monotonic() < deadline and status()[0] in ("queued", "processing"), (status(), stack.worker_log())
        time.sleep(0.2)
    stack.kill_worker()
    chunk_count = stack.sql("SELECT chunk_count FROM knowledge_document WHERE id = %s", [document_id])[0][0]
    chunks = stack.sql(
        "SELECT count(*), count(DISTINCT position) FROM knowledge_chunk WHERE document_id = %s", [document_id]
    )
    assert chunk_count > 50 and chunks[0] == (chunk_count, chunk_count)  # one set of chunks, no duplicates
    assert status() == ("indexed", 2)
    lines = stack.sql(
        "SELECT count(*) FROM billing_ledgerentry WHERE sku = 'knowledge.embedding' AND request_id LIKE %s",
        [f"embed-{document_id}-%"],
    )
    assert lines[0][0] == 1  # billed once
