"""Prepaid accounts: created with the organization (or lazily), changed only by F() updates."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F

from accounts.models import User
from accounts.selectors import user_is_billing_staff
from billing.models import BillingAccount
from billing.money import ZERO, quantize_money


def account_ensure(*, organization_id: int) -> None:
    """Create the organization's account if it has none (`INSERT ... ON CONFLICT DO NOTHING`: race-free)."""
    BillingAccount.unscoped.bulk_create([BillingAccount(organization_id=organization_id)], ignore_conflicts=True)


def account_apply(*, organization_id: int, balance_delta: Decimal = ZERO, reserved_delta: Decimal = ZERO) -> None:
    """Move the balance and the reserved amount by deltas, in one UPDATE (no read-modify-save)."""
    if not balance_delta and not reserved_delta:
        return
    changes = {"balance": F("balance") + balance_delta, "reserved": F("reserved") + reserved_delta}
    if BillingAccount.unscoped.filter(organization_id=organization_id).update(**changes) == 0:
        account_ensure(organization_id=organization_id)
        BillingAccount.unscoped.filter(organization_id=organization_id).update(**changes)


def account_set_credit_limit(*, organization_id: int, credit_limit: Decimal, staff_user: User) -> None:
    if not user_is_billing_staff(staff_user):
        raise PermissionDenied("Only billing staff may change a credit limit.")
    credit_limit = quantize_money(credit_limit)
    if credit_limit < 0:
        raise ValidationError("A credit limit cannot be negative.")
    account_ensure(organization_id=organization_id)
    BillingAccount.unscoped.filter(organization_id=organization_id).update(credit_limit=credit_limit)
