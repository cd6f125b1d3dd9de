"""Reads the console pages need that the domain apps do not offer as selectors (yet)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet

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


def collection_list(*, organization: Organization) -> list[Any]:
    """The organization's knowledge collections, each with `counts` (documents by status) and `total`."""
    from knowledge.models import Collection, Document

    collections = list(Collection.objects.for_org(organization).order_by("name"))
    counts: dict[Any, dict[str, int]] = {}
    rows = Document.objects.for_org(organization).values("collection_id", "status").annotate(n=Count("id"))
    for row in rows:
        counts.setdefault(row["collection_id"], {})[row["status"]] = row["n"]
    for collection in collections:
        collection.counts = counts.get(collection.pk, {})
        collection.total = sum(collection.counts.values())
    return collections


def document_list(*, collection: Any, limit: int = 500) -> list[Any]:
    from knowledge.models import Document

    rows = Document.objects.for_org(collection.organization_id).filter(collection=collection)
    return list(rows.defer("content", "metadata").order_by("-created_at", "id")[:limit])


def gateways_using(*, collection: Any) -> list[Gateway]:
    return list(Gateway.objects.for_org(collection.organization_id).filter(knowledge_collection=collection))
