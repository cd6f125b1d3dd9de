"""CSV cells that spreadsheets will not run: the one formula-escaping rule for every CSV export (the staff ledger
export, the tenant usage export).

Spreadsheets run a cell that starts with =, +, -, @ (or a tab or carriage return before one of them) as a
formula: text a tenant controls (a model name, a description) could then fetch URLs or run commands on the
reader's machine. Such text is prefixed with a quote, which spreadsheets show as text. Numbers are left alone
(a negative amount is a number, not a formula).
"""

from __future__ import annotations

from typing import Any

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in _FORMULA_STARTS:
        return "'" + value
    return value


def safe_row(values: list[Any]) -> list[Any]:
    return [safe_cell(value) for value in values]
