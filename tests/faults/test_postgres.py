"""PostgreSQL stopped (pg_ctl stop -m fast, as a restart or failover does) while traffic flows, streams included:
clients get 503 + Retry-After (never 500), nothing is sent upstream for a request that cannot be reserved, and
the same web process serves again within seconds of the database's return, without a restart."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.faults.stack import FaultStack, Outcome, Traffic, request


def test_postgres_restart_under_traffic(healthy: FaultStack) -> None:
    stack = healthy
    gateway = stack.seed["gateways"]["steady"]
    stack.stub.app.script("steady", chunk_delay=0.05)
    with Traffic(stack, gateway, workers=6) as traffic:
        time.sleep(1.5)
        stack.stop_postgres()
        down_at = time.monotonic()
        time.sleep(2.0)

        # While it is down: a clean 503 with Retry-After, and the upstream never hears of the request.
        before = len(stack.stub.app.requests_for("steady"))
        marker = "while-the-database-is-down"
        for stream in (False, True):
            outcome = stack.chat(gateway, marker, stream=stream)
            assert outcome.status == 503, (outcome, stack.web_log())
            assert outcome.retry_after is not None and outcome.body is not None
            assert outcome.body["error"]["code"] == "service_unavailable"
        assert not any(marker in str(r["messages"]) for r in stack.stub.app.requests_for("steady")[before:])

        stack.start_postgres()
        up_at = time.monotonic()
        recovery = traffic.wait_for_success(up_at, timeout=15)
        time.sleep(max(0.0, up_at + 5 - time.monotonic()))

    outcomes = [o for _, o in traffic.outcomes]
    bad = [o for o in outcomes if not o.well_formed or o.status == 500]
    assert not bad, (bad[:5], stack.web_log())
    during = traffic.since(down_at + 1.5)
    assert any(o.status == 503 for o in during)
    assert recovery < 10
    # Connections that died with the server are never handed out again, and the pool's refill attempts (which
    # back off while it is down) find it within DB_POOL_RECONNECT_SECONDS: from then on nothing fails.
    after = traffic.since(up_at + 3)
    failed = [o for o in after if o.status != 200 or not (o.done or o.body)]
    assert after and not failed, (failed, stack.web_log())
    # After recovery every request is served.
    for stream in (False, True):
        outcome = stack.chat(gateway, stream=stream)
        assert outcome.status == 200 and (outcome.done or outcome.body), outcome


def test_quiet_restart_leaves_no_dead_connection_behind(healthy: FaultStack) -> None:
    """The pool holds idle connections when the database restarts between two requests: the first requests after
    it must not be handed those dead connections (the old hand-made pool answered them with errors)."""
    stack = healthy
    gateway = stack.seed["gateways"]["steady"]
    stack.stub.app.script("steady", chunk_delay=0.0)

    async def burst() -> list[Outcome]:
        async with httpx.AsyncClient(timeout=20) as client:
            return await asyncio.gather(
                *(request(stack, gateway, "warm", stream=i % 2 == 0, client=client) for i in range(12))
            )

    assert all(o.status == 200 for o in asyncio.run(burst()))  # several pooled connections now idle
    stack.stop_postgres()
    stack.start_postgres()
    outcomes = asyncio.run(burst())
    assert all(o.status == 200 and (o.done or o.body) for o in outcomes), [o for o in outcomes if o.status != 200]
