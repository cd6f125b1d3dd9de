"""Gateways: list, create, edit, delete, detail with copyable snippets; tenants' own endpoints."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.db.models import ProtectedError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from aivax.errors import InvalidRequest
from aivax.tenancy import get_for_org_or_404
from console import selectors, snippets
from console.context import console_view, render_console
from console.forms import ByoEndpointForm, GatewayForm, attach_error
from console.usage import with_month_spend
from gateways.models import ByoEndpoint, Gateway
from gateways.services import (
    byo_endpoint_create,
    byo_endpoint_delete,
    gateway_create,
    gateway_delete,
    gateway_update,
)


@console_view()
def gateway_list(request: HttpRequest) -> HttpResponse:
    org = request.console.organization  # type: ignore[attr-defined]
    return render_console(
        request,
        "console/gateways/list.html",
        {
            "gateways": with_month_spend(selectors.gateway_list(organization=org), org, "gateway"),
            "endpoints": selectors.byo_endpoint_list(organization=org),
        },
    )


def _form_page(request: HttpRequest, form: GatewayForm, gateway: Gateway | None, status: int = 200) -> HttpResponse:
    return render_console(
        request,
        "console/gateways/form.html",
        {"form": form, "gateway": gateway, "endpoint_form": ByoEndpointForm()},
        status=status,
    )


@console_view()
def gateway_new(request: HttpRequest) -> HttpResponse:
    org = request.console.organization  # type: ignore[attr-defined]
    if request.method != "POST":
        initial = GatewayForm.initial_for(None)
        if request.GET.get("model"):
            initial["model"] = request.GET["model"]
        return _form_page(request, GatewayForm(initial=initial, organization=org), None)
    form = GatewayForm(request.POST, organization=org)
    if form.is_valid():
        fields = form.service_fields()
        try:
            with transaction.atomic():
                gateway = gateway_create(organization=org, **fields)
                form.save_tools_and_router(gateway)
        except InvalidRequest as exc:
            attach_error(form, exc)
        else:
            messages.success(request, f"Created {gateway.name}. Try it in the playground or copy a snippet below.")
            return redirect("gateway-detail", pk=gateway.pk)
    return _form_page(request, form, None, status=400)


@console_view()
def gateway_edit(request: HttpRequest, pk: str) -> HttpResponse:
    org = request.console.organization  # type: ignore[attr-defined]
    gateway = get_for_org_or_404(Gateway, org, pk=pk)
    if request.method != "POST":
        return _form_page(request, GatewayForm(initial=GatewayForm.initial_for(gateway), organization=org), gateway)
    form = GatewayForm(request.POST, organization=org)
    if form.is_valid():
        try:
            with transaction.atomic():
                gateway_update(gateway=gateway, **form.service_fields())
                form.save_tools_and_router(gateway)
        except InvalidRequest as exc:
            attach_error(form, exc)
            gateway.refresh_from_db()
        else:
            messages.success(request, f"Saved {gateway.name}.")
            return redirect("gateway-detail", pk=gateway.pk)
    return _form_page(request, form, gateway, status=400)


@console_view()
def gateway_detail(request: HttpRequest, pk: str) -> HttpResponse:
    org = request.console.organization  # type: ignore[attr-defined]
    gateway = get_for_org_or_404(Gateway, org, pk=pk)
    base_url = request.build_absolute_uri("/api/v1")
    return render_console(
        request,
        "console/gateways/detail.html",
        {
            "gateway": gateway,
            "base_url": base_url,
            "curl": snippets.curl(base_url=base_url, model=gateway.slug),
            "python": snippets.python_openai(base_url=base_url, model=gateway.slug),
        },
    )


@console_view()
def gateway_delete_view(request: HttpRequest, pk: str) -> HttpResponse:
    org = request.console.organization  # type: ignore[attr-defined]
    gateway = get_for_org_or_404(Gateway, org, pk=pk)
    if request.method == "POST":
        try:
            gateway_delete(gateway=gateway)
        except ProtectedError:
            messages.error(request, f"{gateway.name} has billed requests and cannot be deleted; deactivate it instead.")
            return redirect("gateway-detail", pk=gateway.pk)
        messages.success(request, f"Deleted {gateway.name}.")
        return redirect("gateway-list")
    return render_console(request, "console/gateways/confirm_delete.html", {"gateway": gateway})


@require_POST
@console_view()
def endpoint_delete(request: HttpRequest, pk: str) -> HttpResponse:
    org = request.console.organization  # type: ignore[attr-defined]
    endpoint = get_for_org_or_404(ByoEndpoint, org, pk=pk)
    try:
        byo_endpoint_delete(endpoint=endpoint)
    except InvalidRequest as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Deleted {endpoint.name}.")
    return redirect("gateway-list")


@require_POST
@console_view()
def endpoint_new(request: HttpRequest) -> HttpResponse:
    """Add a bring-your-own endpoint. From the gateway form (htmx) the answer also refreshes the model select."""
    org = request.console.organization  # type: ignore[attr-defined]
    form = ByoEndpointForm(request.POST)
    endpoint = None
    if form.is_valid():
        try:
            endpoint = byo_endpoint_create(organization=org, **form.cleaned_data)
        except InvalidRequest as exc:
            attach_error(form, exc)
    if not request.headers.get("HX-Request"):
        if endpoint is None:
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
        else:
            messages.success(request, f"Added {endpoint.name}.")
        return redirect("gateway-list")
    context = {"endpoint_form": ByoEndpointForm() if endpoint else form, "created": endpoint}
    if endpoint is not None:
        gateway_form = GatewayForm(initial={"model": f"byo:{endpoint.pk}"}, organization=org)
        context["model_field"] = gateway_form["model"]
    return render_console(request, "console/gateways/_endpoint_form.html", context)
