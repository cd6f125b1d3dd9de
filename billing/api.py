"""Tenants' own balance and usage: `GET /api/v1/balance`, `GET /api/v1/usage?from=&to=&group_by=`.

Any key of the organization may read them, whatever its scope. Money is returned as decimal strings (ten places),
never as floats, so a client can add the rows up to the last digit.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Literal

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema
from pydantic import PlainSerializer

from accounts.api_auth import any_scope_auth, principal_of
from aivax.errors import InvalidRequest
from billing import selectors

router = Router(tags=["billing"])
# Fixed-point strings ("0.0000000000", not "0E-10").
Money = Annotated[Decimal, PlainSerializer(lambda value: format(value, "f"), return_type=str)]


any_key_auth = any_scope_auth


class BalanceOut(Schema):
    balance: Money
    reserved: Money
    available: Money
    credit_limit: Money
    currency: str = "USD"


class UsageQuery(Schema):
    start: date | datetime | None = Field(None, alias="from")
    end: date | datetime | None = Field(None, alias="to")
    group_by: Literal["day", "sku", "gateway", "model", "key"] = "day"


class UsageRowOut(Schema):
    group: str | None
    amount: Money
    quantity: int
    requests: int


class UsageOut(Schema):
    object: str = "billing.usage"
    start: datetime = Field(..., alias="from")
    end: datetime = Field(..., alias="to")
    group_by: str
    currency: str = "USD"
    data: list[UsageRowOut]
    total: Money


def _bound(value: date | datetime | None, *, end: bool) -> datetime | None:
    """A date means the whole day: `from` at its start, `to` through its end. Naive times are UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time.min, tzinfo=UTC)


@router.get("/balance", response=BalanceOut, auth=any_key_auth)
async def balance(request: HttpRequest) -> BalanceOut:
    principal = principal_of(request)
    account = await sync_to_async(selectors.account_get)(organization_id=principal.organization_id)
    return BalanceOut(
        balance=account.balance,
        reserved=account.reserved,
        available=account.balance - account.reserved + account.credit_limit,
        credit_limit=account.credit_limit,
    )


@router.get("/usage", response=UsageOut, auth=any_key_auth, by_alias=True)
async def usage(request: HttpRequest, filters: Query[UsageQuery]) -> UsageOut:
    principal = principal_of(request)
    now = timezone.now()
    start = _bound(filters.start, end=False) or now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = _bound(filters.end, end=True) or now
    if start >= end:
        raise InvalidRequest("'from' must be before 'to'.", param="from")
    rows = await sync_to_async(selectors.usage_rows)(
        start=start, end=end, group_by=filters.group_by, organization_id=principal.organization_id
    )
    return UsageOut.model_validate(
        {
            "from": start,
            "to": end,
            "group_by": filters.group_by,
            "data": [
                UsageRowOut(
                    group=None if r.key is None else str(r.key),
                    amount=r.amount,
                    quantity=r.quantity,
                    requests=r.requests,
                )
                for r in rows
            ],
            "total": selectors.usage_total(rows),
        }
    )
