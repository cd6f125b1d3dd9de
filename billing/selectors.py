"""Billing reads: balances, usage grouped by a dimension, request drill-down, the ledger for export.

"Usage" is charges net of their reversals: every ledger row except credits and credit reversals (`skus.CREDIT`),
valued at -balance_delta, dated when it was written.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db.models import BigIntegerField, Case, Count, DecimalField, F, OuterRef, Q, QuerySet, Subquery, Sum, When
from django.db.models.functions import Coalesce, TruncDate, TruncMonth

from billing import skus
from billing.models import BilledRequest, BillingAccount, EntryKind, LedgerEntry
from billing.money import MONEY_MAX_DIGITS, MONEY_PLACES, ZERO
from billing.pricing import UsageLine

GROUP_BY = ("day", "sku", "gateway", "key", "model", "organization")
_MONEY = DecimalField(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_PLACES)
_GROUP_EXPRESSIONS: dict[str, Any] = {
    "day": TruncDate("created_at", tzinfo=UTC),
    "sku": F("sku"),
    "gateway": F("gateway_id"),
    "key": F("api_key_id"),
    "model": F("model"),
    "organization": F("organization_id"),
}


@dataclass(frozen=True)
class UsageRow:
    key: Any
    amount: Decimal
    quantity: int
    requests: int


def account_get(*, organization_id: int) -> BillingAccount:
    """The organization's account; an unsaved zero account if it has none yet (created on first write)."""
    account = BillingAccount.objects.for_org(organization_id).first()
    return account or BillingAccount(organization_id=organization_id)


def billed_lines(*, organization_id: int, request_id: str) -> list[UsageLine]:
    """The charge lines the ledger holds for one request, in the order they were billed."""
    rows = LedgerEntry.objects.for_org(organization_id).filter(request_id=request_id, kind=EntryKind.CHARGE)
    return [
        UsageLine(
            sku=e.sku,
            quantity=e.quantity,
            unit_price=e.unit_price,
            amount=e.amount,
            description=e.description,
            estimated=e.estimated,
        )
        for e in rows.order_by("position", "id")
    ]


def ledger_entries(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    organization_id: int | None = None,
    sku: str | None = None,
    gateway_id: Any = None,
    request_id: str | None = None,
) -> QuerySet[LedgerEntry]:
    """Ledger rows in [start, end), for one organization or (staff) every one; optionally one SKU, gateway or
    request."""
    rows = LedgerEntry.unscoped.all() if organization_id is None else LedgerEntry.objects.for_org(organization_id)
    if start is not None:
        rows = rows.filter(created_at__gte=start)
    if end is not None:
        rows = rows.filter(created_at__lt=end)
    if sku:
        rows = rows.filter(sku=sku)
    if gateway_id is not None:
        rows = rows.filter(gateway_id=gateway_id)
    if request_id:
        rows = rows.filter(request_id=request_id)
    return rows


def organizations_with_balances() -> QuerySet[Any]:
    """Every organization (staff) with its account's balance, reserved amount and credit limit (0 without one)."""
    from accounts.models import Organization

    account = BillingAccount.unscoped.filter(organization_id=OuterRef("pk"))
    return Organization.objects.annotate(
        balance=Coalesce(Subquery(account.values("balance")[:1]), ZERO, output_field=_MONEY),
        reserved=Coalesce(Subquery(account.values("reserved")[:1]), ZERO, output_field=_MONEY),
        credit_limit=Coalesce(Subquery(account.values("credit_limit")[:1]), ZERO, output_field=_MONEY),
    ).order_by("slug")


def usage_rows(
    *, start: datetime, end: datetime, group_by: str, organization_id: int | None = None, limit: int | None = None
) -> list[UsageRow]:
    """Usage in [start, end) grouped by `group_by`; days in order, other groups by amount (largest first)."""
    if group_by not in GROUP_BY:
        raise ValueError(f"group_by must be one of {', '.join(GROUP_BY)}")
    signed_quantity = Case(
        When(kind=EntryKind.REVERSAL, then=-F("quantity")), default=F("quantity"), output_field=BigIntegerField()
    )
    rows = (
        ledger_entries(start=start, end=end, organization_id=organization_id)
        .exclude(sku=skus.CREDIT)
        .annotate(group=_GROUP_EXPRESSIONS[group_by])
        .values("group")
        .annotate(
            amount=Sum(-F("balance_delta"), output_field=_MONEY),
            quantity=Sum(signed_quantity),
            requests=Count("request_id", distinct=True, filter=Q(kind=EntryKind.CHARGE)),
        )
        .order_by("group" if group_by == "day" else "-amount", "group")
    )
    if limit is not None:
        rows = rows[:limit]
    return [UsageRow(r["group"], r["amount"] or ZERO, r["quantity"] or 0, r["requests"]) for r in rows]


def usage_total(rows: list[UsageRow]) -> Decimal:
    return sum((r.amount for r in rows), ZERO)


def recent_requests(
    *, start: datetime | None = None, end: datetime | None = None, organization_id: int | None = None
) -> QuerySet[BilledRequest]:
    rows = BilledRequest.unscoped.all() if organization_id is None else BilledRequest.objects.for_org(organization_id)
    if start is not None:
        rows = rows.filter(created_at__gte=start)
    if end is not None:
        rows = rows.filter(created_at__lt=end)
    return rows.select_related("organization").order_by("-created_at")


def request_entries(*, request_id: str) -> QuerySet[LedgerEntry]:
    """Every row of one request (charges and any reversals), for staff drill-down."""
    return LedgerEntry.unscoped.filter(request_id=request_id).select_related("created_by").order_by("position", "id")


def ledger_for_export(*, start: datetime, end: datetime, organization_id: int | None = None) -> Iterator[LedgerEntry]:
    rows = ledger_entries(start=start, end=end, organization_id=organization_id)
    return rows.select_related("organization", "created_by").order_by("created_at", "id").iterator(chunk_size=2000)


def ledger_balance(*, organization_id: int, before: datetime | None = None) -> Decimal:
    """SUM(balance_delta) of the organization's rows (written before `before`, if given)."""
    rows = ledger_entries(end=before, organization_id=organization_id)
    return rows.aggregate(total=Sum("balance_delta"))["total"] or ZERO


def usage_labels(*, group_by: str, keys: list[Any]) -> dict[Any, str]:
    """Readable names for grouped usage keys (staff pages): organization slugs, gateway and key names."""
    from accounts.models import ApiKey, Organization
    from gateways.models import Gateway

    ids = [k for k in keys if k is not None]
    if group_by == "organization":
        return {o.pk: f"{o.name} ({o.slug})" for o in Organization.objects.filter(pk__in=ids)}
    if group_by == "gateway":
        return {g.pk: f"{g.name} ({g.slug})" for g in Gateway.unscoped.filter(pk__in=ids)}
    if group_by == "key":
        return {k.pk: str(k) for k in ApiKey.unscoped.filter(pk__in=ids)}
    return {}


def statement_months(*, organization_id: int) -> list[datetime]:
    """The months (UTC) in which the organization has ledger rows, newest first."""
    rows = (
        LedgerEntry.objects.for_org(organization_id)
        .annotate(month=TruncMonth("created_at", tzinfo=UTC))
        .values_list("month", flat=True)
        .distinct()
        .order_by("-month")
    )
    return list(rows)


def organization_slugs(*, ids: list[Any]) -> dict[int, str]:
    from accounts.models import Organization

    return dict(Organization.objects.filter(pk__in=[i for i in ids if i is not None]).values_list("pk", "slug"))


@dataclass(frozen=True)
class RequestRecord:
    """One billed request as its tenant sees it: summary, billed lines, tokens (from the lines) and timing."""

    request: BilledRequest
    lines: list[UsageLine]
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def tokens(self) -> dict[str, int]:
        """Token counts by kind, read off the inference lines (`<prefix>.in`, `.in.cached`, `.out`, ...)."""
        counts = {"prompt_tokens": 0, "cached_tokens": 0, "completion_tokens": 0, "reasoning_tokens": 0}
        for line in self.lines:
            if not line.sku.startswith("inference."):
                continue
            if line.sku.endswith(".in.cached"):
                counts["cached_tokens"] += line.quantity
                counts["prompt_tokens"] += line.quantity
            elif line.sku.endswith(".in"):
                counts["prompt_tokens"] += line.quantity
            elif line.sku.endswith(".out.reasoning"):
                counts["reasoning_tokens"] += line.quantity
                counts["completion_tokens"] += line.quantity
            elif line.sku.endswith(".out"):
                counts["completion_tokens"] += line.quantity
        return counts

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return int((self.finished_at - self.started_at).total_seconds() * 1000)


def request_list(
    *,
    organization_id: int,
    gateway_id: Any = None,
    api_key_id: Any = None,
    start: datetime | None = None,
    end: datetime | None = None,
    metadata_key: str | None = None,
    metadata_value: str | None = None,
) -> QuerySet[BilledRequest]:
    """The organization's billed requests, newest first, filtered by gateway, key, period and a metadata pair."""
    rows = BilledRequest.objects.for_org(organization_id)
    if gateway_id is not None:
        rows = rows.filter(gateway_id=gateway_id)
    if api_key_id is not None:
        rows = rows.filter(api_key_id=api_key_id)
    if start is not None:
        rows = rows.filter(created_at__gte=start)
    if end is not None:
        rows = rows.filter(created_at__lt=end)
    if metadata_key is not None:
        rows = rows.filter(metadata__has_key=metadata_key)
        if metadata_value is not None:
            rows = rows.filter(metadata__contains={metadata_key: metadata_value})
    return rows.order_by("-created_at", "-id")


def request_record(*, organization_id: int, request_id: str) -> RequestRecord | None:
    """One request of the organization (None for another organization's, or an unknown id)."""
    from billing.models import Reservation

    request = BilledRequest.objects.for_org(organization_id).filter(request_id=request_id).first()
    if request is None:
        return None
    hold = Reservation.objects.for_org(organization_id).filter(request_id=request_id).first()
    return RequestRecord(
        request=request,
        lines=billed_lines(organization_id=organization_id, request_id=request_id),
        started_at=hold.created_at if hold is not None else None,
        finished_at=(hold.closed_at if hold is not None else None) or request.created_at,
    )


def month_spend(*, organization_id: int, by: str) -> dict[Any, Decimal]:
    """What each API key (`by="api_key"`) or gateway (`by="gateway"`) of the organization spent this calendar month
    (UTC): the figure its monthly budget is checked against (billing.services.holds), without the holds."""
    from billing.services.holds import month_start

    column = {"api_key": "api_key_id", "gateway": "gateway_id"}[by]
    rows = (
        BilledRequest.objects.for_org(organization_id)
        .filter(created_at__gte=month_start())
        .exclude(**{f"{column}__isnull": True})
        .values(column)
        .annotate(total=Sum("total"))
    )
    return {row[column]: row["total"] or ZERO for row in rows}
