"""Usage lines and what they cost, from the cached price versions (billing.price_cache).

Every pricing function has an async twin (`aprice_chat_completion`, ...) for the async inference path: the
computation is the same; only a cache miss differs (loaded in an executor thread).

A SKU with no price row is priced at zero and logged once: a missing price must not take inference down.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from billing import skus
from billing.money import ZERO, quantize_money
from billing.price_cache import Versions, aprice_versions, invalidate_price_cache, price_versions

__all__ = [
    "UsageLine",
    "aestimate_max_cost",
    "aprice_chat_completion",
    "aprice_platform_sku",
    "aprice_sheet",
    "estimate_max_cost",
    "invalidate_price_cache",
    "price_chat_completion",
    "price_platform_sku",
    "price_sheet",
    "worst_unit_prices",
]

logger = logging.getLogger(__name__)
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


def _sheet(versions: Versions, at: datetime | None) -> dict[str, Decimal]:
    at = at or timezone.now()
    sheet: dict[str, Decimal] = {}
    for sku, effective_from, unit_price in versions:
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
    amount = quantize_money(unit_price * quantity)
    return UsageLine(sku, quantity, unit_price, amount, description, estimated)


def _chat_lines(
    sheet: dict[str, Decimal], catalog_model_id: uuid.UUID | None, model_name: str, prompt_tokens: int,
    cached_tokens: int, completion_tokens: int, estimated: bool, sku_prefix: str, reasoning_tokens: int = 0,
) -> list[UsageLine]:  # fmt: skip
    """Cached tokens are a part of the prompt tokens, reasoning tokens a part of the completion tokens (OpenAI's
    usage shape): each token is billed on exactly one line. Reasoning has its own line only when the sheet prices
    it; otherwise it stays in `.out`."""
    cached = max(0, min(cached_tokens, prompt_tokens))
    reasoning = max(0, min(reasoning_tokens, completion_tokens)) if sku_prefix + ".out.reasoning" in sheet else 0
    description = f"Inference for AI model '{model_name}'"
    wanted = (
        (".in", prompt_tokens - cached),
        (".out", completion_tokens - reasoning),
        (".in.cached", cached),
        (".out.reasoning", reasoning),
    )
    return [
        _line(sku_prefix + suffix, n, _unit_price(sheet, sku_prefix + suffix, catalog_model_id), description, estimated)
        for suffix, n in wanted
        if n > 0
    ]


def worst_unit_prices(sheet: dict[str, Decimal], sku_prefix: str = skus.CHAT_PREFIX) -> tuple[Decimal, Decimal]:
    """(price per prompt token, price per completion token) at list price, the dearest line each can land on:
    what a hold multiplies by the worst case."""
    prompt = max(sheet.get(sku_prefix + ".in", ZERO), sheet.get(sku_prefix + ".in.cached", ZERO))
    completion = max(sheet.get(sku_prefix + ".out", ZERO), sheet.get(sku_prefix + ".out.reasoning", ZERO))
    return prompt, completion


def _estimate(sheet: dict[str, Decimal], prompt_tokens: int, max_completion_tokens: int) -> Decimal:
    cost = sheet.get(skus.CHAT_IN, ZERO) * max(prompt_tokens, 0)
    cost += sheet.get(skus.CHAT_OUT, ZERO) * max(max_completion_tokens, 0)
    return quantize_money(cost)


def price_sheet(*, catalog_model_id: uuid.UUID | None, at: datetime | None = None) -> dict[str, Decimal]:
    """Unit price per SKU in effect at `at` (default now): the model's own rows, then platform-wide ones."""
    return _sheet(price_versions(catalog_model_id), at)


async def aprice_sheet(*, catalog_model_id: uuid.UUID | None, at: datetime | None = None) -> dict[str, Decimal]:
    return _sheet(await aprice_versions(catalog_model_id), at)


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
    reasoning_tokens: int = 0,
) -> list[UsageLine]:
    """Lines for one completion: input (prompt - cached), output, cached input. BYO pays no inference lines."""
    if byo:
        return []
    sheet = price_sheet(catalog_model_id=catalog_model_id)
    return _chat_lines(
        sheet,
        catalog_model_id,
        model_name,
        prompt_tokens,
        cached_tokens,
        completion_tokens,
        estimated,
        sku_prefix,
        reasoning_tokens,
    )


async def aprice_chat_completion(
    *,
    model_name: str,
    catalog_model_id: uuid.UUID | None,
    prompt_tokens: int,
    cached_tokens: int,
    completion_tokens: int,
    estimated: bool,
    byo: bool,
    sku_prefix: str = skus.CHAT_PREFIX,
    reasoning_tokens: int = 0,
) -> list[UsageLine]:
    if byo:
        return []
    sheet = await aprice_sheet(catalog_model_id=catalog_model_id)
    return _chat_lines(
        sheet,
        catalog_model_id,
        model_name,
        prompt_tokens,
        cached_tokens,
        completion_tokens,
        estimated,
        sku_prefix,
        reasoning_tokens,
    )


def price_platform_sku(*, sku: str, quantity: int, description: str, estimated: bool = False) -> UsageLine:
    """One line for a platform-wide SKU (knowledge.embedding, knowledge.search)."""
    return _line(sku, quantity, _unit_price(price_sheet(catalog_model_id=None), sku, None), description, estimated)


async def aprice_platform_sku(*, sku: str, quantity: int, description: str, estimated: bool = False) -> UsageLine:
    sheet = await aprice_sheet(catalog_model_id=None)
    return _line(sku, quantity, _unit_price(sheet, sku, None), description, estimated)


def estimate_max_cost(*, catalog_model_id: uuid.UUID | None, prompt_tokens: int, max_completion_tokens: int) -> Decimal:
    """The most a completion can cost, at list price (no cache discount): what `reserve` holds."""
    if catalog_model_id is None:
        return ZERO
    return _estimate(price_sheet(catalog_model_id=catalog_model_id), prompt_tokens, max_completion_tokens)


async def aestimate_max_cost(
    *, catalog_model_id: uuid.UUID | None, prompt_tokens: int, max_completion_tokens: int
) -> Decimal:
    if catalog_model_id is None:
        return ZERO
    sheet = await aprice_sheet(catalog_model_id=catalog_model_id)
    return _estimate(sheet, prompt_tokens, max_completion_tokens)
