"""Holds (billing.services.holds): as much as the balance pays between a minimum and a wanted amount, grown round
by round, refused with what is needed and available; and settlements that commit synchronously."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection, transaction

from aivax.errors import Conflict, InsufficientBalance
from billing.models import BilledRequest, BillingAccount, Reservation
from billing.services import credit_grant, hold, release, settle
from billing.services.ledger import settlement_rows
from billing.sql import settle_statement

pytestmark = pytest.mark.django_db


@pytest.fixture
def cent(org):
    balance = BillingAccount.unscoped.get(organization=org).balance
    credit_grant(organization=org, amount=Decimal("0.01") - balance, reason="test", staff_user=None)
    return org


def _account(org) -> tuple[Decimal, Decimal]:
    account = BillingAccount.unscoped.get(organization=org)
    return account.balance, account.reserved


def test_a_hold_takes_what_the_balance_pays_up_to_the_wanted_amount(cent) -> None:
    held = hold(organization_id=cent.pk, request_id="r1", want=Decimal("5"), minimum=Decimal("0.001"), new=True)
    assert held == Decimal("0.01")
    assert _account(cent) == (Decimal("0.01"), Decimal("0.01"))
    assert Reservation.unscoped.get(request_id="r1").amount == Decimal("0.01")


def test_a_hold_grows_round_by_round_and_settles_whole(cent) -> None:
    hold(organization_id=cent.pk, request_id="r1", want=Decimal("0.004"), minimum=Decimal("0.004"), new=True)
    held = hold(organization_id=cent.pk, request_id="r1", want=Decimal("0.009"), minimum=Decimal("0.001"), new=False)
    assert held == Decimal("0.006")
    assert Reservation.unscoped.get(request_id="r1").amount == Decimal("0.01")
    with pytest.raises(InsufficientBalance) as refused:
        hold(organization_id=cent.pk, request_id="r1", want=Decimal("0.001"), minimum=Decimal("0.001"), new=False)
    assert refused.value.needed == Decimal("0.001") and refused.value.available == 0  # type: ignore[attr-defined]
    release(request_id="r1")
    assert _account(cent) == (Decimal("0.01"), Decimal(0))


def test_a_refused_hold_says_what_is_needed_and_available(cent) -> None:
    with pytest.raises(InsufficientBalance) as refused:
        hold(organization_id=cent.pk, request_id="r1", want=Decimal("1"), minimum=Decimal("0.02"), new=True)
    assert "0.02 USD" in refused.value.message and "0.01 USD is available" in refused.value.message
    assert not Reservation.unscoped.filter(request_id="r1").exists()
    assert _account(cent) == (Decimal("0.01"), Decimal(0))


def test_at_the_floor_even_a_zero_hold_is_refused(org) -> None:
    balance = BillingAccount.unscoped.get(organization=org).balance
    if balance:
        credit_grant(organization=org, amount=-balance, reason="empty", staff_user=None)
    with pytest.raises(InsufficientBalance):
        hold(organization_id=org.pk, request_id="r1", want=Decimal(0), minimum=Decimal(0), new=True)


def test_a_request_id_is_held_once(cent, outsider_org) -> None:
    hold(organization_id=cent.pk, request_id="r1", want=Decimal("0.001"), minimum=Decimal(0), new=True)
    with pytest.raises(Conflict):
        hold(organization_id=cent.pk, request_id="r1", want=Decimal("0.001"), minimum=Decimal(0), new=True)
    with pytest.raises(Conflict):
        hold(organization_id=outsider_org.pk, request_id="r1", want=Decimal(0), minimum=Decimal(0), new=True)


def test_a_settlement_commits_synchronously_even_when_the_server_does_not(cent) -> None:
    _lines, entries, request = settlement_rows(
        request_id="r1", organization_id=cent.pk, lines=[], gateway_id=None, api_key_id=None, model="", metadata=None
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute(*settle_statement(entries=entries, request=request))
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
    assert BilledRequest.unscoped.filter(request_id="r1").exists()


def test_settle_is_still_exactly_once_after_a_grown_hold(cent) -> None:
    from billing.pricing import UsageLine

    hold(organization_id=cent.pk, request_id="r1", want=Decimal("0.002"), minimum=Decimal(0), new=True)
    hold(organization_id=cent.pk, request_id="r1", want=Decimal("0.003"), minimum=Decimal(0), new=False)
    line = UsageLine("inference.chat_completions.out", 100, Decimal("0.00001"), Decimal("0.001"), "x")
    for _ in range(2):
        settle(
            request_id="r1", organization_id=cent.pk, lines=[line], gateway_id=None, api_key_id=None, model="m",
            metadata=None,
        )  # fmt: skip
    assert _account(cent) == (Decimal("0.009"), Decimal(0))


@pytest.mark.django_db(transaction=True)
def test_100_concurrent_budgeted_holds_never_pass_the_budget(org, api_key) -> None:
    """A key budget under 100 requests, 40 at a time (threads, each its own connection: the embedded server's
    connection limit): what is held and then spent never adds up to more than the budget, and the balance is
    untouched by the refused ones."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import close_old_connections

    from accounts.models import ApiKey
    from billing.pricing import UsageLine

    credit_grant(organization=org, amount=Decimal("10"), reason="test", staff_user=None)
    budget = Decimal("0.05")
    ApiKey.unscoped.filter(pk=api_key.key.pk).update(monthly_budget=budget)

    def one(i: int) -> str:
        try:
            held = hold(
                organization_id=org.pk, request_id=f"b{i}", want=Decimal("0.003"), minimum=Decimal("0.001"),
                new=True, api_key_id=api_key.key.pk,
            )  # fmt: skip
            line = UsageLine("inference.chat_completions.out", 1, held, held, "all of it")
            settle(
                request_id=f"b{i}", organization_id=org.pk, lines=[line], gateway_id=None,
                api_key_id=api_key.key.pk, model="m", metadata=None,
            )  # fmt: skip
            return "ok"
        except InsufficientBalance as error:
            return error.code or ""
        finally:
            close_old_connections()

    with ThreadPoolExecutor(max_workers=40) as pool:
        outcomes = list(pool.map(one, range(100)))
    spent = sum((r.total for r in BilledRequest.unscoped.filter(api_key_id=api_key.key.pk)), Decimal(0))
    assert spent <= budget and spent >= budget - Decimal("0.001")  # filled up to less than one minimum
    assert set(outcomes) == {"ok", "budget_exceeded"}
    assert _account(org) == (Decimal("10") - spent, Decimal(0))
