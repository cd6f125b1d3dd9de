"""The hot-path statements, each ONE round trip, written in SQL because the ORM cannot say them in one:

- `reserve_row`: hold an estimate with one conditional UPDATE of the account and insert the reservation in the
  same statement (a duplicate request id fails the whole statement, so it can never hold twice);
- `hold_statement`: open or grow a request's hold by as much of a wanted amount as the balance allows, never less
  than a minimum (the worst case of the next model round, capped to what the tenant can pay);
- `settle_rows`: close the reservation, insert the ledger lines (`ON CONFLICT DO NOTHING`: the unique constraint
  decides what a retry may write), upsert the request summary and move the balance by exactly what was inserted;
- `release_row`: close a held reservation and free its amount.

A single statement is atomic on its own (all its parts commit or none), and its locks are taken in the same order
as everywhere else in billing: reservation, ledger, account last.

Durability: the settle statement sets `synchronous_commit = on` for its own transaction (`set_config(..., true)`
inside the statement, so still one round trip): a server running with `synchronous_commit = off` (the embedded
default) may lose the last few hundred milliseconds of commits on a crash, and a ledger row must never be lost
after its response said "billed". Holds may stay asynchronous: a lost hold only frees money the sweeper would free.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, models

from billing.models import BilledRequest, ReservationStatus


def durable() -> None:
    """Inside a ledger transaction: commit it synchronously whatever the server default (see the module note)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = on")


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


Statement = tuple[str, Any]  # (SQL, positional list or named dict)


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
WITH durable AS (
    SELECT set_config('synchronous_commit', 'on', true)
), closed AS (
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
SELECT n, total FROM charged, durable
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


_UNBUDGETED = """
      AND NOT EXISTS (SELECT 1 FROM accounts_apikey WHERE id = {key} AND monthly_budget IS NOT NULL)
      AND NOT EXISTS (SELECT 1 FROM gateways_gateway WHERE id = {gateway} AND monthly_budget IS NOT NULL)"""

_HOLD_NEW = (
    """
WITH account AS (
    SELECT organization_id, LEAST(%(want)s, balance - reserved + credit_limit) AS hold
    FROM billing_billingaccount
    WHERE organization_id = %(org)s
      AND balance - reserved + credit_limit >= %(minimum)s AND balance - reserved + credit_limit > 0
      AND NOT EXISTS (SELECT 1 FROM billing_reservation WHERE request_id = %(request_id)s)"""
    + _UNBUDGETED.format(key="%(api_key_id)s", gateway="%(gateway_id)s")
    + """
    FOR UPDATE
), held AS (
    UPDATE billing_billingaccount AS a SET reserved = a.reserved + account.hold
    FROM account WHERE a.organization_id = account.organization_id
    RETURNING account.hold
)
INSERT INTO billing_reservation (organization_id, request_id, amount, api_key_id, gateway_id, status, created_at)
SELECT %(org)s, %(request_id)s, hold, %(api_key_id)s, %(gateway_id)s, 'held', %(at)s FROM held
RETURNING amount
"""
)

_HOLD_MORE = (
    """
WITH claimed AS (
    SELECT id, api_key_id, gateway_id FROM billing_reservation
    WHERE request_id = %(request_id)s AND organization_id = %(org)s AND status = 'held'
    FOR UPDATE
), account AS (
    SELECT organization_id, LEAST(%(want)s, balance - reserved + credit_limit) AS hold
    FROM billing_billingaccount
    WHERE organization_id = %(org)s
      AND balance - reserved + credit_limit >= %(minimum)s AND balance - reserved + credit_limit > 0
      AND EXISTS (SELECT 1 FROM claimed)"""
    + _UNBUDGETED.format(key="(SELECT api_key_id FROM claimed)", gateway="(SELECT gateway_id FROM claimed)")
    + """
    FOR UPDATE
), held AS (
    UPDATE billing_billingaccount AS a SET reserved = a.reserved + account.hold
    FROM account WHERE a.organization_id = account.organization_id
    RETURNING account.hold
)
UPDATE billing_reservation AS r SET amount = r.amount + held.hold
FROM held WHERE r.id IN (SELECT id FROM claimed)
RETURNING held.hold
"""
)


def hold_statement(
    *,
    organization_id: int,
    request_id: str,
    want: Decimal,
    minimum: Decimal,
    at: datetime,
    new: bool,
    api_key_id: Any = None,
    gateway_id: Any = None,
) -> Statement:
    """Hold as much of `want` as the organization can pay above its floor, but at least `minimum`; returns the
    amount held, or no row when even `minimum` does not fit (or, at the floor, when anything is asked at all).

    `new`: open the request's reservation (claims the request id; a concurrent duplicate raises IntegrityError and
    rolls the hold back with it). Otherwise grow the request's held reservation (locks it first, then the account:
    the billing lock order), so every model round of a request holds its worst case before it runs.

    The account row is read `FOR UPDATE`: a concurrent hold commits first and this statement then reads the new
    row, so the amount held is computed from the balance it is taken from (no check-then-debit race).

    Only for requests without a monthly budget (on their key or gateway): a budgeted hold returns no row here and
    is taken by `billing.services.holds` in a transaction that locks the account first (see there).
    """
    params = {
        "org": organization_id,
        "request_id": request_id,
        "want": want,
        "minimum": minimum,
        "at": at,
        "api_key_id": api_key_id,
        "gateway_id": gateway_id,
    }
    return (_HOLD_NEW if new else _HOLD_MORE), params


_AVAILABLE = """
SELECT balance - reserved + credit_limit FROM billing_billingaccount WHERE organization_id = %s
"""


def available_statement(*, organization_id: int) -> Statement:
    """What the organization can still hold above its floor (for the 402 message only: never to decide)."""
    return _AVAILABLE, [organization_id]


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
