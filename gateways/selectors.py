"""Reads for gateways."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from accounts.models import Organization
from gateways.models import Gateway


def gateway_list(*, organization: Organization | int) -> QuerySet[Gateway]:
    return Gateway.objects.for_org(organization).select_related("catalog_model", "byo_endpoint").order_by("name")


def gateway_get(*, organization: Organization | int, ref: str) -> Gateway:
    """By UUID or slug; another organization's gateway is a 404."""
    import uuid

    try:
        lookup = Q(pk=uuid.UUID(str(ref)))
    except ValueError:
        lookup = Q(slug=ref)
    gateway = gateway_list(organization=organization).filter(lookup).first()
    if gateway is None:
        raise Http404("gateway not found")
    return gateway
