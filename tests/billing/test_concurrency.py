"""Many threads, one organization with a small balance, a real PostgreSQL: no overspend, exact arithmetic."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection

from aivax.errors import InsufficientBalance
from billing import skus
from billing.models import BillingAccount, LedgerEntry, Reservation, ReservationStatus
from billing.pricing import UsageLine
from billing.services import (
    account_set_credit_limit,
    arelease,
    areserve,
    asettle,
    credit_grant,
    reconcile_balances,
    release,
    reserve,
    settle,
)

THREADS = 24
REQUESTS = 120
ESTIMATE = Decimal("0.03")


def _in_threads(work: Callable[[int], str]) -> list[str]:
    barrier = threading.Barrier(THREADS)

    def worker(slot: int) -> list[str]:
        try:
            barrier.wait(timeout=30)  # everyone starts at once: maximum contention on the account row
            return [work(i) for i in range(slot, REQUESTS, THREADS)]
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(THREADS) as pool:
        return [outcome for chunk in pool.map(worker, range(THREADS)) for outcome in chunk]


def _line(cost: Decimal) -> UsageLine:
    return UsageLine(skus.CHAT_OUT, 1, cost, cost, "Inference for AI model 'm'")


def _settle(org_id: int, request_id: str, cost: Decimal) -> list[UsageLine]:
    return settle(
        request_id=request_id,
        organization_id=org_id,
        lines=[_line(cost)],
        gateway_id=None,
        api_key_id=None,
        model="m",
        metadata=None,
    )


def _charges(org) -> Decimal:
    return sum((e.amount for e in LedgerEntry.objects.for_org(org).filter(kind="charge")), Decimal(0))


@pytest.mark.django_db(transaction=True)
def test_concurrent_reservations_stop_exactly_at_the_floor(org, billing_staff) -> None:
    credit_grant(organization=org, amount=Decimal("1"), reason="test", staff_user=billing_staff)
    account_set_credit_limit(organization_id=org.pk, credit_limit=Decimal("0.25"), staff_user=billing_staff)

    def hold(i: int) -> str:
        try:
            reserve(organization_id=org.pk, request_id=f"hold-{i}", amount=ESTIMATE)
        except InsufficientBalance:
            return "refused"
        return "held"

    outcomes = _in_threads(hold)
    assert len(outcomes) == REQUESTS
    spendable = Decimal("1.25")
    assert outcomes.count("held") == int(spendable / ESTIMATE) == 41
    account = BillingAccount.objects.for_org(org).get()
    assert account.reserved == ESTIMATE * 41 <= spendable
    assert Reservation.objects.for_org(org).count() == 41


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_settle_retry_and_release_exactly(org, billing_staff) -> None:
    credit = Decimal("1")
    credit_grant(organization=org, amount=credit, reason="test", staff_user=billing_staff)
    costs = {i: Decimal(random.Random(i).randint(1, 300)) / 10000 for i in range(REQUESTS)}  # up to the estimate

    def request(i: int) -> str:
        request_id = f"req-{i}"
        try:
            reserve(organization_id=org.pk, request_id=request_id, amount=ESTIMATE)
        except InsufficientBalance:
            return "refused"
        if i % 5 == 0:
            release(request_id=request_id)  # upstream failed before the first byte
            return "released"
        first = _settle(org.pk, request_id, costs[i])
        if i % 3 == 0:
            assert _settle(org.pk, request_id, costs[i] / 2) == first  # a retried write changes nothing
        return "settled"

    outcomes = _in_threads(request)
    assert outcomes.count("settled") > 0 and outcomes.count("refused") > 0
    account = BillingAccount.objects.for_org(org).get()
    settled = [i for i, outcome in zip(_request_order(), outcomes, strict=True) if outcome == "settled"]
    assert _charges(org) == sum(costs[i] for i in settled)
    assert account.balance == credit - _charges(org)
    assert account.balance >= 0  # the floor (no credit limit)
    assert account.reserved == 0
    assert not Reservation.objects.for_org(org).filter(status=ReservationStatus.HELD).exists()
    assert all(check.ok for check in reconcile_balances())


def _request_order() -> list[int]:
    return [i for slot in range(THREADS) for i in range(slot, REQUESTS, THREADS)]


@pytest.mark.django_db(transaction=True)
async def test_async_wrappers_run_in_fresh_connections(org, billing_staff) -> None:
    from asgiref.sync import sync_to_async

    await sync_to_async(credit_grant)(organization=org, amount=Decimal("1"), reason="t", staff_user=billing_staff)
    await areserve(organization_id=org.pk, request_id="a1", amount=ESTIMATE)
    lines = await asettle(
        request_id="a1",
        organization_id=org.pk,
        lines=[_line(Decimal("0.01"))],
        gateway_id=None,
        api_key_id=None,
        model="m",
        metadata={"k": "v"},
    )
    assert lines == [_line(Decimal("0.01"))]
    await areserve(organization_id=org.pk, request_id="a2", amount=ESTIMATE)
    await arelease(request_id="a2")
    account = await BillingAccount.objects.for_org(org).aget()
    assert (account.balance, account.reserved) == (Decimal("0.99"), 0)
    with pytest.raises(InsufficientBalance):
        await areserve(organization_id=org.pk, request_id="a3", amount=Decimal("5"))


@pytest.mark.django_db(transaction=True)
def test_the_same_request_id_reserved_concurrently_holds_once(org, billing_staff) -> None:
    credit_grant(organization=org, amount=Decimal("1"), reason="test", staff_user=billing_staff)
    ids = _in_threads(lambda i: str(reserve(organization_id=org.pk, request_id="dup", amount=ESTIMATE).pk))
    assert len(set(ids)) == 1
    assert BillingAccount.objects.for_org(org).get().reserved == ESTIMATE
    assert Reservation.objects.for_org(org).count() == 1
