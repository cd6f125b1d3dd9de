"""Billing writes. Import from here: `from billing.services import reserve, settle, ...`."""

from billing.services.accounts import account_apply, account_ensure, account_set_credit_limit
from billing.services.aio import acharge, aensure_can_spend, arelease, areserve, asettle, asettle_or_defer
from billing.services.credits import credit_grant, entry_reverse
from billing.services.holds import ahold, hold, insufficient
from billing.services.ledger import charge, ensure_can_spend, release, reservations_release_stale, reserve, settle
from billing.services.reconcile import BalanceCheck, reconcile_balances

__all__ = [
    "BalanceCheck",
    "account_apply",
    "account_ensure",
    "account_set_credit_limit",
    "acharge",
    "aensure_can_spend",
    "ahold",
    "arelease",
    "areserve",
    "asettle",
    "asettle_or_defer",
    "charge",
    "credit_grant",
    "ensure_can_spend",
    "entry_reverse",
    "hold",
    "insufficient",
    "reconcile_balances",
    "release",
    "reservations_release_stale",
    "reserve",
    "settle",
]
