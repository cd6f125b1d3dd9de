"""Reads the console pages need that the domain apps do not offer as selectors (yet)."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import ApiKey, Organization
from gateways.models import ByoEndpoint, Gateway


def gateway_list(*, organization: Organization) -> QuerySet[Gateway]:
    return Gateway.objects.for_org(organization).select_related("catalog_model", "byo_endpoint").order_by("name")


def byo_endpoint_list(*, organization: Organization) -> QuerySet[ByoEndpoint]:
    return ByoEndpoint.objects.for_org(organization).order_by("name")


def overview_counts(*, organization: Organization) -> dict[str, int]:
    return {
        "gateways": Gateway.objects.for_org(organization).count(),
        "keys": ApiKey.objects.for_org(organization).filter(revoked_at__isnull=True).count(),
    }
