from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import skus
from billing.models import Price
from billing.money import quantize_money
from billing.pricing import (
    UsageLine,
    estimate_max_cost,
    invalidate_price_cache,
    price_chat_completion,
    price_platform_sku,
    price_sheet,
)

from .conftest import PRICE_IN, PRICE_IN_CACHED, PRICE_OUT, PRICE_SEARCH


def test_cached_tokens_are_priced_once_at_the_cached_price(catalog_model) -> None:
    lines = price_chat_completion(
        model_name=catalog_model.name,
        catalog_model_id=catalog_model.id,
        prompt_tokens=1000,
        cached_tokens=800,
        completion_tokens=50,
        estimated=False,
        byo=False,
    )
    assert [(line.sku, line.quantity) for line in lines] == [
        (skus.CHAT_IN, 200),
        (skus.CHAT_OUT, 50),
        (skus.CHAT_IN_CACHED, 800),
    ]
    assert lines[0].amount == quantize_money(PRICE_IN * 200)
    assert lines[1].amount == quantize_money(PRICE_OUT * 50)
    assert lines[2].amount == quantize_money(PRICE_IN_CACHED * 800)
    assert all(line.description == "Inference for AI model '@openai/gpt-4o-mini'" for line in lines)
    assert set(lines[0].as_dict()) == {"sku", "amount", "unit_price", "quantity", "description"}
    assert isinstance(lines[0].as_dict()["amount"], Decimal)


def test_zero_quantity_lines_are_omitted_and_byo_pays_no_inference(catalog_model) -> None:
    lines = price_chat_completion(
        model_name="m",
        catalog_model_id=catalog_model.id,
        prompt_tokens=10,
        cached_tokens=0,
        completion_tokens=0,
        estimated=True,
        byo=False,
    )
    assert [line.sku for line in lines] == [skus.CHAT_IN]
    assert lines[0].estimated is True
    assert (
        price_chat_completion(
            model_name="m",
            catalog_model_id=None,
            prompt_tokens=10,
            cached_tokens=0,
            completion_tokens=5,
            estimated=False,
            byo=True,
        )
        == []
    )


def test_cached_tokens_beyond_the_prompt_are_clamped(catalog_model) -> None:
    lines = price_chat_completion(
        model_name="m",
        catalog_model_id=catalog_model.id,
        prompt_tokens=10,
        cached_tokens=50,
        completion_tokens=0,
        estimated=False,
        byo=False,
    )
    assert [(line.sku, line.quantity) for line in lines] == [(skus.CHAT_IN_CACHED, 10)]


def test_query_rewrite_prefix(catalog_model) -> None:
    Price.objects.create(catalog_model=catalog_model, sku=skus.QUERY_REWRITE_IN, unit_price=Decimal("0.000001"))
    lines = price_chat_completion(
        model_name="m",
        catalog_model_id=catalog_model.id,
        prompt_tokens=7,
        cached_tokens=0,
        completion_tokens=3,
        estimated=False,
        byo=False,
        sku_prefix=skus.QUERY_REWRITE_PREFIX,
    )
    assert [(line.sku, line.amount) for line in lines] == [
        (skus.QUERY_REWRITE_IN, Decimal("0.0000070000")),
        (skus.QUERY_REWRITE_OUT, Decimal("0E-10")),  # no price row: billed at zero, still recorded
    ]


def test_price_versions_by_effective_date_and_cache_invalidation(catalog_model) -> None:
    now = timezone.now()
    assert price_sheet(catalog_model_id=catalog_model.id)[skus.CHAT_IN] == PRICE_IN
    # A future price is in the cache already and applies from its instant on, with no invalidation needed.
    Price.objects.create(
        catalog_model=catalog_model,
        sku=skus.CHAT_IN,
        unit_price=Decimal("0.000001"),
        effective_from=now + timedelta(hours=1),
    )
    assert price_sheet(catalog_model_id=catalog_model.id)[skus.CHAT_IN] == PRICE_IN
    assert price_sheet(catalog_model_id=catalog_model.id, at=now + timedelta(hours=2))[skus.CHAT_IN] == Decimal(
        "0.000001"
    )
    assert price_sheet(catalog_model_id=catalog_model.id, at=now - timedelta(days=60)) == {}
    # Saving a price clears this process's cache at once.
    Price.objects.create(
        catalog_model=catalog_model,
        sku=skus.CHAT_OUT,
        unit_price=Decimal("0.000002"),
        effective_from=now - timedelta(seconds=1),
    )
    assert price_sheet(catalog_model_id=catalog_model.id)[skus.CHAT_OUT] == Decimal("0.000002")


def test_model_prices_win_over_platform_prices(catalog_model, platform_prices) -> None:
    assert price_sheet(catalog_model_id=catalog_model.id)[skus.KNOWLEDGE_SEARCH] == PRICE_SEARCH
    Price.objects.create(
        catalog_model=catalog_model,
        sku=skus.KNOWLEDGE_SEARCH,
        unit_price=Decimal("0.0001"),
        effective_from=timezone.now() - timedelta(days=365),
    )
    assert price_sheet(catalog_model_id=catalog_model.id)[skus.KNOWLEDGE_SEARCH] == Decimal("0.0001")
    assert price_sheet(catalog_model_id=None)[skus.KNOWLEDGE_SEARCH] == PRICE_SEARCH


def test_platform_sku_and_estimate(catalog_model, platform_prices) -> None:
    line = price_platform_sku(sku=skus.KNOWLEDGE_SEARCH, quantity=2, description="Knowledge search")
    assert line == UsageLine(skus.KNOWLEDGE_SEARCH, 2, PRICE_SEARCH, Decimal("0.0010000000"), "Knowledge search")
    estimate = estimate_max_cost(catalog_model_id=catalog_model.id, prompt_tokens=100, max_completion_tokens=1000)
    assert estimate == quantize_money(PRICE_IN * 100 + PRICE_OUT * 1000)
    assert estimate_max_cost(catalog_model_id=None, prompt_tokens=100, max_completion_tokens=1000) == 0


def test_money_refuses_floats() -> None:
    with pytest.raises(TypeError):
        quantize_money(0.1)  # type: ignore[arg-type]


@pytest.mark.django_db(transaction=True)
async def test_async_pricing_never_touches_the_orm_on_the_event_loop(catalog_model, platform_prices) -> None:
    from billing.pricing import aestimate_max_cost, aprice_chat_completion, aprice_platform_sku

    invalidate_price_cache()  # a miss: loaded in an executor thread, not on the loop (that would raise)
    lines = await aprice_chat_completion(
        model_name=catalog_model.name,
        catalog_model_id=catalog_model.id,
        prompt_tokens=1000,
        cached_tokens=800,
        completion_tokens=50,
        estimated=False,
        byo=False,
    )
    assert [(line.sku, line.amount) for line in lines] == [
        (skus.CHAT_IN, quantize_money(PRICE_IN * 200)),
        (skus.CHAT_OUT, quantize_money(PRICE_OUT * 50)),
        (skus.CHAT_IN_CACHED, quantize_money(PRICE_IN_CACHED * 800)),
    ]
    estimate = await aestimate_max_cost(catalog_model_id=catalog_model.id, prompt_tokens=10, max_completion_tokens=10)
    assert estimate == quantize_money(PRICE_IN * 10 + PRICE_OUT * 10)
    search = await aprice_platform_sku(sku=skus.KNOWLEDGE_SEARCH, quantity=1, description="Knowledge search")
    assert search.amount == PRICE_SEARCH
