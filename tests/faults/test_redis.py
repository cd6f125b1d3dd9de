"""Redis killed while traffic flows: Redis only caches API keys and gateways (the database has them), so every
request is still served, from the database; /readyz reports the outage; back up, Redis is used again without a
restart. (Rate limits while Redis is down follow RATE_LIMIT_FAIL_OPEN: quotas/limiter.py and its tests.)"""

from __future__ import annotations

import time

import httpx
import redis

from tests.faults.stack import FaultStack, Traffic


def test_redis_outage_falls_back_to_the_database(healthy: FaultStack) -> None:
    stack = healthy
    gateway = stack.seed["gateways"]["steady"]
    stack.stub.app.script("steady", chunk_delay=0.05)
    with Traffic(stack, gateway, workers=6) as traffic:
        time.sleep(1.0)
        stack.stop_redis()
        down_at = time.monotonic()
        time.sleep(2.5)
        assert httpx.get(f"{stack.url}/readyz", timeout=5).status_code == 503
        # A key and a gateway never seen before (not cached anywhere) are found in the database.
        assert stack.chat(gateway, "fresh while redis is down").status == 200
        stack.start_redis()
        up_at = time.monotonic()
        time.sleep(2.0)

    outcomes = [o for _, o in traffic.outcomes]
    failed = [o for o in outcomes if o.status != 200 or not (o.done or o.body)]
    assert not failed, (failed[:5], stack.web_log())
    assert len(traffic.since(down_at)) > len(traffic.since(up_at)) > 0  # traffic flowed during the outage
    assert httpx.get(f"{stack.url}/readyz", timeout=5).status_code == 200
    # Back up, the cache is filled again (the web process reconnected by itself).
    assert stack.chat(gateway).status == 200
    client = redis.Redis.from_url(stack.redis_url)
    assert client.keys("*apikey*") and client.keys("*gw*")


def test_enqueue_while_redis_is_down_leaves_the_document_queued_for_the_sweeper(healthy: FaultStack) -> None:
    stack = healthy
    with httpx.Client(base_url=f"{stack.url}/api/v1", headers=stack.headers(), timeout=30) as api:
        response = api.post("/collections", json={"collectionName": "Queued while down"})
        assert response.status_code == 201, response.text
        collection_id = response.json()["data"]["id"]
        stack.stop_redis()
        response = api.put(
            f"/collections/{collection_id}/documents", json={"name": "a.txt", "contents": "Saved while Redis was down."}
        )
    assert response.status_code == 200, (response.text, stack.web_log())
    document_id = response.json()["data"]["documentId"]
    assert stack.sql("SELECT status FROM knowledge_document WHERE id = %s", [document_id])[0][0] == "queued"
    stack.start_redis()
    out = stack.manage(
        "shell",
        "-c",
        "from datetime import timedelta; from django.utils import timezone; "
        "from knowledge.sweep import documents_requeue_stale as s; "
        "print(s(now=timezone.now() + timedelta(hours=1)))",
    )
    assert "resent=1" in out, out
    assert redis.Redis.from_url(stack.redis_url).keys("*queue*")  # the message is on the broker now
