"""Settlements that could not be written when their answer was delivered (the database down or its pool
exhausted past BILLING_SETTLE_WAIT_SECONDS). An answer that was delivered is never left unbilled:

1. `adefer` writes the settlement (its priced, merged lines and the request's identity) to a Redis list keyed by
   the run's prefix (`<CACHE_KEY_PREFIX>:billing:pending-settlements`), then starts an in-process retry that
   writes it with backoff until it lands and then removes the entry.
2. The sweeper (`billing.release_stale_reservations`, beat) first drains that list (`drain`), then releases
   stale holds; a settlement written after its hold was released still bills (the settle statement closes
   whatever is still held and moves the balance by the lines it inserts).

The settle statement is idempotent per request id (the ledger's unique constraint decides what a retry may
write), so an entry may be written any number of times: the in-process retry and the sweeper may race, and an
entry may be settled twice; only one set of ledger rows results.

On a crash between steps:
- before the Redis write: the process dies with the settlement only in memory; its hold stays held until the
  sweeper releases it, and the answer is not billed (the one window left, milliseconds wide, only while the
  database is already failing);
- after the Redis write, before the retry lands: the sweeper of any process settles it from Redis;
- after the settle, before the entry is removed: the next drain settles it again, which writes nothing new.
If Redis is down too, the in-process retry is the only copy (logged at ERROR): it still lands unless this
process dies before the database returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings

from aivax import outage
from aivax.redis_client import async_redis, rkey, sync_redis
from billing.pricing import UsageLine

logger = logging.getLogger(__name__)
_retries: set[asyncio.Task[Any]] = set()
# In-process retries back off from 0.5 s to this many seconds between attempts.
MAX_BACKOFF_SECONDS = 30.0


def queue_key() -> str:
    return rkey("billing", "pending-settlements")


def dead_key() -> str:
    """Entries that failed for a reason other than an outage (kept for an operator, never dropped)."""
    return rkey("billing", "pending-settlements", "failed")


def encode(
    *,
    request_id: str,
    organization_id: int,
    lines: list[UsageLine],
    gateway_id: uuid.UUID | None,
    api_key_id: uuid.UUID | None,
    model: str,
    metadata: dict[str, str] | None,
) -> str:
    return json.dumps(
        {
            "request_id": request_id,
            "organization_id": organization_id,
            "lines": [
                {
                    "sku": line.sku,
                    "quantity": line.quantity,
                    "unit_price": str(line.unit_price),
                    "amount": str(line.amount),
                    "description": line.description,
                    "estimated": line.estimated,
                }
                for line in lines
            ],
            "gateway_id": str(gateway_id) if gateway_id else None,
            "api_key_id": str(api_key_id) if api_key_id else None,
            "model": model,
            "metadata": metadata,
        },
        sort_keys=True,
    )


def decode(raw: str | bytes) -> dict[str, Any]:
    """The keyword arguments of `ledger.settle` for one entry."""
    data = json.loads(raw)
    data["lines"] = [
        UsageLine(
            sku=line["sku"],
            quantity=int(line["quantity"]),
            unit_price=Decimal(line["unit_price"]),
            amount=Decimal(line["amount"]),
            description=line["description"],
            estimated=bool(line["estimated"]),
        )
        for line in data["lines"]
    ]
    for name in ("gateway_id", "api_key_id"):
        data[name] = uuid.UUID(data[name]) if data[name] else None
    return data


async def adefer(**settlement: Any) -> None:
    """Keep a settlement that failed for an outage (the `asettle` arguments, lines already normalised): durably
    in Redis if it answers, and retried in the background until it lands."""
    raw = encode(**settlement)
    try:
        await async_redis().rpush(queue_key(), raw)
        stored = True
    except outage.REDIS_ERRORS:
        logger.error("settlement of %s kept in memory only (Redis down too)", settlement["request_id"])
        stored = False
    outage.count("billing.settle_deferred")
    task = asyncio.ensure_future(_retry(raw, settlement, stored=stored))
    _retries.add(task)
    task.add_done_callback(_retries.discard)


async def _retry(raw: str, settlement: dict[str, Any], *, stored: bool) -> None:
    from billing.services.aio import asettle

    delay = 0.5
    while True:
        await asyncio.sleep(delay)
        try:
            await asettle(**settlement)
            break
        except outage.DATABASE_ERRORS as exc:
            logger.warning("deferred settlement of %s still waiting: %s", settlement["request_id"], exc)
            delay = min(delay * 2, MAX_BACKOFF_SECONDS)
        except Exception:
            logger.exception("deferred settlement of %s failed; left for the sweeper", settlement["request_id"])
            if not stored:  # nowhere else to keep it: park it where the sweeper looks
                stored = await _push(raw)
            return
    logger.info("deferred settlement of %s written", settlement["request_id"])
    if stored:
        # If this fails the entry stays listed: the sweeper settles it again (writes nothing) and removes it.
        with contextlib.suppress(*outage.REDIS_ERRORS):
            await async_redis().lrem(queue_key(), 1, raw)


async def _push(raw: str) -> bool:
    try:
        await async_redis().rpush(queue_key(), raw)
        return True
    except outage.REDIS_ERRORS:
        logger.error("deferred settlement lost from Redis's view: %s", raw)
        return False


def pending_count() -> int:
    return int(sync_redis().llen(queue_key()))  # type: ignore[arg-type]


def drain(*, batch_size: int = 500) -> int:
    """Write pending settlements (sync, for the sweeper); return how many were written. Each entry is removed
    only after its settle committed (a crash in between: written again, idempotently, next time). Stops at the
    first database outage (the rest waits for the next run); Redis down: nothing to drain now."""
    from billing.services.ledger import settle

    try:
        entries = sync_redis().lrange(queue_key(), 0, batch_size - 1)
    except outage.REDIS_ERRORS as exc:
        logger.warning("pending settlements not drained (Redis: %s)", exc)
        return 0
    written = 0
    for item in entries:  # type: ignore[union-attr]
        raw = item.decode() if isinstance(item, bytes) else str(item)
        try:
            settle(**decode(raw))
        except outage.DATABASE_ERRORS:
            raise
        except Exception:
            logger.exception("pending settlement could not be written; moved to %s", dead_key())
            sync_redis().rpush(dead_key(), raw)
            sync_redis().lrem(queue_key(), 1, raw)
            continue
        sync_redis().lrem(queue_key(), 1, raw)
        written += 1
    return written


def wait_setting() -> float:
    return float(getattr(settings, "BILLING_SETTLE_WAIT_SECONDS", 30))
