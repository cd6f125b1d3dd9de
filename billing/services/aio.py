"""Async twins of the ledger services, for the async inference path.

`areserve`, `asettle` and `arelease` run their single SQL statement (billing/sql.py) on a native async
connection (aivax.adb): one round trip, no thread hop. Their rare branches (a retried request id, an account
not created yet, a partial retry) fall back to the sync service, which answers them exactly as before.
The others run the sync function in an executor thread (`thread_sensitive=False`, so billing never queues behind
other sync work on the event loop's single sync thread) and calls `close_old_connections()` before and after,
so an executor thread never keeps a broken or expired connection.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.utils import timezone

from aivax import adb
from aivax.outage import DATABASE_ERRORS
from billing import sql
from billing.models import Reservation
from billing.money import quantize_money
from billing.pricing import UsageLine
from billing.services import ledger, pending

T = TypeVar("T")


def _with_fresh_connection(func: Callable[..., T], kwargs: dict[str, Any]) -> T:
    close_old_connections()
    try:
        return func(**kwargs)
    finally:
        close_old_connections()


async def _run(func: Callable[..., T], **kwargs: Any) -> T:
    return await sync_to_async(_with_fresh_connection, thread_sensitive=False)(func, kwargs)


async def areserve(*, organization_id: int, request_id: str, amount: Decimal) -> Reservation:
    amount = quantize_money(amount)
    if amount >= 0:
        now = timezone.now()
        statement = sql.reserve_statement(organization_id=organization_id, request_id=request_id, amount=amount, at=now)
        with contextlib.suppress(psycopg.IntegrityError):
            row = await adb.fetchone(*statement)
            if row is not None:
                reservation = Reservation(
                    pk=row[0], organization_id=organization_id, request_id=request_id, amount=amount, created_at=now
                )
                reservation._state.adding = False
                return reservation
    # Refused, a duplicate, or no account yet: the sync service tells which.
    return await _run(ledger.reserve, organization_id=organization_id, request_id=request_id, amount=amount)


async def asettle(
    *,
    request_id: str,
    organization_id: int,
    lines: list[UsageLine],
    gateway_id: uuid.UUID | None,
    api_key_id: uuid.UUID | None,
    model: str,
    metadata: dict[str, str] | None,
) -> list[UsageLine]:
    normalised, entries, request = ledger.settlement_rows(
        request_id=request_id,
        organization_id=organization_id,
        lines=lines,
        gateway_id=gateway_id,
        api_key_id=api_key_id,
        model=model,
        metadata=metadata,
    )
    row = await adb.fetchone(*sql.settle_statement(entries=entries, request=request), timeout=pending.wait_setting())
    if row is not None and int(row[0]) == len(normalised):
        return normalised
    # A retried settle: the ledger already holds (some of) this request's lines; return what it holds.
    return await _run(
        ledger.settle,
        request_id=request_id,
        organization_id=organization_id,
        lines=lines,
        gateway_id=gateway_id,
        api_key_id=api_key_id,
        model=model,
        metadata=metadata,
    )


async def asettle_or_defer(
    *,
    request_id: str,
    organization_id: int,
    lines: list[UsageLine],
    gateway_id: uuid.UUID | None,
    api_key_id: uuid.UUID | None,
    model: str,
    metadata: dict[str, str] | None,
) -> list[UsageLine]:
    """`asettle` for an answer already delivered: if the database cannot take the settlement now (down, or its
    pool busy past BILLING_SETTLE_WAIT_SECONDS), it is kept and written later (billing/services/pending.py) and
    the lines it will write are returned, so `generation_context` still names exactly what the ledger will hold.
    (The settle statement is one transaction: when it raised, either nothing was written, or, if the connection
    broke after the commit, the retry writes nothing more.)"""
    settlement: dict[str, Any] = {
        "request_id": request_id,
        "organization_id": organization_id,
        "gateway_id": gateway_id,
        "api_key_id": api_key_id,
        "model": model,
        "metadata": metadata,
    }
    try:
        return await asettle(lines=lines, **settlement)
    except DATABASE_ERRORS:
        normalised, _entries, _request = ledger.settlement_rows(lines=lines, **settlement)
        await pending.adefer(lines=normalised, **settlement)
        return normalised


async def arelease(*, request_id: str) -> None:
    await adb.fetchone(*sql.release_statement(request_id=request_id, at=timezone.now()))


async def aensure_can_spend(*, organization_id: int) -> None:
    await _run(ledger.ensure_can_spend, organization_id=organization_id)


async def acharge(
    *,
    organization_id: int,
    request_id: str,
    lines: list[UsageLine],
    gateway_id: uuid.UUID | None = None,
    api_key_id: uuid.UUID | None = None,
    model: str = "",
    metadata: dict[str, str] | None = None,
) -> list[UsageLine]:
    return await _run(
        ledger.charge,
        organization_id=organization_id,
        request_id=request_id,
        lines=lines,
        gateway_id=gateway_id,
        api_key_id=api_key_id,
        model=model,
        metadata=metadata,
    )
