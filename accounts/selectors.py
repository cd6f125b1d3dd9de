"""Reads for accounts."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import ApiKey, Membership, Organization, Role, User
from aivax.tenancy import get_for_org_or_404


def user_organizations(*, user: User) -> QuerySet[Organization]:
    return Organization.objects.filter(memberships__user=user).order_by("name")


def membership_for(*, user: User, organization: Organization) -> Membership | None:
    return Membership.objects.filter(user=user, organization=organization).first()


def user_role(*, user: User, organization: Organization) -> str | None:
    membership = membership_for(user=user, organization=organization)
    return membership.role if membership else None


def role_at_least(role: str | None, *allowed: Role) -> bool:
    return role is not None and role in {r.value for r in allowed}


def api_key_list(*, organization: Organization) -> QuerySet[ApiKey]:
    return ApiKey.objects.for_org(organization).order_by("-created_at")


def api_key_get(*, organization: Organization, key_id: object) -> ApiKey:
    return get_for_org_or_404(ApiKey, organization, pk=key_id)


def user_is_billing_staff(user: User) -> bool:
    return bool(user.is_active and (user.is_superuser or user.has_perm("accounts.view_all_usage")))
