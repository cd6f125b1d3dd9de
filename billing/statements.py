"""Monthly statements: opening balance + the month's ledger rows = closing balance, to the last decimal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db.models import Count, Sum

from accounts.models import Organization
from billing.models import EntryKind
from billing.money import ZERO
from billing.selectors import ledger_balance, ledger_entries


@dataclass(frozen=True)
class StatementLine:
    kind: str
    sku: str
    entries: int
    quantity: int
    amount: Decimal
    balance_delta: Decimal


@dataclass(frozen=True)
class Statement:
    organization: Organization
    start: datetime
    end: datetime
    opening_balance: Decimal
    lines: list[StatementLine]

    def _sum(self, kind: str) -> Decimal:
        return sum((line.balance_delta for line in self.lines if line.kind == kind), ZERO)

    @property
    def charges(self) -> Decimal:
        return -self._sum(EntryKind.CHARGE)

    @property
    def credits(self) -> Decimal:
        return self._sum(EntryKind.CREDIT)

    @property
    def reversals(self) -> Decimal:
        return self._sum(EntryKind.REVERSAL)

    @property
    def net(self) -> Decimal:
        return sum((line.balance_delta for line in self.lines), ZERO)

    @property
    def closing_balance(self) -> Decimal:
        return self.opening_balance + self.net


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def statement_for(*, organization: Organization, year: int, month: int) -> Statement:
    start, end = month_bounds(year, month)
    rows = (
        ledger_entries(start=start, end=end, organization_id=organization.pk)
        .values("kind", "sku")
        .annotate(entries=Count("id"), quantity=Sum("quantity"), amount=Sum("amount"), delta=Sum("balance_delta"))
        .order_by("kind", "sku")
    )
    lines = [
        StatementLine(r["kind"], r["sku"], r["entries"], r["quantity"] or 0, r["amount"], r["delta"]) for r in rows
    ]
    return Statement(
        organization=organization,
        start=start,
        end=end,
        opening_balance=ledger_balance(organization_id=organization.pk, before=start),
        lines=lines,
    )
