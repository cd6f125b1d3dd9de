"""Reads for the router: a gateway's candidates, and its routing part of the cached configuration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet

from gateways.models import ByoEndpoint, CatalogModel, Gateway
from gateways.routing.models import RouteCandidate


def route_candidate_list(*, gateway: Gateway) -> QuerySet[RouteCandidate]:
    return (
        RouteCandidate.objects.for_org(gateway.organization_id)
        .filter(gateway=gateway)
        .select_related("catalog_model", "byo_endpoint")
        .order_by("position")
    )


def route_config(
    *,
    gateway: Gateway,
    catalog_ref: Callable[[CatalogModel], Any],
    byo_ref: Callable[[ByoEndpoint], Any],
) -> dict[str, Any] | None:
    """``{"classifier": ref, "candidates": [{"low", "high", "upstream": ref}]}`` with refs as plain dicts (the
    config cache is JSON), or None when the gateway does not route (no classifier, no candidate, or inactive
    models only)."""
    import dataclasses

    classifier = gateway.router_classifier if gateway.router_classifier_id else None
    if classifier is None or not classifier.is_active:
        return None
    candidates = []
    for row in route_candidate_list(gateway=gateway):
        if row.catalog_model_id:
            if not row.catalog_model.is_active:
                continue
            ref = catalog_ref(row.catalog_model)
        else:
            ref = byo_ref(row.byo_endpoint)
        candidates.append({"low": row.min_complexity, "high": row.max_complexity, "upstream": dataclasses.asdict(ref)})
    if not candidates:
        return None
    return {"classifier": dataclasses.asdict(catalog_ref(classifier)), "candidates": candidates}
