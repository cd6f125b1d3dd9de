"""Usage reads for the console, on top of billing's selectors (which group by one dimension at a time)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from datetime import UTC
from decimal import Decimal
from typing import Any

from django.db.models import DecimalField, F, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

PERIODS = (7, 30, 90)


def period(days_param: str | None) -> tuple[int, dt.datetime, dt.datetime]:
    """The chosen window: the last N days (UTC calendar days, today included)."""
    try:
        days = int(days_param or 30)
    except ValueError:
        days = 30
    days = days if days in PERIODS else 30
    end = timezone.now()
    start = (end - dt.timedelta(days=days - 1)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return days, start, end


def daily_spend_by_sku(*, organization_id: int, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Chart data: one label per day of the window, one series per SKU (amounts as strings, exact)."""
    from billing import skus
    from billing.money import MONEY_MAX_DIGITS, MONEY_PLACES
    from billing.selectors import ledger_entries

    money = DecimalField(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_PLACES)
    rows = (
        ledger_entries(start=start, end=end, organization_id=organization_id)
        .exclude(sku=skus.CREDIT)
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day", "sku")
        .annotate(amount=Sum(-F("balance_delta"), output_field=money))
        .order_by("day", "sku")
    )
    days = []
    day = start.date()
    while day <= end.astimezone(UTC).date():
        days.append(day)
        day += dt.timedelta(days=1)
    series: dict[str, dict[dt.date, Decimal]] = defaultdict(dict)
    for row in rows:
        series[row["sku"]][row["day"]] = row["amount"] or Decimal(0)
    return {
        "labels": [d.isoformat() for d in days],
        "datasets": [
            {"label": sku, "data": [str(values.get(d, Decimal(0)).normalize()) for d in days]}
            for sku, values in sorted(series.items())
        ],
    }


def gateway_names(*, organization_id: int, ids: list[Any]) -> dict[Any, str]:
    from gateways.models import Gateway

    return dict(Gateway.objects.for_org(organization_id).filter(pk__in=ids).values_list("pk", "name"))


def key_names(*, organization_id: int, ids: list[Any]) -> dict[Any, str]:
    from accounts.models import ApiKey

    return dict(ApiKey.objects.for_org(organization_id).filter(pk__in=ids).values_list("pk", "name"))


def account_for(*, organization_id: int) -> Any | None:
    """The organization's billing account, or None while billing is not installed."""
    from console import optional

    if optional.model("billing", "BillingAccount") is None:
        return None
    from billing.selectors import account_get

    return account_get(organization_id=organization_id)


def with_month_spend(objects: Any, organization: Any, by: str) -> list[Any]:
    """`objects` (API keys or gateways) as a list, each with `month_spend`: its spend this month (UTC), shown
    beside its monthly budget."""
    from billing.selectors import month_spend

    spend = month_spend(organization_id=organization.pk, by=by)
    items = list(objects)
    for item in items:
        item.month_spend = spend.get(item.pk, Decimal(0))
    return items
