from __future__ import annotations

from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def money(value: Decimal | None) -> str:
    """Exact, fixed-point, trailing zeros trimmed down to cents: 10.00, 9.975, 0.0000207."""
    if value is None:
        return ""
    text = format(Decimal(value), "f")
    if "." not in text:
        return f"{text}.00"
    whole, fraction = text.split(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"{whole}.{fraction}"
