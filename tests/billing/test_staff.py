from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing import skus
from billing.models import EntryKind, LedgerEntry
from billing.pricing import UsageLine
from billing.selectors import ledger_balance
from billing.services import account_apply, credit_grant, reconcile_balances, settle

pytestmark = pytest.mark.urls("tests.billing.urls")


def _bill(org, request_id: str, amount: str, *, description: str = "Inference for AI model 'm'") -> None:
    price = Decimal(amount)
    settle(
        request_id=request_id,
        organization_id=org.pk,
        lines=[UsageLine(skus.CHAT_OUT, 1, price, price, description)],
        gateway_id=uuid.uuid4(),
        api_key_id=None,
        model="@openai/gpt-4o-mini",
        metadata={"customer": "c-42"},
    )


@pytest.fixture
def ledger(funded_org, outsider_org, billing_staff) -> None:
    _bill(funded_org, "req-a", "0.25")
    _bill(funded_org, "req-b", "0.5", description='=HYPERLINK("http://evil")')
    credit_grant(organization=outsider_org, amount=Decimal("2"), reason="trial", staff_user=billing_staff)
    _bill(outsider_org, "req-z", "1")


def _client(user=None, **kwargs) -> Client:
    client = Client(**kwargs)
    if user is not None:
        client.force_login(user)
    return client


def _pages(org) -> list[str]:
    now = timezone.now()
    entry = LedgerEntry.objects.for_org(org).filter(kind=EntryKind.CHARGE).first()
    return [
        reverse("billing-staff:overview"),
        reverse("billing-staff:overview") + f"?organization={org.slug}&group_by=sku",
        reverse("billing-staff:overview") + "?group_by=gateway",
        reverse("billing-staff:overview") + "?group_by=key",
        reverse("billing-staff:overview") + "?group_by=model",
        reverse("billing-staff:overview") + "?group_by=day",
        reverse("billing-staff:requests"),
        reverse("billing-staff:request", args=["req-a"]),
        reverse("billing-staff:ledger-csv"),
        reverse("billing-staff:organization", args=[org.slug]),
        reverse("billing-staff:statement", args=[org.slug, now.year, now.month]),
        reverse("billing-staff:reverse", args=[entry.pk]),
    ]


def test_billing_staff_see_every_page(ledger, funded_org, billing_staff) -> None:
    client = _client(billing_staff)
    for url in _pages(funded_org):
        response = client.get(url)
        assert response.status_code == 200, url
    overview = client.get(reverse("billing-staff:overview")).content.decode()
    assert "Acme (acme)" in overview and "Globex (globex)" in overview
    assert "1.75" in overview  # 0.25 + 0.5 + 1


def test_everyone_else_gets_404(ledger, funded_org, owner, teammate) -> None:
    from accounts.models import User

    admin_without_permission = User.objects.create_user(
        username="ops", email="ops@aivax.test", password="x", is_staff=True
    )
    for user in (None, owner, teammate, admin_without_permission):
        client = _client(user)
        for url in _pages(funded_org):
            assert client.get(url).status_code == 404, (user, url)
        credit = client.post(reverse("billing-staff:credit", args=[funded_org.slug]), {"amount": "5", "reason": "x"})
        assert credit.status_code == 404
    assert ledger_balance(organization_id=funded_org.pk) == Decimal("9.25")


def test_request_drill_down_shows_lines_and_metadata(ledger, billing_staff) -> None:
    page = _client(billing_staff).get(reverse("billing-staff:request", args=["req-a"])).content.decode()
    assert skus.CHAT_OUT in page and "0.25" in page and "c-42" in page and "Acme" in page
    assert _client(billing_staff).get(reverse("billing-staff:request", args=["nope"])).status_code == 404


def test_csv_export_for_a_range_and_organization(ledger, funded_org, billing_staff) -> None:
    today = timezone.now().date()
    url = reverse("billing-staff:ledger-csv") + f"?organization={funded_org.slug}&start={today}&end={today}"
    response = _client(billing_staff).get(url)
    assert response["Content-Type"].startswith("text/csv")
    assert f"ledger-acme-{today}-{today}.csv" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["kind"], r["request_id"], r["amount"], r["balance_delta"]) for r in rows] == [
        ("credit", rows[0]["request_id"], "10.0000000000", "10.0000000000"),
        ("charge", "req-a", "0.2500000000", "-0.2500000000"),
        ("charge", "req-b", "0.5000000000", "-0.5000000000"),
    ]
    assert {r["organization"] for r in rows} == {"acme"}
    assert rows[0]["reason"] == "test funds" and rows[0]["created_by"] == "ledger@aivax.test"
    assert rows[2]["description"].startswith("'=HYPERLINK")  # not a formula in a spreadsheet
    assert sum(Decimal(r["balance_delta"]) for r in rows) == ledger_balance(organization_id=funded_org.pk)

    everyone = _client(billing_staff).get(reverse("billing-staff:ledger-csv"))
    all_rows = list(csv.DictReader(io.StringIO(b"".join(everyone.streaming_content).decode())))
    assert {r["organization"] for r in all_rows} == {"acme", "globex"}
    yesterday = today - timedelta(days=1)
    empty = _client(billing_staff).get(reverse("billing-staff:ledger-csv") + f"?start={yesterday}&end={yesterday}")
    assert b"".join(empty.streaming_content).decode().count("\n") == 1  # the header only


def test_credit_grant_form_needs_csrf_and_a_reason(funded_org, billing_staff) -> None:
    client = _client(billing_staff, enforce_csrf_checks=True)
    url = reverse("billing-staff:credit", args=[funded_org.slug])
    assert client.post(url, {"amount": "5", "reason": "goodwill"}).status_code == 403  # no CSRF token
    page = client.get(reverse("billing-staff:organization", args=[funded_org.slug]))
    token = page.cookies["csrftoken"].value
    missing_reason = client.post(url, {"amount": "5", "reason": "", "csrfmiddlewaretoken": token})
    assert missing_reason.status_code == 200 and b"This field is required" in missing_reason.content
    granted = client.post(url, {"amount": "5.5", "reason": "goodwill", "csrfmiddlewaretoken": token})
    assert granted.status_code == 302
    entry = LedgerEntry.objects.for_org(funded_org).filter(kind=EntryKind.CREDIT).latest("id")
    assert (entry.amount, entry.reason, entry.created_by) == (Decimal("5.5"), "goodwill", billing_staff)
    assert ledger_balance(organization_id=funded_org.pk) == Decimal("15.5")


def test_reversal_form(ledger, funded_org, billing_staff) -> None:
    client = _client(billing_staff)
    entry = LedgerEntry.objects.for_org(funded_org).get(request_id="req-a")
    url = reverse("billing-staff:reverse", args=[entry.pk])
    assert b"This field is required" in client.post(url, {"reason": ""}).content
    assert client.post(url, {"reason": "duplicate request"}).status_code == 302
    again = client.post(url, {"reason": "again"})
    assert b"already been reversed" in again.content
    assert ledger_balance(organization_id=funded_org.pk) == Decimal("9.5")
    assert all(check.ok for check in reconcile_balances())


def test_monthly_statement_reconciles_with_the_ledger(ledger, funded_org, billing_staff) -> None:
    # A row from an earlier month (inserted as it would have been then) becomes this month's opening balance.
    LedgerEntry.unscoped.create(
        organization=funded_org,
        kind=EntryKind.CREDIT,
        request_id="credit_old",
        sku=skus.CREDIT,
        quantity=1,
        unit_price=Decimal("3"),
        amount=Decimal("3"),
        balance_delta=Decimal("3"),
        reason="earlier",
        created_at=datetime(2020, 5, 17, tzinfo=UTC),
    )
    account_apply(organization_id=funded_org.pk, balance_delta=Decimal("3"))
    now = timezone.now()
    from billing.statements import statement_for

    sheet = statement_for(organization=funded_org, year=now.year, month=now.month)
    assert sheet.opening_balance == Decimal("3")
    assert (sheet.credits, sheet.charges, sheet.reversals) == (Decimal("10"), Decimal("0.75"), 0)
    assert sheet.closing_balance == ledger_balance(organization_id=funded_org.pk) == Decimal("12.25")
    old = statement_for(organization=funded_org, year=2020, month=5)
    assert (old.opening_balance, old.closing_balance) == (0, Decimal("3"))

    page = _client(billing_staff).get(reverse("billing-staff:statement", args=[funded_org.slug, now.year, now.month]))
    assert b"Reconciles with the ledger" in page.content and b'id="closing">12.25<' in page.content
    org_page = _client(billing_staff).get(reverse("billing-staff:organization", args=[funded_org.slug]))
    assert b"May 2020" in org_page.content and b"no drift" in org_page.content
