"""Money is `Decimal` with ten places (1e-10 USD), rounded in one place: `quantize_money`."""

from __future__ import annotations

import uuid
from decimal import ROUND_HALF_EVEN, Decimal

import orjson

MONEY_MAX_DIGITS = 20
MONEY_PLACES = 10
_QUANTUM = Decimal(1).scaleb(-MONEY_PLACES)
ZERO = Decimal("0").quantize(_QUANTUM)


def quantize_money(value: Decimal | int | str) -> Decimal:
    """The one rounding helper. Never pass a float: its binary error would leak into the ledger."""
    if isinstance(value, float):
        raise TypeError("money must not be a float; use Decimal or str")
    return Decimal(value).quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


def money_json(value: Decimal) -> orjson.Fragment:
    """Money on the wire: a JSON number written with exactly MONEY_PLACES decimals from the Decimal itself (no
    float on the way), e.g. `0.0000025000`. Every API that returns an amount encodes it here (README: "Money")."""
    return orjson.Fragment(format(quantize_money(value), "f"))


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return money_json(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(value: object) -> bytes:
    """JSON with money as exact fixed-decimal numbers (see `money_json`)."""
    return orjson.dumps(value, default=_json_default)
