"""Staff reports: usage by any dimension over any range, daily totals, top spenders, requests and drill-down."""

from __future__ import annotations

import json

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from billing import selectors
from billing.models import BilledRequest
from billing.money import ZERO
from billing.staff.access import billing_staff_required
from billing.staff.forms import RangeForm


def range_form(request: HttpRequest) -> RangeForm:
    form = RangeForm(request.GET or None)
    if not form.is_bound:
        form = RangeForm({})
    form.is_valid()
    return form


@billing_staff_required
def overview(request: HttpRequest) -> HttpResponse:
    form = range_form(request)
    context: dict[str, object] = {"form": form}
    if form.is_valid():
        start, end = form.bounds
        org_id = form.organization_id
        group_by = form.cleaned_data["group_by"]
        grouped = selectors.usage_rows(start=start, end=end, group_by=group_by, organization_id=org_id)
        labels = selectors.usage_labels(group_by=group_by, keys=[r.key for r in grouped])
        top = selectors.usage_rows(start=start, end=end, group_by="organization", organization_id=org_id, limit=10)
        top_labels = selectors.usage_labels(group_by="organization", keys=[r.key for r in top])
        slugs = selectors.organization_slugs(ids=[r.key for r in top])
        daily = selectors.usage_rows(start=start, end=end, group_by="day", organization_id=org_id)
        context.update(
            group_by=dict(form.fields["group_by"].choices)[group_by],  # type: ignore[attr-defined]
            grouped=[(labels.get(r.key, r.key), r) for r in grouped],
            top=[(top_labels.get(r.key, r.key), slugs.get(r.key), r) for r in top],
            daily=daily,
            total=selectors.usage_total(daily),
            query=request.GET.urlencode(),
        )
    return render(request, "billing/staff/overview.html", context)


@billing_staff_required
def request_list(request: HttpRequest) -> HttpResponse:
    form = range_form(request)
    page = None
    if form.is_valid():
        start, end = form.bounds
        rows = selectors.recent_requests(start=start, end=end, organization_id=form.organization_id)
        page = Paginator(rows, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "billing/staff/requests.html", {"form": form, "page": page, "query": query.urlencode()})


@billing_staff_required
def request_detail(request: HttpRequest, request_id: str) -> HttpResponse:
    billed = BilledRequest.unscoped.select_related("organization").filter(request_id=request_id).first()
    entries = list(selectors.request_entries(request_id=request_id))
    if billed is None and not entries:
        raise Http404("No such request")
    gateway = selectors.usage_labels(group_by="gateway", keys=[billed.gateway_id if billed else None])
    key = selectors.usage_labels(group_by="key", keys=[billed.api_key_id if billed else None])
    context = {
        "request_id": request_id,
        "billed": billed,
        "entries": entries,
        "net": -sum((e.balance_delta for e in entries), ZERO),
        "metadata": json.dumps(billed.metadata, indent=2, sort_keys=True) if billed else "",
        "gateway_label": next(iter(gateway.values()), None),
        "key_label": next(iter(key.values()), None),
    }
    return render(request, "billing/staff/request_detail.html", context)
