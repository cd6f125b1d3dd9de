"""Reconciliation: every balance recomputed from the ledger, in one statement (one snapshot), drift reported."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import connection

from billing.money import ZERO

_SQL = """
WITH ledger AS (
    SELECT organization_id, SUM(balance_delta) AS total FROM billing_ledgerentry GROUP BY organization_id
), held AS (
    SELECT organization_id, SUM(amount) AS total FROM billing_reservation WHERE status = 'held'
    GROUP BY organization_id
)
SELECT o.id, o.slug, COALESCE(a.balance, 0), COALESCE(l.total, 0), COALESCE(a.reserved, 0), COALESCE(h.total, 0)
FROM accounts_organization o
LEFT JOIN billing_billingaccount a ON a.organization_id = o.id
LEFT JOIN ledger l ON l.organization_id = o.id
LEFT JOIN held h ON h.organization_id = o.id
WHERE a.id IS NOT NULL OR l.organization_id IS NOT NULL OR h.organization_id IS NOT NULL
ORDER BY o.slug
"""


@dataclass(frozen=True)
class BalanceCheck:
    organization_id: int
    slug: str
    balance: Decimal
    ledger_balance: Decimal
    reserved: Decimal
    held_reservations: Decimal

    @property
    def drift(self) -> Decimal:
        return self.balance - self.ledger_balance

    @property
    def reserved_drift(self) -> Decimal:
        return self.reserved - self.held_reservations

    @property
    def ok(self) -> bool:
        return self.drift == ZERO and self.reserved_drift == ZERO


def reconcile_balances(*, organization_id: int | None = None) -> list[BalanceCheck]:
    """Each organization's stored balance next to SUM(ledger), and reserved next to its held reservations."""
    with connection.cursor() as cursor:
        cursor.execute(_SQL)
        checks = [BalanceCheck(*row) for row in cursor.fetchall()]
    if organization_id is not None:
        checks = [c for c in checks if c.organization_id == organization_id]
    return checks
