"""The few statements the ORM cannot say in one round trip: inserts whose unique constraints decide what a retry
may write (`ON CONFLICT ... RETURNING`), and closing a reservation while reading its amount (`UPDATE ... RETURNING`).

Django's `bulk_create(ignore_conflicts=True)` cannot say which rows went in; the ledger needs exactly that, so
that the balance moves by what was inserted and by nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, models


def _insertable(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not isinstance(f, models.AutoField)]


def insert_rows(
    objs: Sequence[models.Model], *, on_conflict: str = "DO NOTHING", returning: Sequence[str] = ()
) -> list[tuple[Any, ...]]:
    """`INSERT` `objs` (all of one model) `ON CONFLICT <on_conflict>`; return `returning` of the rows written.

    `on_conflict` is SQL written by this app, never user input, e.g. `(request_id) DO UPDATE SET ...`.
    """
    if not objs:
        return []
    model = type(objs[0])
    fields = _insertable(model)
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params = [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for obj in objs for f in fields]
    sql = f"INSERT INTO {qn(model._meta.db_table)} ({columns}) VALUES {', '.join([row] * len(objs))} "
    sql += f"ON CONFLICT {on_conflict}"
    if returning:
        sql += " RETURNING " + ", ".join(qn(model._meta.get_field(name).column) for name in returning)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if returning else []


def reservation_close(
    *, request_id: str, status: str, at: datetime, organization_id: int | None = None
) -> tuple[int, Decimal] | None:
    """Close a held reservation; return (organization_id, amount), or None if none was held (only one caller wins)."""
    sql = "UPDATE billing_reservation SET status = %s, closed_at = %s WHERE request_id = %s AND status = 'held'"
    params: list[Any] = [status, at, request_id]
    if organization_id is not None:
        sql += " AND organization_id = %s"
        params.append(organization_id)
    with connection.cursor() as cursor:
        cursor.execute(sql + " RETURNING organization_id, amount", params)
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None
