"""Holds that cover the worst case: `ahold` opens or grows a request's reservation by as much of a wanted amount
as the organization can pay above its floor, never less than a minimum, in one statement (billing/sql.py).

The inference path asks for the worst case of each model round (prompt plus the largest answer allowed) and
caps the upstream to what was actually held, so a request can never cost more than its hold. A request's hold
only grows while it runs (one round after another); `settle` closes it whole.

Crash safety: a hold is one statement (account and reservation move together or not at all); a process that dies
while holding leaves a held reservation that the sweeper releases (billing.services.ledger).

Monthly budgets (a key's, a gateway's; USD per calendar month, UTC) are checked inside the same hold: the amount
held is also capped by what is left of each budget (spent this month + held now), and a request that could
push a budget past its cap is refused up front (402 `budget_exceeded`, naming the budget). A budgeted hold takes
a transaction instead of one statement: it locks the organization's account row first (every hold and settle of
the organization changes that row, so they queue there), then reads the budgets' spend with a fresh snapshot,
so concurrent requests can never overshoot a budget together. Requests without a budget keep the one-statement
path; a crash mid-transaction rolls everything back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from aivax import adb
from aivax.errors import Conflict, InsufficientBalance
from billing import sql
from billing.models import BilledRequest, BillingAccount, Reservation, ReservationStatus
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


def month_start(at: datetime | None = None) -> datetime:
    """The start of the calendar month (UTC) that budgets count in."""
    at = (at or timezone.now()).astimezone(UTC)
    return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Budget:
    scope: str  # "api_key" | "gateway"
    scope_id: uuid.UUID
    cap: Decimal

    @property
    def name(self) -> str:
        return "This API key's" if self.scope == "api_key" else "This gateway's"

    def used(self) -> Decimal:
        """Spent this month plus what running requests hold (read under the account lock: see the module note)."""
        spent = BilledRequest.unscoped.filter(
            **{f"{self.scope}_id": self.scope_id, "created_at__gte": month_start()}
        ).aggregate(total=Sum("total"))["total"]
        held = Reservation.unscoped.filter(
            **{f"{self.scope}_id": self.scope_id, "status": ReservationStatus.HELD}
        ).aggregate(total=Sum("amount"))["total"]
        return (spent or ZERO) + (held or ZERO)

    def exceeded(self, *, used: Decimal) -> InsufficientBalance:
        return InsufficientBalance(
            f"{self.name} monthly budget of {_money_text(self.cap)} USD is used up for this month "
            f"({_money_text(used)} USD spent or held). It resets at the start of the next month (UTC).",
            param=f"{self.scope}.monthly_budget",
            code="budget_exceeded",
        )


def budgets_of(*, api_key_id: Any, gateway_id: Any) -> list[Budget]:
    from accounts.models import ApiKey
    from gateways.models import Gateway

    budgets = []
    if api_key_id is not None:
        cap = ApiKey.unscoped.filter(pk=api_key_id).values_list("monthly_budget", flat=True).first()
        if cap is not None:
            budgets.append(Budget("api_key", api_key_id, cap))
    if gateway_id is not None:
        cap = Gateway.unscoped.filter(pk=gateway_id).values_list("monthly_budget", flat=True).first()
        if cap is not None:
            budgets.append(Budget("gateway", gateway_id, cap))
    return budgets


def _hold_budgeted(
    *, organization_id: int, request_id: str, want: Decimal, minimum: Decimal, new: bool, budgets: list[Budget],
    api_key_id: Any, gateway_id: Any,
) -> Decimal:  # fmt: skip
    with transaction.atomic():
        existing = None
        if not new:  # the billing lock order: the reservation, then the account
            existing = (
                Reservation.unscoped.select_for_update()
                .filter(request_id=request_id, organization_id=organization_id, status=ReservationStatus.HELD)
                .first()
            )
            if existing is None:
                raise Conflict("This request is no longer running.", param="request_id")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT balance - reserved + credit_limit FROM billing_billingaccount WHERE organization_id = %s "
                "FOR UPDATE",
                [organization_id],
            )
            row = cursor.fetchone()
        available = row[0] if row else ZERO
        if available <= 0 or available < minimum:
            raise insufficient(needed=minimum, available=available)
        amount = min(want, available)
        for budget in budgets:  # each statement below reads a snapshot taken after the lock above
            used = budget.used()
            left = budget.cap - used
            if left < minimum or left <= 0:
                raise budget.exceeded(used=used)
            amount = min(amount, left)
        BillingAccount.unscoped.filter(organization_id=organization_id).update(reserved=F("reserved") + amount)
        if existing is None:
            try:
                with transaction.atomic():
                    Reservation.unscoped.create(
                        organization_id=organization_id, request_id=request_id, amount=amount,
                        api_key_id=api_key_id, gateway_id=gateway_id,
                    )  # fmt: skip
            except IntegrityError:
                raise Conflict("This request is already running or done.", param="request_id") from None
        else:
            Reservation.unscoped.filter(pk=existing.pk).update(amount=F("amount") + amount)
        return amount


def _hold_sync(
    *, organization_id: int, request_id: str, want: Decimal, minimum: Decimal, new: bool,
    api_key_id: Any = None, gateway_id: Any = None,
) -> Decimal:  # fmt: skip
    """The slow path: a budgeted request, an account not created yet, or a refusal that needs explaining."""
    if not new:
        ids = Reservation.unscoped.filter(request_id=request_id).values_list("api_key_id", "gateway_id").first()
        api_key_id, gateway_id = ids or (None, None)
    budgets = budgets_of(api_key_id=api_key_id, gateway_id=gateway_id)
    if budgets:
        account_ensure(organization_id=organization_id)
        return _hold_budgeted(
            organization_id=organization_id, request_id=request_id, want=want, minimum=minimum, new=new,
            budgets=budgets, api_key_id=api_key_id, gateway_id=gateway_id,
        )  # fmt: skip
    for _attempt in range(2):
        statement = sql.hold_statement(
            organization_id=organization_id, request_id=request_id, want=want, minimum=minimum, at=timezone.now(),
            new=new, api_key_id=api_key_id, gateway_id=gateway_id,
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


def hold(
    *, organization_id: int, request_id: str, want: Decimal, minimum: Decimal, new: bool,
    api_key_id: Any = None, gateway_id: Any = None,
) -> Decimal:  # fmt: skip
    """Sync twin of `ahold` (tests, management commands)."""
    want, minimum = _checked(want, minimum)
    return _hold_sync(
        organization_id=organization_id, request_id=request_id, want=want, minimum=minimum, new=new,
        api_key_id=api_key_id, gateway_id=gateway_id,
    )  # fmt: skip


async def ahold(
    *, organization_id: int, request_id: str, want: Decimal, minimum: Decimal, new: bool,
    api_key_id: Any = None, gateway_id: Any = None,
) -> Decimal:  # fmt: skip
    """Hold between `minimum` and `want` for `request_id`; return the amount held. 402 (InsufficientBalance, with
    `needed` and `available`) when not even `minimum` fits; a zero hold is refused at or below the floor."""
    want, minimum = _checked(want, minimum)
    statement = sql.hold_statement(
        organization_id=organization_id, request_id=request_id, want=want, minimum=minimum, at=timezone.now(),
        new=new, api_key_id=api_key_id, gateway_id=gateway_id,
    )  # fmt: skip
    try:
        row = await adb.fetchone(*statement)
    except psycopg.IntegrityError:
        row = None
    if row is not None:
        return Decimal(row[0])
    return await _run(
        _hold_sync, organization_id=organization_id, request_id=request_id, want=want, minimum=minimum, new=new,
        api_key_id=api_key_id, gateway_id=gateway_id,
    )  # fmt: skip
