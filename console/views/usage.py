"""Usage and balance. Lights up once the billing app provides its models (see console.optional)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from accounts.models import Role
from console import optional
from console.context import console_view, render_console


@console_view(min_role=Role.BILLING)
def usage(request: HttpRequest) -> HttpResponse:
    available = optional.model("billing", "BillingAccount") is not None
    return render_console(request, "console/usage/index.html", {"available": available})
