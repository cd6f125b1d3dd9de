"""Reads of stored responses, always within one organization; expired ones are gone even before the cleanup."""

from __future__ import annotations

from django.utils import timezone

from aivax.errors import NotFound
from gateways.responses.models import StoredResponse


def response_get(*, organization_id: int, response_id: str, param: str | None = None) -> StoredResponse:
    """Not found, expired and another organization's look the same: a 404."""
    found = (
        StoredResponse.objects.for_org(organization_id).filter(pk=response_id, expires_at__gt=timezone.now()).first()
    )
    if found is None:
        raise NotFound(f"Response with id '{response_id}' not found.", param=param, code="response_not_found")
    return found
