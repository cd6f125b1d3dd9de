"""Tenants' own balance, usage and request records: `GET /api/v1/balance`, `GET /api/v1/usage?from=&to=&group_by=`,
`GET /api/v1/requests` (filters: gateway_id, api_key_id, from, to, metadata_key, metadata_value; `limit`,
`after`) and `GET /api/v1/requests/{id}` (billed lines, metadata, tokens, timing).

Any key of the organization may read them, whatever its scope. Money is a JSON number written with exactly ten
decimals from the Decimal itself (billing.money.money_json), never through a float, as in every other response,
so a client that parses numbers as decimals adds the rows up to the last digit.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Field, Query, Router, Schema
from pydantic import WithJsonSchema

from accounts.api_auth import any_scope_auth, principal_of
from aivax.errors import InvalidRequest, NotFound
from billing import selectors
from billing.money import dumps

router = Router(tags=["billing"])
Money = Annotated[Decimal, WithJsonSchema({"type": "number", "description": "USD, exactly 10 decimals"})]


def _json(body: Any) -> HttpResponse:
    return HttpResponse(dumps(body), content_type="application/json")


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
    """A date means the whole day: `from` at its start, `to` through its end. Naive times are UTC; others are
    converted to UTC (PostgreSQL refuses offsets past 15:59). Past year 9999 (or before year 1) is a 400."""
    if value is None:
        return None
    try:
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        day = value + timedelta(days=1) if end else value
        return datetime.combine(day, time.min, tzinfo=UTC)
    except OverflowError as exc:
        param = "to" if end else "from"
        raise InvalidRequest(f"'{param}' is out of range (years 1 to 9999).", param=param) from exc


@router.get("/balance", response=BalanceOut, auth=any_key_auth)
async def balance(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    account = await sync_to_async(selectors.account_get)(organization_id=principal.organization_id)
    out = BalanceOut(
        balance=account.balance,
        reserved=account.reserved,
        available=account.balance - account.reserved + account.credit_limit,
        credit_limit=account.credit_limit,
    )
    return _json(out.model_dump())


@router.get("/usage", response=UsageOut, auth=any_key_auth, by_alias=True)
async def usage(request: HttpRequest, filters: Query[UsageQuery]) -> HttpResponse:
    principal = principal_of(request)
    now = timezone.now()
    start = _bound(filters.start, end=False) or now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = _bound(filters.end, end=True) or now
    if start >= end:
        raise InvalidRequest("'from' must be before 'to'.", param="from")
    rows = await sync_to_async(selectors.usage_rows)(
        start=start, end=end, group_by=filters.group_by, organization_id=principal.organization_id
    )
    out = UsageOut.model_validate(
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
    return _json(out.model_dump(by_alias=True))


class RequestQuery(Schema):
    gateway_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    start: date | datetime | None = Field(None, alias="from")
    end: date | datetime | None = Field(None, alias="to")
    metadata_key: str | None = Field(None, max_length=64)
    metadata_value: str | None = Field(None, max_length=512)
    limit: int = Field(50, ge=1, le=200)
    after: str | None = Field(None, max_length=100, description="A request id: list the requests older than it")


def _line_out(line: Any) -> dict[str, Any]:
    return {**line.as_dict(), "estimated": line.estimated}


def _request_out(record: selectors.RequestRecord | None, row: Any = None) -> dict[str, Any]:
    request = record.request if record is not None else row
    out: dict[str, Any] = {
        "id": request.request_id,
        "object": "request",
        "created": int(request.created_at.timestamp()),
        "gateway_id": request.gateway_id,
        "api_key_id": request.api_key_id,
        "model": request.model,
        "metadata": request.metadata,
        "total": request.total,
        "estimated": request.estimated,
        "currency": "USD",
    }
    if record is not None:
        out["usage"] = record.tokens
        out["lines"] = [_line_out(line) for line in record.lines]
        out["duration_ms"] = record.duration_ms
    return out


def _request_list(organization_id: int, filters: RequestQuery) -> dict[str, Any]:
    rows = selectors.request_list(
        organization_id=organization_id,
        gateway_id=filters.gateway_id,
        api_key_id=filters.api_key_id,
        start=_bound(filters.start, end=False),
        end=_bound(filters.end, end=True),
        metadata_key=filters.metadata_key,
        metadata_value=filters.metadata_value,
    )
    if filters.after:
        cursor = rows.filter(request_id=filters.after).values_list("created_at", "id").first()
        if cursor is None:
            raise InvalidRequest("'after' is not a request of this organization.", param="after")
        rows = rows.filter(created_at__lte=cursor[0]).exclude(created_at=cursor[0], id__gte=cursor[1])
    page = list(rows[: filters.limit + 1])
    return {
        "object": "list",
        "data": [_request_out(None, row) for row in page[: filters.limit]],
        "has_more": len(page) > filters.limit,
    }


@router.get("/requests", auth=any_key_auth, summary="The organization's billed requests, newest first")
async def list_requests(request: HttpRequest, filters: Query[RequestQuery]) -> HttpResponse:
    principal = principal_of(request)
    body = await sync_to_async(_request_list)(principal.organization_id, filters)
    return _json(body)


@router.get("/requests/{request_id}", auth=any_key_auth, summary="One request: billed lines, metadata, tokens, timing")
async def get_request(request: HttpRequest, request_id: str) -> HttpResponse:
    principal = principal_of(request)
    record = await sync_to_async(selectors.request_record)(
        organization_id=principal.organization_id, request_id=request_id
    )
    if record is None:
        raise NotFound("No request with this id.", param="request_id", code="request_not_found")
    return _json(_request_out(record))
