"""The contract inference and knowledge call: reserve an estimate, then settle the real lines, or release.

Each is one SQL statement (billing/sql.py), so each is atomic and costs one round trip.

- `reserve` holds an estimate with ONE conditional UPDATE (`reserved += x WHERE balance - reserved - x >=
  -credit_limit`): PostgreSQL re-checks the condition on the locked row, so concurrent requests cannot overspend.
  A zero amount (bring-your-own model) is recorded like any other: the request id is claimed, and it is refused
  when the organization is already at or below its floor (it will still pay searches and rewrites).
- `settle` writes the ledger rows and the request summary, moves the balance by what was inserted and releases
  the reservation, all in one statement. The unique constraint on (request_id, sku) decides what a retry writes, so
  a second call writes nothing and returns the lines already recorded. Settlement may take the balance below the
  floor (the real cost may exceed the estimate slightly); the reservation is what bounds concurrent spending.
- `charge` is `settle` without a reservation (knowledge ingestion and search): refused with 402 when the balance
  is already at or below the floor; concurrent charges may overshoot the floor by their own small amounts.
- `release`: the upstream failed before any output; nothing is billed and the estimate is freed.
- `reservations_release_stale` (beat): reservations still held long after any request could still be running (a
  crashed web process) are released; a later settle still bills.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from aivax.errors import Conflict, InsufficientBalance
from billing import locks
from billing.models import BilledRequest, BillingAccount, EntryKind, LedgerEntry, Reservation, ReservationStatus
from billing.money import ZERO, quantize_money
from billing.pricing import UsageLine
from billing.selectors import billed_lines
from billing.services.accounts import account_apply, account_ensure
from billing.sql import release_row, reserve_row, settle_rows

INSUFFICIENT_MESSAGE = (
    "Your organization's balance is insufficient for this request: it may cost up to {amount} USD. "
    "Add credit to your organization, or lower max_tokens."
)
EXHAUSTED_MESSAGE = "Your organization's balance is exhausted. Add credit to your organization to continue."


def _savepoint_if_nested() -> AbstractContextManager[object]:
    # One statement is atomic by itself; inside a caller's transaction, a savepoint keeps a failure (a duplicate
    # request id) from breaking that transaction.
    return transaction.atomic() if connection.in_atomic_block else nullcontext()


def reserve(*, organization_id: int, request_id: str, amount: Decimal) -> Reservation:
    amount = quantize_money(amount)
    if amount < 0:
        raise ValueError("a reservation cannot be negative")
    now = timezone.now()
    for _attempt in range(2):
        try:
            with _savepoint_if_nested():
                pk = reserve_row(organization_id=organization_id, request_id=request_id, amount=amount, at=now)
        except IntegrityError:
            pk = None  # the same request id, reserved concurrently: answered below like any retry
        if pk is not None:
            reservation = Reservation(
                pk=pk, organization_id=organization_id, request_id=request_id, amount=amount, created_at=now
            )
            reservation._state.adding = False
            return reservation
        existing = Reservation.unscoped.filter(request_id=request_id).first()
        if existing is not None:  # a retried reserve: the first one holds the estimate
            if existing.organization_id != organization_id:
                raise Conflict("This request id is already in use.", param="request_id")
            return existing
        if BillingAccount.unscoped.filter(organization_id=organization_id).exists():
            break
        account_ensure(organization_id=organization_id)
    raise InsufficientBalance(INSUFFICIENT_MESSAGE.format(amount=amount.normalize()))


def _normalized(line: UsageLine) -> UsageLine:
    return UsageLine(
        sku=line.sku,
        quantity=int(line.quantity),
        unit_price=quantize_money(line.unit_price),
        amount=quantize_money(line.amount),
        description=line.description[:300],
        estimated=line.estimated,
    )


def settlement_rows(
    *,
    request_id: str,
    organization_id: int,
    lines: list[UsageLine],
    gateway_id: uuid.UUID | None,
    api_key_id: uuid.UUID | None,
    model: str,
    metadata: dict[str, str] | None,
) -> tuple[list[UsageLine], list[LedgerEntry], BilledRequest]:
    """The normalised lines, their ledger rows and the request summary that `settle` writes (no I/O)."""
    lines = [_normalized(line) for line in lines]
    if any(line.amount < 0 for line in lines):
        raise ValueError("usage lines cannot be negative")
    now = timezone.now()
    entries = [
        LedgerEntry(
            organization_id=organization_id,
            kind=EntryKind.CHARGE,
            request_id=request_id,
            position=position,
            sku=line.sku,
            quantity=line.quantity,
            unit_price=line.unit_price,
            amount=line.amount,
            balance_delta=-line.amount,
            description=line.description,
            estimated=line.estimated,
            gateway_id=gateway_id,
            api_key_id=api_key_id,
            model=model,
            created_at=now,
        )
        for position, line in enumerate(lines)
    ]
    request = BilledRequest(
        organization_id=organization_id,
        request_id=request_id,
        gateway_id=gateway_id,
        api_key_id=api_key_id,
        model=model,
        metadata=metadata or {},
        estimated=any(line.estimated for line in lines),
        created_at=now,
    )
    return lines, entries, request


def settle(
    *,
    request_id: str,
    organization_id: int,
    lines: list[UsageLine],
    gateway_id: uuid.UUID | None,
    api_key_id: uuid.UUID | None,
    model: str,
    metadata: dict[str, str] | None,
) -> list[UsageLine]:
    """Bill `lines` for `request_id` exactly once; return the lines the ledger holds for it."""
    lines, entries, request = settlement_rows(
        request_id=request_id,
        organization_id=organization_id,
        lines=lines,
        gateway_id=gateway_id,
        api_key_id=api_key_id,
        model=model,
        metadata=metadata,
    )
    inserted, _charged = settle_rows(entries=entries, request=request)
    if inserted == len(lines):
        return lines
    return billed_lines(organization_id=organization_id, request_id=request_id)


def release(*, request_id: str) -> None:
    """Free a held estimate without billing anything (no-op if it was already settled or released)."""
    release_row(request_id=request_id, at=timezone.now())


def ensure_can_spend(*, organization_id: int) -> None:
    """402 unless the organization is above its floor (balance - reserved > -credit_limit)."""
    row = (
        BillingAccount.unscoped.filter(organization_id=organization_id)
        .values_list("balance", "reserved", "credit_limit")
        .first()
    )
    if row is None:
        account_ensure(organization_id=organization_id)
        row = (ZERO, ZERO, ZERO)
    balance, reserved, credit_limit = row
    if balance - reserved <= -credit_limit:
        raise InsufficientBalance(EXHAUSTED_MESSAGE)


def charge(
    *,
    organization_id: int,
    request_id: str,
    lines: list[UsageLine],
    gateway_id: uuid.UUID | None = None,
    api_key_id: uuid.UUID | None = None,
    model: str = "",
    metadata: dict[str, str] | None = None,
) -> list[UsageLine]:
    """Bill lines with no prior reservation (knowledge ingestion, search). Idempotent like `settle`."""
    try:
        ensure_can_spend(organization_id=organization_id)
    except InsufficientBalance:
        if BilledRequest.objects.for_org(organization_id).filter(request_id=request_id).exists():
            return billed_lines(organization_id=organization_id, request_id=request_id)  # a retry of a done charge
        raise
    return settle(
        request_id=request_id,
        organization_id=organization_id,
        lines=lines,
        gateway_id=gateway_id,
        api_key_id=api_key_id,
        model=model,
        metadata=metadata,
    )


def stale_after() -> timedelta:
    """`BILLING_RESERVATION_TTL_SECONDS`, else the longest an upstream call may take plus five minutes."""
    seconds = getattr(settings, "BILLING_RESERVATION_TTL_SECONDS", None)
    if seconds is None:
        seconds = float(settings.UPSTREAM_TOTAL_TIMEOUT) + 300
    return timedelta(seconds=float(seconds))


def reservations_release_stale(*, older_than: timedelta | None = None, batch_size: int = 500) -> int:
    """Release held reservations older than `older_than`; return how many. A later settle still bills.

    Settlements kept while the database was away (billing/services/pending.py) are written first, so the holds
    of delivered answers are settled rather than released (were one released first, its settle would still
    bill it: the money is exact either way)."""
    from billing.services import pending  # imported here: billing.services imports this module first

    pending.drain()
    cutoff = timezone.now() - (older_than if older_than is not None else stale_after())
    with transaction.atomic():
        stale = locks.stale_reservations(cutoff=cutoff, limit=batch_size)
        if not stale:
            return 0
        Reservation.unscoped.filter(pk__in=[r.pk for r in stale]).update(
            status=ReservationStatus.RELEASED, closed_at=timezone.now()
        )
        per_org: dict[int, Decimal] = defaultdict(lambda: ZERO)
        for reservation in stale:
            per_org[reservation.organization_id] += reservation.amount
        for organization_id in sorted(per_org):
            account_apply(organization_id=organization_id, reserved_delta=-per_org[organization_id])
    return len(stale)
