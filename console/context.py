"""Who is looking at the console, in which organization, with which role: resolved once per request.

Every console view goes through `console_view(min_role=...)`, which signs the visitor in if needed, resolves the
current organization (the one chosen in the session's organization switcher, else the first one the user belongs
to) and checks the role. Objects are then fetched with `aivax.tenancy.get_for_org_or_404(Model, request.console.
organization, ...)`, so another organization's object is a 404.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.models import Membership, Organization, Role, User

SESSION_ORG_KEY = "console_org_id"

# Billing members see usage and balance only; the others build. Higher ranks include the lower ones.
RANK = {Role.BILLING: 0, Role.DEVELOPER: 1, Role.ADMIN: 2, Role.OWNER: 3}


def rank(role: str) -> int:
    return RANK.get(Role(role), -1) if role in Role.values else -1


@dataclass(frozen=True)
class Console:
    user: User
    organization: Organization
    role: str
    memberships: list[Membership] = field(default_factory=list)

    def at_least(self, role: str) -> bool:
        return rank(self.role) >= rank(role)

    @property
    def can_build(self) -> bool:
        """Gateways, playground, knowledge, API keys: developers and up."""
        return self.at_least(Role.DEVELOPER)

    @property
    def can_manage(self) -> bool:
        """Members and roles: admins and owners."""
        return self.at_least(Role.ADMIN)

    @property
    def role_label(self) -> str:
        return Role(self.role).label


def _pick(memberships: list[Membership], wanted: object) -> Membership | None:
    for membership in memberships:
        if membership.organization_id == wanted:
            return membership
    return memberships[0] if memberships else None


def resolve(request: HttpRequest) -> Console | None:
    """The visitor's current organization and role, or None for a user who belongs to none."""
    user = request.user
    if not user.is_authenticated:
        return None
    memberships = list(
        Membership.objects.filter(user=user).select_related("organization").order_by("organization__name")
    )
    chosen = _pick(memberships, request.session.get(SESSION_ORG_KEY))
    if chosen is None:
        return None
    return Console(user=user, organization=chosen.organization, role=chosen.role, memberships=memberships)


async def aresolve(request: HttpRequest) -> Console | None:
    """`resolve` for async views."""
    user = await request.auser()
    if not user.is_authenticated:
        return None
    query = Membership.objects.filter(user=user).select_related("organization").order_by("organization__name")
    memberships = [m async for m in query]
    chosen = _pick(memberships, await request.session.aget(SESSION_ORG_KEY))
    if chosen is None:
        return None
    return Console(user=user, organization=chosen.organization, role=chosen.role, memberships=memberships)


def switch_organization(request: HttpRequest, organization_id: int) -> bool:
    """Remember the chosen organization in the session; only one the user belongs to."""
    if not Membership.objects.filter(user=request.user, organization_id=organization_id).exists():
        return False
    request.session[SESSION_ORG_KEY] = organization_id
    return True


def console_view(
    min_role: str = Role.DEVELOPER,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Decorator: signed in, a member of some organization, and a role of at least `min_role` in the current one.

    Sets `request.console`. A role that is too low is a 403 page; a user without an organization is sent to create
    one.
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            console = resolve(request)
            if console is None:
                return redirect("organization-new")
            request.console = console  # type: ignore[attr-defined]
            if not console.at_least(min_role):
                raise PermissionDenied(f"Your role ({console.role_label}) cannot open this page.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def render_console(
    request: HttpRequest, template: str, context: dict[str, Any] | None = None, **kw: Any
) -> HttpResponse:
    """`render` with the current console (organization, role, switcher) in the context."""
    ctx = {"console": getattr(request, "console", None), **(context or {})}
    return render(request, template, ctx, **kw)
