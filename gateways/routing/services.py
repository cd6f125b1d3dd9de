"""Writes for the router: a gateway's classifier and candidate list, replaced together."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from aivax.errors import InvalidRequest
from gateways import cache as gateway_cache
from gateways.models import ByoEndpoint, CatalogModel, Gateway
from gateways.routing.models import RouteCandidate

MAX_CANDIDATES = 10


@dataclass(frozen=True)
class CandidateIn:
    catalog_model: CatalogModel | None = None
    byo_endpoint: ByoEndpoint | None = None
    min_complexity: int = 1
    max_complexity: int = 10


@transaction.atomic
def gateway_router_set(
    *, gateway: Gateway, classifier: CatalogModel | None, candidates: list[CandidateIn]
) -> list[RouteCandidate]:
    """Routing is on when there is a classifier and at least one candidate; the gateway's own model answers
    whatever no band holds, and whenever the classifier fails."""
    if len(candidates) > MAX_CANDIDATES:
        raise InvalidRequest(f"A router takes up to {MAX_CANDIDATES} candidate models.", param="router")
    if classifier is not None and not classifier.is_active:
        raise InvalidRequest(f"Model '{classifier.name}' is not available.", param="router.classifier")
    if candidates and classifier is None:
        raise InvalidRequest("A router needs a classifier model.", param="router.classifier")
    rows = []
    for position, candidate in enumerate(candidates):
        if (candidate.catalog_model is None) == (candidate.byo_endpoint is None):
            raise InvalidRequest("Each candidate is a catalog model or one of your endpoints.", param="router")
        if candidate.byo_endpoint is not None and candidate.byo_endpoint.organization_id != gateway.organization_id:
            raise InvalidRequest("Unknown endpoint.", param="router")
        if candidate.catalog_model is not None and not candidate.catalog_model.is_active:
            raise InvalidRequest(f"Model '{candidate.catalog_model.name}' is not available.", param="router")
        low, high = int(candidate.min_complexity), int(candidate.max_complexity)
        if not 1 <= low <= high <= 10:
            raise InvalidRequest("A complexity band is 1 to 10, its minimum at most its maximum.", param="router")
        rows.append(
            RouteCandidate(
                organization_id=gateway.organization_id,
                gateway=gateway,
                position=position,
                catalog_model=candidate.catalog_model,
                byo_endpoint=candidate.byo_endpoint,
                min_complexity=low,
                max_complexity=high,
            )
        )
    gateway.router_classifier = classifier
    gateway.save(update_fields=["router_classifier", "updated_at"])
    RouteCandidate.objects.for_org(gateway.organization_id).filter(gateway=gateway).delete()
    RouteCandidate.unscoped.bulk_create(rows)
    transaction.on_commit(lambda: gateway_cache.forget(gateway))
    return rows
