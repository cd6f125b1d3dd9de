"""CSV export of the ledger for a range (and optionally one organization), streamed row by row."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from aivax.spreadsheet import safe_cell
from billing import selectors
from billing.models import LEDGER_EXPORT_COLUMNS, LedgerEntry
from billing.staff.access import billing_staff_required
from billing.staff.reports import range_form

HEADER = ["entry_id", *LEDGER_EXPORT_COLUMNS]


def _text(value: str) -> str:
    # Spreadsheets run cells that start with these as formulas; tenant-supplied text must stay text.
    return str(safe_cell(value))


def _row(e: LedgerEntry) -> list[Any]:
    return [
        e.pk,
        e.created_at.isoformat(),
        e.organization.slug,
        e.kind,
        _text(e.request_id),
        e.position,
        e.sku,
        e.quantity,
        format(e.unit_price, "f"),
        format(e.amount, "f"),
        format(e.balance_delta, "f"),
        "yes" if e.estimated else "no",
        _text(e.description),
        _text(e.model),
        e.gateway_id or "",
        e.api_key_id or "",
        _text(e.reason),
        e.created_by.email if e.created_by else "",
        e.reverses_id or "",
    ]


class _Echo:
    def write(self, value: str) -> str:
        return value


@billing_staff_required
def ledger_csv(request: HttpRequest) -> HttpResponse:
    form = range_form(request)
    if not form.is_valid():
        return HttpResponse("; ".join(form.errors.get("__all__", ["Invalid range"])), status=400)
    start, end = form.bounds
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(HEADER)
        for entry in selectors.ledger_for_export(start=start, end=end, organization_id=form.organization_id):
            yield writer.writerow(_row(entry))

    org = form.cleaned_data.get("organization")
    name = f"ledger-{org.slug if org else 'all'}-{form.cleaned_data['start']}-{form.cleaned_data['end']}.csv"
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
