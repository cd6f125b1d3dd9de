"""Console-side writes that compose the accounts services: inviting members, changing and removing them.

Thin wrappers over `accounts.services`; the rules of who may do what (only an owner makes or unmakes owners, an
organization keeps at least one owner) live here so every console view applies them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import Membership, Organization, Role, User
from accounts.services import membership_set, organization_create, user_create
from aivax.errors import InvalidRequest


@dataclass(frozen=True)
class Invitation:
    membership: Membership
    new_user: bool


def set_password_url(*, user: User, base_url: str) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return base_url.rstrip("/") + reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token})


def _check_grant(*, actor_role: str, role: str) -> None:
    if role == Role.OWNER and actor_role != Role.OWNER:
        raise InvalidRequest("Only an owner can make someone an owner.", param="role")


@transaction.atomic
def member_invite(
    *, organization: Organization, email: str, role: str, invited_by: User, actor_role: str, base_url: str
) -> Invitation:
    """Add a member by email. A new address gets an account with no password and an email to set one."""
    _check_grant(actor_role=actor_role, role=role)
    email = email.strip().lower()
    user = User.objects.filter(email__iexact=email).first()
    new_user = user is None
    if user is None:
        user = user_create(email=email, password=None)
    elif Membership.objects.filter(user=user, organization=organization).exists():
        raise InvalidRequest(f"{email} is already a member of {organization.name}.", param="email")
    membership = membership_set(organization=organization, user=user, role=role)
    context = {
        "organization": organization,
        "invited_by": invited_by,
        "new_user": new_user,
        "role": Role(role).label,
        "url": set_password_url(user=user, base_url=base_url) if new_user else base_url.rstrip("/") + "/console/",
    }
    subject = f"You have been invited to {organization.name} on aivax"
    body = render_to_string("accounts/email/invitation.txt", context)
    transaction.on_commit(lambda: send_mail(subject, body, None, [user.email]))
    return Invitation(membership=membership, new_user=new_user)


def _owners(organization: Organization) -> int:
    return Membership.objects.filter(organization=organization, role=Role.OWNER).count()


@transaction.atomic
def member_change_role(*, membership: Membership, role: str, actor_role: str) -> Membership:
    _check_grant(actor_role=actor_role, role=role)
    locked = Membership.objects.select_for_update().get(pk=membership.pk)
    if locked.role == Role.OWNER and role != Role.OWNER:
        if actor_role != Role.OWNER:
            raise InvalidRequest("Only an owner can change an owner's role.", param="role")
        if _owners(locked.organization) <= 1:
            raise InvalidRequest("An organization needs at least one owner.", param="role")
    return membership_set(organization=locked.organization, user=locked.user, role=role)


@transaction.atomic
def member_remove(*, membership: Membership, actor_role: str) -> None:
    locked = Membership.objects.select_for_update().get(pk=membership.pk)
    if locked.role == Role.OWNER:
        if actor_role != Role.OWNER:
            raise InvalidRequest("Only an owner can remove an owner.", param="role")
        if _owners(locked.organization) <= 1:
            raise InvalidRequest("An organization needs at least one owner.", param="role")
    locked.delete()


@transaction.atomic
def signup(*, email: str, password: str, organization_name: str) -> tuple[User, Organization]:
    user = user_create(email=email, password=password)
    return user, organization_create(name=organization_name, owner=user)
