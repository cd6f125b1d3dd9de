"""Holds that cover the worst case: `ahold` opens or grows a request's reservation by as much of a wanted amount
as the organization can pay above its floor, never less than a minimum, in one statement (billing/sql.py).

The inference path asks for the worst case of each model round (prompt plus the largest answer allowed) and
caps the upstream to what was actually held, so a request can never cost more than its hold. A request's hold
only grows while it runs (one round after another); `settle` closes it whole.

Crash safety: a hold is one statement (account and reservation move together or not at all); a process that dies
while holding leaves a held reservation that the sweeper releases (billing.services.reservations).
"""

from __future__ import annotations

from decimal import Decimal

import psycopg
from django.db import IntegrityError, connection
from django.utils import timezone

from aivax import adb
from aivax.errors import Conflict, InsufficientBalance
from billing import sql
from billing.models import BillingAccount, Reservation
from billing.money import ZERO, quantize_money
from billing.services.accounts import account_ensure
from billing.services.aio import _run

NEEDED_MESSAGE = (
    "Your organization's balance is insufficient for this request: even a minimal answer needs {needed} USD and "
    "{available} USD is available. Add credit to your organization, or shorten the conversation."
)


def _money_text(value: Decimal) -> str:
    return format(quantize_money(value).normalize(), "f")


def insufficient(*, needed: Decimal, available: Decimal) -> InsufficientBalance:
    error = InsufficientBalance(
        NEEDED_MESSAGE.format(needed=_money_text(needed), available=_money_text(max(available, ZERO)))
    )
    error.needed = quantize_money(needed)  # type: ignore[attr-defined]
    error.available = quantize_money(max(available, ZERO))  # type: ignore[attr-defined]
    return error


def _explain_refusal(*, organization_id: int, request_id: str, minimum: Decimal, new: bool) -> None:
    """A refused hold: raise the right error (the answer is never "held nothing")."""
    if new:
        existing = Reservation.unscoped.filter(request_id=request_id).first()
        if existing is not None:
            if existing.organization_id != organization_id:
                raise Conflict("This request id is already in use.", param="request_id")
            raise Conflict("This request is already running or done.", param="request_id")
    row = BillingAccount.unscoped.filter(organization_id=organization_id).values_list(
        "balance", "reserved", "credit_limit"
    )
    balance, reserved, credit_limit = row.first() or (ZERO, ZERO, ZERO)
    raise insufficient(needed=minimum, available=balance - reserved + credit_limit)


def _hold_sync(*, organization_id: int, request_id: str, want: Decimal, minimum: Decimal, new: bool) -> Decimal:
    """The slow path: the account may not exist yet, or the hold was refused and needs explaining."""
    for _attempt in range(2):
        statement = sql.hold_statement(
            organization_id=organization_id, request_id=request_id, want=want, minimum=minimum, at=timezone.now(),
            new=new,
        )  # fmt: skip
        try:
            with connection.cursor() as cursor:
                cursor.execute(*statement)
                row = cursor.fetchone()
        except IntegrityError:
            row = None  # the same request id, opened concurrently: explained below
        if row is not None:
            return Decimal(row[0])
        if BillingAccount.unscoped.filter(organization_id=organization_id).exists():
            break
        account_ensure(organization_id=organization_id)
    _explain_refusal(organization_id=organization_id, request_id=request_id, minimum=minimum, new=new)
    raise AssertionError("unreachable")


def _checked(want: Decimal, minimum: Decimal) -> tuple[Decimal, Decimal]:
    want, minimum = quantize_money(want), quantize_money(minimum)
    if minimum < 0 or want < minimum:
        raise ValueError("a hold needs 0 <= minimum <= want")
    return want, minimum


def hold(*, organization_id: int, request_id: str, want: Decimal, minimum: Decimal, new: bool) -> Decimal:
    """Sync twin of `ahold` (tests, management commands)."""
    want, minimum = _checked(want, minimum)
    return _hold_sync(organization_id=organization_id, request_id=request_id, want=want, minimum=minimum, new=new)


async def ahold(*, organization_id: int, request_id: str, want: Decimal, minimum: Decimal, new: bool) -> Decimal:
    """Hold between `minimum` and `want` for `request_id`; return the amount held. 402 (InsufficientBalance, with
    `needed` and `available`) when not even `minimum` fits; a zero hold is refused at or below the floor."""
    want, minimum = _checked(want, minimum)
    statement = sql.hold_statement(
        organization_id=organization_id, request_id=request_id, want=want, minimum=minimum, at=timezone.now(), new=new
    )
    try:
        row = await adb.fetchone(*statement)
    except psycopg.IntegrityError:
        row = None
    if row is not None:
        return Decimal(row[0])
    return await _run(
        _hold_sync, organization_id=organization_id, request_id=request_id, want=want, minimum=minimum, new=new
    )
