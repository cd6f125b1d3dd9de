"""Corrections by billing staff: credit grants and reversals, each a new ledger row with who and why."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization, User
from accounts.selectors import user_is_billing_staff
from billing import skus
from billing.models import EntryKind, LedgerEntry
from billing.money import quantize_money
from billing.services.accounts import account_apply
from billing.sql import durable, insert_rows


def _audit_check(*, staff_user: User | None, reason: str) -> str:
    # `staff_user=None` only from the operator's management command (it records that in the description).
    if staff_user is not None and not user_is_billing_staff(staff_user):
        raise PermissionDenied("Only billing staff may grant credit or reverse ledger entries.")
    reason = reason.strip()
    if not reason:
        raise ValidationError("A reason is required.")
    return reason


def credit_grant(*, organization: Organization, amount: Decimal, reason: str, staff_user: User | None) -> LedgerEntry:
    reason = _audit_check(staff_user=staff_user, reason=reason)
    amount = quantize_money(amount)
    if amount <= 0:
        raise ValidationError("A credit must be a positive amount.")
    by = f"by {staff_user}" if staff_user is not None else "by the grant_credit command"
    entry = LedgerEntry(
        organization=organization,
        kind=EntryKind.CREDIT,
        request_id=f"credit_{uuid.uuid4().hex}",
        sku=skus.CREDIT,
        quantity=1,
        unit_price=amount,
        amount=amount,
        balance_delta=amount,
        description=f"Credit granted {by}",
        reason=reason,
        created_by=staff_user,
    )
    with transaction.atomic():
        durable()
        entry.save()
        account_apply(organization_id=organization.pk, balance_delta=amount)
    return entry


def entry_reverse(*, entry: LedgerEntry, reason: str, staff_user: User | None) -> LedgerEntry:
    """Cancel `entry` with a new row of the opposite sign. An entry is reversed at most once (a unique constraint)."""
    reason = _audit_check(staff_user=staff_user, reason=reason)
    if entry.kind == EntryKind.REVERSAL:
        raise ValidationError("A reversal cannot itself be reversed; grant a credit or charge instead.")
    reversal = LedgerEntry(
        organization_id=entry.organization_id,
        kind=EntryKind.REVERSAL,
        request_id=entry.request_id,
        position=entry.position,
        sku=entry.sku,
        quantity=entry.quantity,
        unit_price=entry.unit_price,
        amount=entry.amount,
        balance_delta=-entry.balance_delta,
        description=f"Reversal of entry {entry.pk}: {entry.description}"[:300],
        estimated=entry.estimated,
        gateway_id=entry.gateway_id,
        api_key_id=entry.api_key_id,
        model=entry.model,
        reason=reason,
        created_by=staff_user,
        reverses=entry,
        created_at=timezone.now(),
    )
    with transaction.atomic():
        durable()
        inserted = insert_rows([reversal], returning=("id",))
        if not inserted:
            raise ValidationError("This entry has already been reversed.")
        reversal.pk = inserted[0][0]
        reversal._state.adding = False
        account_apply(organization_id=entry.organization_id, balance_delta=reversal.balance_delta)
    return reversal
