from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from aivax.errors import InsufficientBalance
from billing import skus
from billing.models import BilledRequest, BillingAccount, LedgerEntry, Reservation, ReservationStatus
from billing.pricing import UsageLine, price_chat_completion
from billing.selectors import account_get, billed_lines, ledger_balance
from billing.services import (
    account_set_credit_limit,
    charge,
    credit_grant,
    entry_reverse,
    reconcile_balances,
    release,
    reservations_release_stale,
    reserve,
    settle,
)


def _account(org) -> BillingAccount:
    return BillingAccount.objects.for_org(org).get()


def _lines(catalog_model, prompt=1000, cached=200, completion=100) -> list[UsageLine]:
    return price_chat_completion(
        model_name=catalog_model.name,
        catalog_model_id=catalog_model.id,
        prompt_tokens=prompt,
        cached_tokens=cached,
        completion_tokens=completion,
        estimated=False,
        byo=False,
    )


def _settle(org, request_id, lines, **extra):
    return settle(
        request_id=request_id,
        organization_id=org.pk,
        lines=lines,
        gateway_id=extra.get("gateway_id"),
        api_key_id=extra.get("api_key_id"),
        model="@openai/gpt-4o-mini",
        metadata=extra.get("metadata"),
    )


def _assert_reconciled() -> None:
    assert all(check.ok for check in reconcile_balances()), reconcile_balances()


def test_an_account_comes_with_every_organization(org) -> None:
    account = _account(org)
    assert (account.balance, account.reserved, account.credit_limit) == (0, 0, 0)


def test_reserve_settle_bills_exactly_the_lines(funded_org, catalog_model) -> None:
    org = funded_org
    reservation = reserve(organization_id=org.pk, request_id="req-1", amount=Decimal("0.01"))
    assert _account(org).reserved == Decimal("0.01")
    lines = _lines(catalog_model)
    gateway_id, key_id = uuid.uuid4(), uuid.uuid4()
    recorded = _settle(org, "req-1", lines, gateway_id=gateway_id, api_key_id=key_id, metadata={"user": "u1"})
    assert recorded == lines
    total = sum(line.amount for line in lines)
    account = _account(org)
    assert account.balance == Decimal("10") - total
    assert account.reserved == 0
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.SETTLED
    rows = LedgerEntry.objects.for_org(org).filter(request_id="req-1").order_by("position")
    assert [(r.sku, r.quantity, r.unit_price, r.amount) for r in rows] == [
        (line.sku, line.quantity, line.unit_price, line.amount) for line in lines
    ]
    assert {r.gateway_id for r in rows} == {gateway_id}
    billed = BilledRequest.objects.for_org(org).get(request_id="req-1")
    assert (billed.total, billed.metadata, billed.api_key_id) == (total, {"user": "u1"}, key_id)
    _assert_reconciled()


def test_a_retried_settle_writes_nothing_and_returns_what_was_recorded(funded_org, catalog_model) -> None:
    org = funded_org
    reserve(organization_id=org.pk, request_id="req-2", amount=Decimal("0.01"))
    first = _settle(org, "req-2", _lines(catalog_model))
    balance = _account(org).balance
    # A retry with different (say, re-estimated) counts changes nothing and answers with the first lines.
    again = _settle(org, "req-2", _lines(catalog_model, prompt=5000, completion=900))
    assert again == first == billed_lines(organization_id=org.pk, request_id="req-2")
    assert _account(org).balance == balance
    assert LedgerEntry.objects.for_org(org).filter(request_id="req-2").count() == len(first)
    assert BilledRequest.objects.for_org(org).get(request_id="req-2").total == sum(x.amount for x in first)
    _assert_reconciled()


def test_later_lines_for_the_same_request_are_added_once(funded_org, catalog_model, platform_prices) -> None:
    org = funded_org
    search = UsageLine(skus.KNOWLEDGE_SEARCH, 1, Decimal("0.0005"), Decimal("0.0005"), "Knowledge search")
    charge(organization_id=org.pk, request_id="req-3", lines=[search])
    recorded = _settle(org, "req-3", [search, *_lines(catalog_model)])
    assert [line.sku for line in recorded] == [skus.KNOWLEDGE_SEARCH, skus.CHAT_IN, skus.CHAT_OUT, skus.CHAT_IN_CACHED]
    assert BilledRequest.objects.for_org(org).get(request_id="req-3").total == sum(x.amount for x in recorded)
    _assert_reconciled()


def test_release_bills_nothing(funded_org) -> None:
    org = funded_org
    reserve(organization_id=org.pk, request_id="req-4", amount=Decimal("1"))
    release(request_id="req-4")
    release(request_id="req-4")  # idempotent
    account = _account(org)
    assert (account.balance, account.reserved) == (Decimal("10"), 0)
    assert not LedgerEntry.objects.for_org(org).filter(request_id="req-4").exists()
    assert Reservation.objects.for_org(org).get(request_id="req-4").status == ReservationStatus.RELEASED
    _assert_reconciled()


def test_reserve_refuses_beyond_the_floor_with_402(funded_org) -> None:
    org = funded_org
    reserve(organization_id=org.pk, request_id="a", amount=Decimal("6"))
    with pytest.raises(InsufficientBalance) as refused:
        reserve(organization_id=org.pk, request_id="b", amount=Decimal("4.0000000001"))
    assert refused.value.status == 402
    assert refused.value.body()["error"]["code"] == "insufficient_balance"
    assert not Reservation.objects.for_org(org).filter(request_id="b").exists()
    reserve(organization_id=org.pk, request_id="c", amount=Decimal("4"))  # exactly to the floor
    assert _account(org).reserved == Decimal("10")
    # A zero (bring-your-own) reservation is refused at the floor too: it would still pay searches.
    with pytest.raises(InsufficientBalance):
        reserve(organization_id=org.pk, request_id="d", amount=Decimal("0"))


def test_a_retried_reserve_holds_once(funded_org) -> None:
    org = funded_org
    first = reserve(organization_id=org.pk, request_id="r", amount=Decimal("2"))
    second = reserve(organization_id=org.pk, request_id="r", amount=Decimal("2"))
    assert first.pk == second.pk
    assert _account(org).reserved == Decimal("2")


def test_credit_limit_lets_the_balance_go_negative(org, billing_staff) -> None:
    with pytest.raises(InsufficientBalance):
        reserve(organization_id=org.pk, request_id="x", amount=Decimal("0.01"))
    account_set_credit_limit(organization_id=org.pk, credit_limit=Decimal("5"), staff_user=billing_staff)
    reserve(organization_id=org.pk, request_id="x", amount=Decimal("5"))
    line = UsageLine(skus.CHAT_OUT, 1, Decimal("5.5"), Decimal("5.5"), "over the estimate")
    _settle(org, "x", [line])  # settlement may pass the floor: the estimate was a little low
    assert _account(org).balance == Decimal("-5.5")
    with pytest.raises(InsufficientBalance):
        charge(organization_id=org.pk, request_id="y", lines=[line])
    _assert_reconciled()


def test_charge_refuses_at_the_floor_but_answers_a_retry(org, billing_staff) -> None:
    credit_grant(organization=org, amount=Decimal("1"), reason="trial", staff_user=billing_staff)
    line = UsageLine(skus.KNOWLEDGE_EMBEDDING, 50, Decimal("0.02"), Decimal("1"), "Embedding")
    assert charge(organization_id=org.pk, request_id="ingest-1", lines=[line]) == [line]
    assert _account(org).balance == 0
    assert charge(organization_id=org.pk, request_id="ingest-1", lines=[line]) == [line]
    with pytest.raises(InsufficientBalance):
        charge(organization_id=org.pk, request_id="ingest-2", lines=[line])


def test_an_organization_without_account_is_created_lazily(org, billing_staff) -> None:
    BillingAccount.objects.for_org(org).delete()
    assert account_get(organization_id=org.pk).balance == 0
    with pytest.raises(InsufficientBalance):
        reserve(organization_id=org.pk, request_id="z", amount=Decimal("1"))
    credit_grant(organization=org, amount=Decimal("2"), reason="welcome", staff_user=billing_staff)
    assert _account(org).balance == Decimal("2")
    reserve(organization_id=org.pk, request_id="z", amount=Decimal("1"))


def test_reversal_is_a_new_row_and_happens_once(funded_org, catalog_model, billing_staff) -> None:
    org = funded_org
    _settle(org, "req-5", _lines(catalog_model))
    entry = LedgerEntry.objects.for_org(org).filter(request_id="req-5").first()
    before = _account(org).balance
    reversal = entry_reverse(entry=entry, reason="upstream outage", staff_user=billing_staff)
    assert reversal.balance_delta == entry.amount
    assert (reversal.reason, reversal.created_by, reversal.reverses_id) == ("upstream outage", billing_staff, entry.pk)
    assert _account(org).balance == before + entry.amount
    with pytest.raises(ValidationError):
        entry_reverse(entry=entry, reason="again", staff_user=billing_staff)
    with pytest.raises(ValidationError):
        entry_reverse(entry=reversal, reason="undo", staff_user=billing_staff)
    with pytest.raises(ValidationError):
        credit_grant(organization=org, amount=Decimal("1"), reason="  ", staff_user=billing_staff)
    _assert_reconciled()


def test_staff_actions_need_the_billing_permission(funded_org, owner) -> None:
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        credit_grant(organization=funded_org, amount=Decimal("100"), reason="me", staff_user=owner)
    entry = LedgerEntry.objects.for_org(funded_org).get()
    with pytest.raises(PermissionDenied):
        entry_reverse(entry=entry, reason="me", staff_user=owner)


def test_the_ledger_refuses_updates_and_deletes(funded_org) -> None:
    entry = LedgerEntry.objects.for_org(funded_org).get()
    with pytest.raises(RuntimeError):
        entry.save()
    with pytest.raises(RuntimeError):
        entry.delete()
    for sql in (
        "UPDATE billing_ledgerentry SET amount = 0, balance_delta = 0 WHERE id = %s",
        "DELETE FROM billing_ledgerentry WHERE id = %s",
    ):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql, [entry.pk])
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.unscoped.filter(pk=entry.pk).update(amount=1)
    assert ledger_balance(organization_id=funded_org.pk) == Decimal("10")


def test_reconciliation_reports_drift_after_tampering(funded_org, outsider_org) -> None:
    entry = LedgerEntry.objects.for_org(funded_org).get()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL aivax.ledger_maintenance = 'on'")
        cur.execute("UPDATE billing_ledgerentry SET amount = 9, balance_delta = 9 WHERE id = %s", [entry.pk])
    checks = {c.organization_id: c for c in reconcile_balances()}
    assert checks[funded_org.pk].drift == Decimal("1")
    assert checks[outsider_org.pk].ok

    from django.core.management import call_command

    with pytest.raises(SystemExit) as exited:
        call_command("reconcile")
    assert exited.value.code == 1


def test_stale_reservations_are_swept(funded_org, catalog_model) -> None:
    org = funded_org
    reserve(organization_id=org.pk, request_id="old", amount=Decimal("3"))
    reserve(organization_id=org.pk, request_id="new", amount=Decimal("2"))
    Reservation.objects.for_org(org).filter(request_id="old").update(
        created_at=Reservation.objects.for_org(org).get(request_id="old").created_at - timedelta(hours=2)
    )
    assert reservations_release_stale(older_than=timedelta(hours=1)) == 1
    assert _account(org).reserved == Decimal("2")
    # A request that outlived its sweep is still billed, and the estimate is not released twice.
    _settle(org, "old", _lines(catalog_model))
    assert _account(org).reserved == Decimal("2")
    _assert_reconciled()
