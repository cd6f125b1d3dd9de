"""Console pages for accounts: sign in/up/out, password reset, organizations, members and invitations."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts import services
from accounts.forms import EmailAuthenticationForm, InviteForm, OrganizationForm, RoleForm, SignUpForm
from accounts.models import Membership, Role
from aivax.errors import InvalidRequest
from console.context import SESSION_ORG_KEY, console_view, render_console, switch_organization


class SignInView(auth_views.LoginView):
    form_class = EmailAuthenticationForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def form_invalid(self, form: EmailAuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.throttled:
            response.status_code = 429
        return response


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("console-home")
    form = SignUpForm(request.POST or None, request=request)
    if request.method == "POST" and form.is_valid():
        user, org = services.signup(
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password1"],
            organization_name=form.cleaned_data["organization"],
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        request.session[SESSION_ORG_KEY] = org.pk
        messages.success(request, f"Welcome to aivax! {org.name} is ready.")
        return redirect("console-home")
    return render(request, "registration/signup.html", {"form": form}, status=429 if form.throttled else 200)


@login_required
def organization_new(request: HttpRequest) -> HttpResponse:
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        org = services.organization_create(name=form.cleaned_data["name"], owner=request.user)
        request.session[SESSION_ORG_KEY] = org.pk
        messages.success(request, f"Created {org.name}.")
        return redirect("console-home")
    return render(request, "accounts/organization_new.html", {"form": form})


@require_POST
@login_required
def organization_switch(request: HttpRequest) -> HttpResponse:
    try:
        org_id = int(request.POST.get("organization", ""))
    except ValueError:
        org_id = 0
    if not switch_organization(request, org_id):
        messages.error(request, "You are not a member of that organization.")
    return redirect("console-home")


def _member_context(request: HttpRequest, **extra: object) -> dict[str, object]:
    console = request.console  # type: ignore[attr-defined]
    owner = console.role == Role.OWNER
    members = (
        Membership.objects.filter(organization=console.organization).select_related("user").order_by("user__email")
    )
    rows = [(m, RoleForm(initial={"role": m.role}, can_grant_owner=owner, prefix=f"m{m.pk}")) for m in members]
    return {"rows": rows, "invite_form": InviteForm(can_grant_owner=owner), "roles": Role, **extra}


@console_view(min_role=Role.DEVELOPER)
def members(request: HttpRequest) -> HttpResponse:
    return render_console(request, "accounts/members.html", _member_context(request))


@require_POST
@console_view(min_role=Role.ADMIN)
def member_invite(request: HttpRequest) -> HttpResponse:
    console = request.console  # type: ignore[attr-defined]
    form = InviteForm(request.POST, can_grant_owner=console.role == Role.OWNER)
    if form.is_valid():
        try:
            invitation = services.member_invite(
                organization=console.organization,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                invited_by=request.user,
                actor_role=console.role,
                base_url=request.build_absolute_uri("/"),
            )
        except InvalidRequest as exc:
            form.add_error(exc.param if exc.param in form.fields else None, exc.message)
        else:
            who = invitation.membership.user.email
            note = "We emailed them a link to set a password." if invitation.new_user else "We let them know."
            messages.success(request, f"Added {who} as {invitation.membership.get_role_display()}. {note}")
            return redirect("members")
    context = _member_context(request)
    context["invite_form"] = form
    return render_console(request, "accounts/members.html", context, status=400)


@require_POST
@console_view(min_role=Role.ADMIN)
def member_role(request: HttpRequest, pk: int) -> HttpResponse:
    console = request.console  # type: ignore[attr-defined]
    membership = get_object_or_404(Membership, pk=pk, organization=console.organization)
    form = RoleForm(request.POST, can_grant_owner=console.role == Role.OWNER, prefix=f"m{pk}")
    if not form.is_valid():
        messages.error(request, "Choose one of the roles offered.")
        return redirect("members")
    try:
        services.member_change_role(membership=membership, role=form.cleaned_data["role"], actor_role=console.role)
    except InvalidRequest as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{membership.user.email} is now {Role(form.cleaned_data['role']).label}.")
    return redirect("members")


@require_POST
@console_view(min_role=Role.ADMIN)
def member_remove(request: HttpRequest, pk: int) -> HttpResponse:
    console = request.console  # type: ignore[attr-defined]
    membership = get_object_or_404(Membership, pk=pk, organization=console.organization)
    try:
        services.member_remove(membership=membership, actor_role=console.role)
    except InvalidRequest as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Removed {membership.user.email} from {console.organization.name}.")
    return redirect("members")
