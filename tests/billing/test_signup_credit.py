from __future__ import annotations

from decimal import Decimal

from accounts.services import organization_create, user_create
from billing.models import LedgerEntry
from billing.selectors import account_get


def test_signup_credit_is_a_ledger_credit(db, settings) -> None:
    settings.SIGNUP_CREDIT = "2.50"
    org = organization_create(name="Newco", owner=user_create(email="new@co.test", password=None))
    assert account_get(organization_id=org.pk).balance == Decimal("2.50")
    entry = LedgerEntry.unscoped.get(organization=org)
    assert entry.reason == "sign-up credit" and entry.amount == Decimal("2.50")


def test_no_signup_credit_by_default(db, settings) -> None:
    settings.SIGNUP_CREDIT = "0"
    org = organization_create(name="Plain", owner=user_create(email="plain@co.test", password=None))
    assert account_get(organization_id=org.pk).balance == 0
    assert not LedgerEntry.unscoped.filter(organization=org).exists()
