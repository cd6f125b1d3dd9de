"""Staff pages for one organization: its account, credit grants, reversals and monthly statements."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.models import Organization
from billing import selectors
from billing.models import LedgerEntry
from billing.services import credit_grant, entry_reverse, reconcile_balances
from billing.staff.access import billing_staff_required
from billing.staff.forms import CreditForm, ReverseForm
from billing.statements import statement_for


def _organization_page(request: HttpRequest, org: Organization, credit_form: CreditForm) -> HttpResponse:
    checks = reconcile_balances(organization_id=org.pk)
    context = {
        "org": org,
        "account": selectors.account_get(organization_id=org.pk),
        "check": checks[0] if checks else None,
        "credit_form": credit_form,
        "entries": selectors.ledger_entries(organization_id=org.pk).select_related("created_by").order_by("-id")[:50],
        "months": selectors.statement_months(organization_id=org.pk),
    }
    return render(request, "billing/staff/organization.html", context)


@billing_staff_required
def organization_detail(request: HttpRequest, slug: str) -> HttpResponse:
    org = get_object_or_404(Organization, slug=slug)
    return _organization_page(request, org, CreditForm())


@billing_staff_required
@require_POST
def organization_credit(request: HttpRequest, slug: str) -> HttpResponse:
    org = get_object_or_404(Organization, slug=slug)
    form = CreditForm(request.POST)
    if form.is_valid():
        try:
            entry = credit_grant(
                organization=org,
                amount=form.cleaned_data["amount"],
                reason=form.cleaned_data["reason"],
                staff_user=request.user,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Granted {entry.amount.normalize()} USD to {org.name}.")
            return redirect("billing-staff:organization", slug=org.slug)
    return _organization_page(request, org, form)


@billing_staff_required
def entry_reverse_view(request: HttpRequest, pk: int) -> HttpResponse:
    entry = get_object_or_404(LedgerEntry.unscoped.select_related("organization"), pk=pk)
    form = ReverseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            entry_reverse(entry=entry, reason=form.cleaned_data["reason"], staff_user=request.user)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Entry {entry.pk} reversed.")
            return redirect("billing-staff:organization", slug=entry.organization.slug)
    return render(request, "billing/staff/reverse.html", {"entry": entry, "form": form})


@billing_staff_required
def statement(request: HttpRequest, slug: str, year: int, month: int) -> HttpResponse:
    org = get_object_or_404(Organization, slug=slug)
    if not 1 <= month <= 12 or not 2000 <= year <= 9999:
        return HttpResponse("No such month", status=404)
    sheet = statement_for(organization=org, year=year, month=month)
    ledger_closing = selectors.ledger_balance(organization_id=org.pk, before=sheet.end)
    context = {
        "org": org,
        "statement": sheet,
        "ledger_closing": ledger_closing,
        "reconciles": ledger_closing == sheet.closing_balance,
        "last_day": (sheet.end - timedelta(days=1)).date(),
    }
    return render(request, "billing/staff/statement.html", context)
