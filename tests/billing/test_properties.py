"""Property test of the ledger: random credits, requests (settled, retried, released, crashed), knowledge charges,
reversals, sweeps and credit-limit changes against a simple model. After every step the stored balance equals the
ledger sum and the model; reserved equals the held reservations; reconciliation finds no drift."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.services import organization_create
from aivax.errors import InsufficientBalance
from billing import skus
from billing.models import BilledRequest, BillingAccount, EntryKind, LedgerEntry
from billing.pricing import UsageLine
from billing.selectors import ledger_balance
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

_names = itertools.count()
cents = st.integers(min_value=0, max_value=400).map(lambda c: Decimal(c) / 100)
request_ids = st.integers(min_value=0, max_value=6).map(lambda i: f"r{i}")
operations = st.one_of(
    st.tuples(st.just("credit"), cents.filter(lambda a: a > 0)),
    st.tuples(
        st.just("request"),
        request_ids,
        cents,
        st.integers(0, 100),
        st.sampled_from(["settle", "settle_twice", "release", "crash"]),
    ),
    st.tuples(st.just("charge"), request_ids, cents),
    st.tuples(st.just("reverse"), st.integers(0, 50)),
    st.tuples(st.just("sweep")),
    st.tuples(st.just("limit"), cents),
)


@dataclass
class Model:
    balance: Decimal = Decimal(0)
    reserved: Decimal = Decimal(0)
    credit_limit: Decimal = Decimal(0)
    held: dict[str, Decimal] = field(default_factory=dict)
    reservations: set[str] = field(default_factory=set)
    billed: set[tuple[str, str]] = field(default_factory=set)
    requests: set[str] = field(default_factory=set)

    def close(self, request_id: str) -> None:
        self.reserved -= self.held.pop(request_id, Decimal(0))

    def bill(self, request_id: str, sku: str, cost: Decimal) -> None:
        self.close(request_id)
        if (request_id, sku) not in self.billed:
            self.billed.add((request_id, sku))
            self.balance -= cost
        self.requests.add(request_id)


def _line(sku: str, cost: Decimal) -> UsageLine:
    return UsageLine(sku, 1, cost, cost, "property test")


def _settle(org, request_id: str, cost: Decimal) -> None:
    settle(
        request_id=request_id,
        organization_id=org.pk,
        lines=[_line(skus.CHAT_OUT, cost)],
        gateway_id=None,
        api_key_id=None,
        model="m",
        metadata=None,
    )


def _step(op: tuple, org, staff, m: Model) -> None:
    kind = op[0]
    if kind == "credit":
        credit_grant(organization=org, amount=op[1], reason="property", staff_user=staff)
        m.balance += op[1]
    elif kind == "limit":
        account_set_credit_limit(organization_id=org.pk, credit_limit=op[1], staff_user=staff)
        m.credit_limit = op[1]
    elif kind == "sweep":
        reservations_release_stale(older_than=timedelta(0))
        m.reserved, m.held = Decimal(0), {}
    elif kind == "request":
        _, request_id, estimate, percent, outcome = op
        request_id = f"{org.pk}-{request_id}"  # examples share one database
        cost = (estimate * percent / 100).quantize(Decimal("0.0000000001"))
        available = m.balance - m.reserved + m.credit_limit
        fits = available >= estimate if estimate > 0 else available > 0
        if request_id in m.reservations:
            reserve(organization_id=org.pk, request_id=request_id, amount=estimate)  # a retry: holds nothing more
        elif not fits:
            with pytest.raises(InsufficientBalance):
                reserve(organization_id=org.pk, request_id=request_id, amount=estimate)
            return
        else:
            reserve(organization_id=org.pk, request_id=request_id, amount=estimate)
            m.reservations.add(request_id)
            m.held[request_id] = estimate
            m.reserved += estimate
            account = BillingAccount.objects.for_org(org).get()
            assert account.balance - account.reserved >= -account.credit_limit
        if outcome in ("settle", "settle_twice"):
            _settle(org, request_id, cost)
            m.bill(request_id, skus.CHAT_OUT, cost)
            if outcome == "settle_twice":
                _settle(org, request_id, cost + 1)
        elif outcome == "release":
            release(request_id=request_id)
            m.close(request_id)
    elif kind == "charge":
        _, request_id, cost = op
        request_id = f"{org.pk}-{request_id}"
        if m.balance - m.reserved <= -m.credit_limit and request_id not in m.requests:
            with pytest.raises(InsufficientBalance):
                charge(organization_id=org.pk, request_id=request_id, lines=[_line(skus.KNOWLEDGE_SEARCH, cost)])
        elif m.balance - m.reserved > -m.credit_limit:
            charge(organization_id=org.pk, request_id=request_id, lines=[_line(skus.KNOWLEDGE_SEARCH, cost)])
            m.bill(request_id, skus.KNOWLEDGE_SEARCH, cost)
        else:
            charge(organization_id=org.pk, request_id=request_id, lines=[_line(skus.KNOWLEDGE_SEARCH, cost)])
    elif kind == "reverse":
        entries = list(LedgerEntry.objects.for_org(org).order_by("id"))
        if not entries:
            return
        entry = entries[op[1] % len(entries)]
        if entry.kind == EntryKind.REVERSAL or entry.reversals.exists():
            with pytest.raises(ValidationError):
                entry_reverse(entry=entry, reason="property", staff_user=staff)
        else:
            entry_reverse(entry=entry, reason="property", staff_user=staff)
            m.balance -= entry.balance_delta


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operations, min_size=1, max_size=25))
def test_ledger_invariants(owner, billing_staff, ops) -> None:
    org = organization_create(name=f"Property {next(_names)}", owner=owner)
    model = Model()
    for op in ops:
        _step(op, org, billing_staff, model)
        account = BillingAccount.objects.for_org(org).get()
        assert account.balance == ledger_balance(organization_id=org.pk) == model.balance, op
        assert account.reserved == model.reserved == sum(model.held.values(), Decimal(0)), op
        assert set(BilledRequest.objects.for_org(org).values_list("request_id", flat=True)) == model.requests
    [check] = reconcile_balances(organization_id=org.pk)
    assert check.ok and check.drift == 0
