"""Usage and balance: balance, daily spend by SKU (Chart.js, from a JSON view), recent requests, CSV export.
Lights up once the billing app provides its models (see console.optional)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect

from accounts.models import Role
from aivax.spreadsheet import safe_row
from console import optional
from console import usage as reads
from console.context import aresolve, console_view, render_console

RECENT = 50
CSV_COLUMNS = [
    "created_at",
    "request_id",
    "kind",
    "sku",
    "quantity",
    "unit_price",
    "amount",
    "balance_delta",
    "description",
    "estimated",
    "gateway_id",
    "api_key_id",
    "model",
]


def _billing_ready() -> bool:
    return optional.model("billing", "BilledRequest") is not None


@console_view(min_role=Role.BILLING)
def usage(request: HttpRequest) -> HttpResponse:
    if not _billing_ready():
        return render_console(request, "console/usage/index.html", {"available": False})
    from billing.selectors import account_get, recent_requests, usage_rows, usage_total

    org = request.console.organization  # type: ignore[attr-defined]
    days, start, end = reads.period(request.GET.get("days"))
    by_sku = usage_rows(start=start, end=end, group_by="sku", organization_id=org.pk)
    requests = list(recent_requests(start=start, end=end, organization_id=org.pk)[:RECENT])
    gateways = reads.gateway_names(organization_id=org.pk, ids=[r.gateway_id for r in requests if r.gateway_id])
    keys = reads.key_names(organization_id=org.pk, ids=[r.api_key_id for r in requests if r.api_key_id])
    rows = [(r, gateways.get(r.gateway_id), keys.get(r.api_key_id)) for r in requests]
    context = {
        "available": True,
        "account": account_get(organization_id=org.pk),
        "days": days,
        "periods": reads.PERIODS,
        "by_sku": by_sku,
        "total": usage_total(by_sku),
        "request_count": recent_requests(start=start, end=end, organization_id=org.pk).count(),
        "rows": rows,
    }
    return render_console(request, "console/usage/index.html", context)


@console_view(min_role=Role.BILLING)
def usage_daily(request: HttpRequest) -> JsonResponse:
    if not _billing_ready():
        return JsonResponse({"labels": [], "datasets": []})
    org = request.console.organization  # type: ignore[attr-defined]
    _, start, end = reads.period(request.GET.get("days"))
    return JsonResponse(reads.daily_spend_by_sku(organization_id=org.pk, start=start, end=end))


@console_view(min_role=Role.BILLING)
def usage_request(request: HttpRequest, request_id: str) -> HttpResponse:
    """One request's record (an htmx partial under its table row): billed lines, tokens, timing, metadata."""
    from django.http import Http404

    from billing.selectors import request_record

    org = request.console.organization  # type: ignore[attr-defined]
    record = request_record(organization_id=org.pk, request_id=request_id)
    if record is None:
        raise Http404("No such request")
    return render_console(request, "console/usage/_lines.html", {"lines": record.lines, "record": record})


def _csv_line(values: list[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(safe_row(values))  # tenant text (model names) must not run as formulas
    return buffer.getvalue()


async def usage_export(request: HttpRequest) -> HttpResponse:
    """The organization's ledger rows of the chosen period as CSV, streamed."""
    console = await aresolve(request)
    if console is None:  # signed out, or in no organization: the console's entry sorts that out
        return redirect("console-home")
    if not _billing_ready():
        return HttpResponse("Billing is not available.", status=404, content_type="text/plain")
    from billing.selectors import ledger_entries

    _, start, end = reads.period(request.GET.get("days"))
    rows = ledger_entries(start=start, end=end, organization_id=console.organization.pk).order_by("created_at", "id")

    async def lines() -> AsyncIterator[str]:
        yield _csv_line(CSV_COLUMNS)
        async for entry in rows.aiterator(chunk_size=2000):
            yield _csv_line([getattr(entry, c) for c in CSV_COLUMNS])

    filename = f"aivax-usage-{console.organization.slug}-{start:%Y%m%d}-{end:%Y%m%d}.csv"
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
