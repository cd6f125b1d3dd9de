"""Reads for accounts."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import ApiKey, Organization, User
from aivax.tenancy import get_for_org_or_404


def user_organizations(*, user: User) -> QuerySet[Organization]:
    return Organization.objects.filter(memberships__user=user).order_by("name")


def api_key_list(*, organization: Organization) -> QuerySet[ApiKey]:
    return ApiKey.objects.for_org(organization).order_by("-created_at")


def api_key_get(*, organization: Organization, key_id: object) -> ApiKey:
    return get_for_org_or_404(ApiKey, organization, pk=key_id)


def user_is_billing_staff(user: User) -> bool:
    return bool(user.is_active and (user.is_superuser or user.has_perm("accounts.view_all_usage")))
