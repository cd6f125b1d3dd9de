"""gateways.metering without a database: usage shapes, merged lines, the prompt margin of a hold."""

from __future__ import annotations

from decimal import Decimal

from billing.pricing import UsageLine, worst_unit_prices
from gateways.metering import Usage, held_prompt_tokens, merge_lines


def test_usage_reads_cached_and_reasoning_details() -> None:
    usage = Usage.from_upstream(
        {
            "prompt_tokens": 100,
            "completion_tokens": 50,
            "prompt_tokens_details": {"cached_tokens": 40},
            "completion_tokens_details": {"reasoning_tokens": 30},
        }
    )
    assert usage == Usage(prompt_tokens=100, completion_tokens=50, cached_tokens=40, reasoning_tokens=30)
    assert usage.as_openai()["total_tokens"] == 150
    assert usage.as_openai()["completion_tokens_details"] == {"reasoning_tokens": 30}


def test_usage_without_counts_or_with_null_details() -> None:
    assert Usage.from_upstream(None) is None and Usage.from_upstream({"total_tokens": 3}) is None
    usage = Usage.from_upstream({"prompt_tokens": 1, "completion_tokens": 2, "prompt_tokens_details": None})
    assert usage is not None and (usage.cached_tokens, usage.reasoning_tokens) == (0, 0)


def test_lines_of_several_rounds_merge_per_sku_exactly() -> None:
    a = UsageLine("x.out", 10, Decimal("0.1"), Decimal("1.0"), "round 1")
    b = UsageLine("x.out", 30, Decimal("0.2"), Decimal("6.0"), "round 2", estimated=True)
    (merged,) = merge_lines([a, b])
    assert (merged.quantity, merged.amount, merged.unit_price, merged.estimated) == (
        40,
        Decimal("7.0"),
        Decimal("0.175"),
        True,
    )


def test_a_hold_counts_the_prompt_with_a_margin() -> None:
    assert held_prompt_tokens(0) == 16 and held_prompt_tokens(100) == 126


def test_the_worst_unit_prices_are_the_dearest_lines() -> None:
    sheet = {"p.in": Decimal(1), "p.in.cached": Decimal("0.1"), "p.out": Decimal(2), "p.out.reasoning": Decimal(3)}
    assert worst_unit_prices(sheet, "p") == (Decimal(1), Decimal(3))
    assert worst_unit_prices({}, "p") == (Decimal(0), Decimal(0))
