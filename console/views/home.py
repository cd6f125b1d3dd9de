from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from accounts.models import Role
from console import selectors, usage
from console.context import console_view, render_console


def root(request: HttpRequest) -> HttpResponse:
    return redirect("console-home" if request.user.is_authenticated else "login")


@console_view(min_role=Role.BILLING)
def home(request: HttpRequest) -> HttpResponse:
    console = request.console  # type: ignore[attr-defined]
    if not console.can_build:
        return redirect("usage")
    counts = selectors.overview_counts(organization=console.organization)
    gateways = list(selectors.gateway_list(organization=console.organization)[:5])
    account = usage.account_for(organization_id=console.organization.pk)
    return render_console(request, "console/home.html", {"counts": counts, "gateways": gateways, "account": account})
