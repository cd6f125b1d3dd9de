"""Writes of stored responses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from django.conf import settings
from django.utils import timezone

from gateways import protocol
from gateways.responses.models import StoredResponse


def response_store(*, organization_id: int, body: dict[str, Any], input_items: list[dict[str, Any]]) -> StoredResponse:
    created = timezone.now()
    # Through our JSON encoder once, so what is stored reads back exactly as it was sent (Decimals as numbers).
    return StoredResponse.objects.for_org(organization_id).create(
        id=body["id"],
        organization_id=organization_id,
        body=orjson.loads(protocol.dumps(body)),
        input_items=orjson.loads(protocol.dumps(input_items)),
        created_at=created,
        expires_at=created + timedelta(days=settings.RESPONSES_RETENTION_DAYS),
    )


def response_delete(*, stored: StoredResponse) -> None:
    stored.delete()


def responses_delete_expired() -> int:
    """Housekeeping across every organization (hence `unscoped`, deliberately)."""
    deleted, _ = StoredResponse.unscoped.filter(expires_at__lte=timezone.now()).delete()
    return deleted
