"""Every version of a catalog model's prices (and the platform-wide ones), cached in-process.

Called on every inference request. The cache holds all versions, not just today's, so a price scheduled with a
future `effective_from` takes effect at that instant in every process. A saved or deleted Price clears this
process's cache at once (and again on commit, see billing.receivers); other processes pick a change up within
`PRICE_CACHE_TTL_SECONDS`. Schedule price changes ahead of time when they must apply everywhere at one instant.

Async callers use `aprice_versions`: on a miss it loads in an executor thread (never the ORM on the event loop).
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime
from decimal import Decimal

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.db.models import Q

PRICE_CACHE_TTL_SECONDS = 30.0
Versions = list[tuple[str, datetime, Decimal]]  # (sku, effective_from, unit_price): the model's rows first
_cache: dict[uuid.UUID | None, tuple[float, Versions]] = {}
_lock = threading.Lock()


def invalidate_price_cache() -> None:
    with _lock:
        _cache.clear()


def _cached(catalog_model_id: uuid.UUID | None) -> Versions | None:
    hit = _cache.get(catalog_model_id)
    return hit[1] if hit is not None and hit[0] > time.monotonic() else None


def _load(catalog_model_id: uuid.UUID | None) -> Versions:
    from billing.models import Price

    scope = Q(catalog_model__isnull=True)
    if catalog_model_id is not None:
        scope |= Q(catalog_model_id=catalog_model_id)
    rows = Price.objects.filter(scope).order_by().values_list("catalog_model_id", "sku", "effective_from", "unit_price")
    # The model's own rows always win over platform-wide ones; within each, the newest version first.
    ordered = sorted(rows, key=lambda r: (r[0] is None, -r[2].timestamp()))
    versions = [(sku, effective_from, unit_price) for _, sku, effective_from, unit_price in ordered]
    with _lock:
        _cache[catalog_model_id] = (time.monotonic() + PRICE_CACHE_TTL_SECONDS, versions)
    return versions


def _load_in_worker(catalog_model_id: uuid.UUID | None) -> Versions:
    close_old_connections()
    try:
        return _load(catalog_model_id)
    finally:
        close_old_connections()


def price_versions(catalog_model_id: uuid.UUID | None) -> Versions:
    cached = _cached(catalog_model_id)
    return cached if cached is not None else _load(catalog_model_id)


async def aprice_versions(catalog_model_id: uuid.UUID | None) -> Versions:
    cached = _cached(catalog_model_id)
    if cached is not None:
        return cached
    return await sync_to_async(_load_in_worker, thread_sensitive=False)(catalog_model_id)
