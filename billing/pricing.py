"""Usage lines and what they cost. Called on every inference request, so the price rows are cached in-process.

The cache holds every version of a model's prices, not just today's, so a price scheduled with a future
`effective_from` takes effect at that instant in every process. A saved or deleted Price clears this process's
cache at once (and again on commit); other processes pick the change up within `PRICE_CACHE_TTL_SECONDS`.
Schedule price changes ahead of time when they must apply everywhere at the same instant.

A SKU with no price row is priced at zero and logged: a missing price must not take inference down.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Q
from django.utils import timezone

from billing import skus
from billing.money import ZERO, quantize_money

logger = logging.getLogger(__name__)

PRICE_CACHE_TTL_SECONDS = 30.0
# catalog_model_id -> (expires at (monotonic), [(sku, effective_from, unit_price)] newest first)
_cache: dict[uuid.UUID | None, tuple[float, list[tuple[str, datetime, Decimal]]]] = {}
_cache_lock = threading.Lock()
_warned: set[tuple[uuid.UUID | None, str]] = set()


@dataclass(frozen=True)
class UsageLine:
    sku: str
    quantity: int
    unit_price: Decimal
    amount: Decimal
    description: str
    estimated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "amount": self.amount,
            "unit_price": self.unit_price,
            "quantity": self.quantity,
            "description": self.description,
        }


def invalidate_price_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _price_versions(catalog_model_id: uuid.UUID | None) -> list[tuple[str, datetime, Decimal]]:
    now = time.monotonic()
    cached = _cache.get(catalog_model_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    from billing.models import Price

    scope = Q(catalog_model__isnull=True)
    if catalog_model_id is not None:
        scope |= Q(catalog_model_id=catalog_model_id)
    rows = Price.objects.filter(scope).values_list("catalog_model_id", "sku", "effective_from", "unit_price")
    # The model's own rows always win over platform-wide ones; within each, the newest version first.
    ordered = sorted(rows, key=lambda r: (r[0] is None, -r[2].timestamp()))
    versions = [(sku, effective_from, unit_price) for _, sku, effective_from, unit_price in ordered]
    with _cache_lock:
        _cache[catalog_model_id] = (now + PRICE_CACHE_TTL_SECONDS, versions)
    return versions


def price_sheet(*, catalog_model_id: uuid.UUID | None, at: datetime | None = None) -> dict[str, Decimal]:
    """Unit price per SKU in effect at `at` (default now): the model's own rows, then platform-wide ones."""
    at = at or timezone.now()
    sheet: dict[str, Decimal] = {}
    for sku, effective_from, unit_price in _price_versions(catalog_model_id):
        if effective_from <= at and sku not in sheet:
            sheet[sku] = unit_price
    return sheet


def _unit_price(sheet: dict[str, Decimal], sku: str, catalog_model_id: uuid.UUID | None) -> Decimal:
    price = sheet.get(sku)
    if price is None:
        if (catalog_model_id, sku) not in _warned:
            _warned.add((catalog_model_id, sku))
            logger.warning("No price for SKU %s (catalog model %s): billed at zero", sku, catalog_model_id)
        return ZERO
    return price


def _line(sku: str, quantity: int, unit_price: Decimal, description: str, estimated: bool) -> UsageLine:
    return UsageLine(
        sku=sku,
        quantity=quantity,
        unit_price=unit_price,
        amount=quantize_money(unit_price * quantity),
        description=description,
        estimated=estimated,
    )


def price_chat_completion(
    *,
    model_name: str,
    catalog_model_id: uuid.UUID | None,
    prompt_tokens: int,
    cached_tokens: int,
    completion_tokens: int,
    estimated: bool,
    byo: bool,
    sku_prefix: str = skus.CHAT_PREFIX,
) -> list[UsageLine]:
    """Lines for one completion: input (prompt - cached), output, cached input. BYO pays no inference lines."""
    if byo:
        return []
    cached = max(0, min(cached_tokens, prompt_tokens))
    sheet = price_sheet(catalog_model_id=catalog_model_id)
    description = f"Inference for AI model '{model_name}'"
    wanted = ((".in", prompt_tokens - cached), (".out", completion_tokens), (".in.cached", cached))
    return [
        _line(
            sku_prefix + suffix,
            quantity,
            _unit_price(sheet, sku_prefix + suffix, catalog_model_id),
            description,
            estimated,
        )
        for suffix, quantity in wanted
        if quantity > 0
    ]


def price_platform_sku(*, sku: str, quantity: int, description: str, estimated: bool = False) -> UsageLine:
    """One line for a platform-wide SKU (knowledge.embedding, knowledge.search)."""
    sheet = price_sheet(catalog_model_id=None)
    return _line(sku, quantity, _unit_price(sheet, sku, None), description, estimated)


def estimate_max_cost(*, catalog_model_id: uuid.UUID | None, prompt_tokens: int, max_completion_tokens: int) -> Decimal:
    """The most a completion can cost, at list price (no cache discount): what `reserve` holds."""
    if catalog_model_id is None:
        return ZERO
    sheet = price_sheet(catalog_model_id=catalog_model_id)
    cost = sheet.get(skus.CHAT_IN, ZERO) * max(prompt_tokens, 0) + sheet.get(skus.CHAT_OUT, ZERO) * max(
        max_completion_tokens, 0
    )
    return quantize_money(cost)
