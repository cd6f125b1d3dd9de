"""The hot-path statements, each ONE round trip, written in SQL because the ORM cannot say them in one:

- `reserve_row`: hold an estimate with one conditional UPDATE of the account and insert the reservation in the
  same statement (a duplicate request id fails the whole statement, so it can never hold twice);
- `settle_rows`: close the reservation, insert the ledger lines (`ON CONFLICT DO NOTHING`: the unique constraint
  decides what a retry may write), upsert the request summary and move the balance by exactly what was inserted;
- `release_row`: close a held reservation and free its amount.

A single statement is atomic on its own (all its parts commit or none), and its locks are taken in the same order
as everywhere else in billing: reservation, ledger, account last.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, models

from billing.models import BilledRequest, ReservationStatus


def _values(objs: Sequence[models.Model]) -> tuple[str, str, list[Any]]:
    """(column list, VALUES rows, params) to insert `objs`, all of one model."""
    model = type(objs[0])
    fields = [f for f in model._meta.concrete_fields if not isinstance(f, models.AutoField)]
    qn = connection.ops.quote_name
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params = [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for obj in objs for f in fields]
    return ", ".join(qn(f.column) for f in fields), ", ".join([row] * len(objs)), params


def insert_rows(
    objs: Sequence[models.Model], *, on_conflict: str = "DO NOTHING", returning: Sequence[str] = ()
) -> list[tuple[Any, ...]]:
    """`INSERT` `objs` `ON CONFLICT <on_conflict>` (SQL of this app, never user input); return `returning` columns
    of the rows actually written."""
    if not objs:
        return []
    model = type(objs[0])
    columns, rows, params = _values(objs)
    sql = f"INSERT INTO {model._meta.db_table} ({columns}) VALUES {rows} ON CONFLICT {on_conflict}"
    if returning:
        sql += " RETURNING " + ", ".join(model._meta.get_field(name).column for name in returning)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if returning else []


_RESERVE = """
WITH held AS (
    UPDATE billing_billingaccount SET reserved = reserved + %s
    WHERE organization_id = %s AND balance - reserved - %s {floor} -credit_limit
      AND NOT EXISTS (SELECT 1 FROM billing_reservation WHERE request_id = %s)
    RETURNING organization_id
), inserted AS (
    INSERT INTO billing_reservation (organization_id, request_id, amount, status, created_at)
    SELECT organization_id, %s, %s, 'held', %s FROM held
    RETURNING id
)
SELECT id FROM inserted
"""


Statement = tuple[str, list[Any]]


def reserve_statement(*, organization_id: int, request_id: str, amount: Decimal, at: datetime) -> Statement:
    """Hold `amount` if it fits above the floor and the request id is new; returns the reservation's id, or no row.

    At the floor, a zero amount is refused too (`>` instead of `>=`). A concurrent duplicate request id raises
    IntegrityError and rolls the whole statement back, the hold included.
    """
    sql = _RESERVE.format(floor=">=" if amount > 0 else ">")
    return sql, [amount, organization_id, amount, request_id, request_id, amount, at]


def _fetchone(statement: Statement) -> tuple[Any, ...] | None:
    with connection.cursor() as cursor:
        cursor.execute(*statement)
        return cursor.fetchone()


def reserve_row(*, organization_id: int, request_id: str, amount: Decimal, at: datetime) -> int | None:
    row = _fetchone(reserve_statement(organization_id=organization_id, request_id=request_id, amount=amount, at=at))
    return row[0] if row else None


_SETTLE = """
WITH closed AS (
    UPDATE billing_reservation SET status = 'settled', closed_at = %s
    WHERE request_id = %s AND organization_id = %s AND status = 'held'
    RETURNING amount
), inserted AS (
    {ledger_insert}
), charged AS (
    SELECT COALESCE(SUM(amount), 0) AS total, COUNT(*) AS n FROM inserted
), request AS (
    INSERT INTO billing_billedrequest
        (organization_id, request_id, gateway_id, api_key_id, model, metadata, total, estimated, created_at)
    SELECT %s, %s, %s, %s, %s, %s, charged.total, %s, %s FROM charged WHERE charged.n > 0 OR %s
    ON CONFLICT (request_id) DO UPDATE SET
        total = billing_billedrequest.total + EXCLUDED.total,
        estimated = billing_billedrequest.estimated OR EXCLUDED.estimated
), account AS (
    INSERT INTO billing_billingaccount (organization_id, balance, reserved, credit_limit, created_at)
    SELECT %s, -charged.total, 0, 0, %s FROM charged
    ON CONFLICT (organization_id) DO UPDATE SET
        balance = billing_billingaccount.balance + EXCLUDED.balance,
        reserved = billing_billingaccount.reserved - COALESCE((SELECT SUM(amount) FROM closed), 0)
    WHERE EXCLUDED.balance <> 0 OR EXISTS (SELECT 1 FROM closed)
)
SELECT n, total FROM charged
"""


def settle_statement(*, entries: Sequence[models.Model], request: BilledRequest) -> Statement:
    """Write `entries` (LedgerEntry charges of one request) and its summary; returns (rows inserted, amount)."""
    if entries:
        columns, rows, ledger_params = _values(entries)
        ledger_insert = f"INSERT INTO billing_ledgerentry ({columns}) VALUES {rows} ON CONFLICT DO NOTHING"
        ledger_insert += " RETURNING amount"
    else:
        ledger_insert, ledger_params = "SELECT NULL::numeric AS amount WHERE false", []
    metadata = BilledRequest._meta.get_field("metadata").get_db_prep_save(request.metadata, connection)
    org, at = request.organization_id, request.created_at
    params = [
        *(at, request.request_id, org),
        *ledger_params,
        *(org, request.request_id, request.gateway_id, request.api_key_id, request.model, metadata),
        *(request.estimated, at, not entries),
        *(org, at),
    ]
    return _SETTLE.format(ledger_insert=ledger_insert), params


def settle_rows(*, entries: Sequence[models.Model], request: BilledRequest) -> tuple[int, Decimal]:
    row = _fetchone(settle_statement(entries=entries, request=request))
    assert row is not None
    return int(row[0]), row[1]


_RELEASE = """
WITH closed AS (
    UPDATE billing_reservation SET status = %s, closed_at = %s
    WHERE request_id = %s AND status = 'held'
    RETURNING organization_id, amount
)
UPDATE billing_billingaccount AS account SET reserved = account.reserved - closed.amount
FROM closed WHERE account.organization_id = closed.organization_id
"""


def release_statement(*, request_id: str, at: datetime) -> Statement:
    return _RELEASE, [ReservationStatus.RELEASED, at, request_id]


def release_row(*, request_id: str, at: datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(*release_statement(request_id=request_id, at=at))
