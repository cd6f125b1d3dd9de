from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import User
from billing.models import BillingAccount, LedgerEntry, Reservation, ReservationStatus
from billing.selectors import ledger_balance
from billing.services import reserve


@pytest.fixture
def superuser(db: None) -> User:
    return User.objects.create_superuser(username="root", email="root@aivax.test", password="pw-root-123!")


def test_ledger_is_read_only_in_the_admin(funded_org, superuser) -> None:
    client = Client()
    client.force_login(superuser)
    entry = LedgerEntry.objects.for_org(funded_org).get()
    assert client.get("/admin/billing/ledgerentry/").status_code == 200
    page = client.get(f"/admin/billing/ledgerentry/{entry.pk}/change/")
    assert page.status_code == 200 and b'name="amount"' not in page.content  # view only
    assert client.post(f"/admin/billing/ledgerentry/{entry.pk}/change/", {"amount": "0"}).status_code == 403
    assert client.get(f"/admin/billing/ledgerentry/{entry.pk}/delete/").status_code == 403
    assert client.get("/admin/billing/ledgerentry/add/").status_code == 403
    for name in ("billedrequest", "reservation", "price", "billingaccount"):
        assert client.get(f"/admin/billing/{name}/").status_code == 200


def test_admin_changes_only_the_credit_limit(funded_org, superuser) -> None:
    client = Client()
    client.force_login(superuser)
    account = BillingAccount.objects.for_org(funded_org).get()
    reserve(organization_id=funded_org.pk, request_id="live", amount=Decimal("1"))  # changes after the form loaded
    response = client.post(f"/admin/billing/billingaccount/{account.pk}/change/", {"credit_limit": "7.5"})
    assert response.status_code == 302, response.content
    account.refresh_from_db()
    assert (account.balance, account.reserved, account.credit_limit) == (Decimal("10"), Decimal("1"), Decimal("7.5"))
    with pytest.raises(RuntimeError):
        account.save()


def test_grant_credit_command(org, billing_staff) -> None:
    out = io.StringIO()
    call_command("grant_credit", org.slug, "12.34", reason="invoice 2025-001", stdout=out)
    call_command("grant_credit", org.slug, "1", reason="by someone", by=billing_staff.email, stdout=out)
    assert "Granted 12.3400000000 USD to acme" in out.getvalue()
    entries = list(LedgerEntry.objects.for_org(org).order_by("id"))
    assert [(e.amount, e.reason, e.created_by) for e in entries] == [
        (Decimal("12.34"), "invoice 2025-001", None),
        (Decimal("1"), "by someone", billing_staff),
    ]
    assert entries[0].description == "Credit granted by the grant_credit command"
    assert ledger_balance(organization_id=org.pk) == Decimal("13.34")
    for args, kwargs in (
        (("nope", "1"), {"reason": "x"}),
        ((org.slug, "ten"), {"reason": "x"}),
        ((org.slug, "-1"), {"reason": "x"}),
        ((org.slug, "1"), {"reason": " "}),
        ((org.slug, "1"), {"reason": "x", "by": "owner@acme.test"}),  # not billing staff
    ):
        with pytest.raises(CommandError):
            call_command("grant_credit", *args, **kwargs)


def test_reconcile_command_reports_no_drift(funded_org, outsider_org) -> None:
    out = io.StringIO()
    call_command("reconcile", stdout=out)
    assert "acme: balance 10.0000000000 ledger 10.0000000000 drift 0.0000000000" in out.getvalue()
    assert "0 with drift" in out.getvalue()


def test_sweeper_command_and_task(funded_org, settings) -> None:
    settings.BILLING_RESERVATION_TTL_SECONDS = 0
    reserve(organization_id=funded_org.pk, request_id="crashed", amount=Decimal("2"))
    out = io.StringIO()
    call_command("release_stale_reservations", stdout=out)
    assert "Released 1 stale reservation(s)." in out.getvalue()
    assert Reservation.objects.for_org(funded_org).get().status == ReservationStatus.RELEASED
    from billing.tasks import release_stale_reservations

    assert release_stale_reservations() == 0
    assert BillingAccount.objects.for_org(funded_org).get().reserved == 0
