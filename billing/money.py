"""Money is `Decimal` with ten places (1e-10 USD), rounded in one place: `quantize_money`."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

MONEY_MAX_DIGITS = 20
MONEY_PLACES = 10
_QUANTUM = Decimal(1).scaleb(-MONEY_PLACES)
ZERO = Decimal("0").quantize(_QUANTUM)


def quantize_money(value: Decimal | int | str) -> Decimal:
    """The one rounding helper. Never pass a float: its binary error would leak into the ledger."""
    if isinstance(value, float):
        raise TypeError("money must not be a float; use Decimal or str")
    return Decimal(value).quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
