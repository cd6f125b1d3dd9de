"""API keys: list, create secret or public keys (the secret shown once), with optional rate limits; revoke."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from accounts.models import KeyKind, Role, Scope
from accounts.selectors import api_key_get, api_key_list
from accounts.services import api_key_create, api_key_revoke
from aivax.errors import InvalidRequest
from console.context import console_view, render_console
from console.forms import ApiKeyForm, attach_error
from console.usage import with_month_spend


def _page(request: HttpRequest, form: ApiKeyForm, created: object = None, status: int = 200) -> HttpResponse:
    org = request.console.organization  # type: ignore[attr-defined]
    response = render_console(
        request,
        "console/keys/list.html",
        {"keys": with_month_spend(api_key_list(organization=org), org, "api_key"), "form": form, "created": created},
        status=status,
    )
    if created is not None:
        response["Cache-Control"] = "no-store"  # the page holds the secret once; never cache it
    return response


@console_view()
def key_list(request: HttpRequest) -> HttpResponse:
    console = request.console  # type: ignore[attr-defined]
    allow_admin = console.at_least(Role.ADMIN)
    if request.method != "POST":
        return _page(request, ApiKeyForm(organization=console.organization, allow_admin=allow_admin))
    form = ApiKeyForm(request.POST, organization=console.organization, allow_admin=allow_admin)
    if form.is_valid():
        kind = form.cleaned_data["kind"] or KeyKind.SECRET
        public = kind == KeyKind.PUBLIC
        try:
            created = api_key_create(
                organization=console.organization,
                name=form.cleaned_data["name"],
                kind=kind,
                scopes=[Scope.INFERENCE] if public else form.cleaned_data["scopes"],
                expires_at=form.expires_at(),
                allowed_gateway_ids=form.cleaned_data["gateways"],
                allowed_origins=form.origins(),
                limits=form.limits(),
                created_by=request.user,
            )
        except InvalidRequest as exc:
            attach_error(form, exc)
        else:
            fresh = ApiKeyForm(organization=console.organization, allow_admin=allow_admin)
            return _page(request, fresh, created=created, status=201)
    return _page(request, form, status=400)


@require_POST
@console_view()
def key_revoke(request: HttpRequest, pk: str) -> HttpResponse:
    console = request.console  # type: ignore[attr-defined]
    key = api_key_get(organization=console.organization, key_id=pk)
    if Scope.ADMIN in key.scopes and not console.at_least(Role.ADMIN):
        messages.error(request, "Only admins and owners can revoke a key with the admin scope.")
    else:
        api_key_revoke(key=key)
        messages.success(request, f"Revoked {key.name} ({key.prefix}…). Requests with it now fail.")
    return redirect("key-list")
