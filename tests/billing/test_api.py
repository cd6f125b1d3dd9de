from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Scope
from accounts.services import api_key_create
from billing import skus
from billing.pricing import UsageLine
from billing.services import credit_grant, settle

GATEWAY = uuid.uuid4()


def _bill(org, request_id: str, *lines: UsageLine, gateway_id=GATEWAY) -> None:
    settle(
        request_id=request_id,
        organization_id=org.pk,
        lines=list(lines),
        gateway_id=gateway_id,
        api_key_id=None,
        model="@openai/gpt-4o-mini",
        metadata=None,
    )


def _line(sku: str, quantity: int, unit_price: str) -> UsageLine:
    price = Decimal(unit_price)
    return UsageLine(sku, quantity, price, price * quantity, "t")


def _get(path: str, key: str, **params: str) -> dict:
    response = Client().get(path, params, headers={"Authorization": f"Bearer {key}"})
    return {"status": response.status_code, **response.json()}


@pytest.fixture
def usage(funded_org, outsider_org, billing_staff) -> None:
    _bill(funded_org, "r1", _line(skus.CHAT_IN, 100, "0.0001"), _line(skus.CHAT_OUT, 10, "0.001"))
    _bill(funded_org, "r2", _line(skus.CHAT_IN, 50, "0.0001"), gateway_id=None)
    credit_grant(organization=outsider_org, amount=Decimal("3"), reason="t", staff_user=billing_staff)
    _bill(outsider_org, "o1", _line(skus.CHAT_IN, 1000, "0.0001"))


def test_balance_is_scoped_to_the_key(usage, api_key, outsider_key) -> None:
    mine = _get("/api/v1/balance", api_key.raw)
    assert mine.pop("status") == 200
    assert mine.pop("currency") == "USD"
    assert {name: Decimal(value) for name, value in mine.items()} == {
        "balance": Decimal("9.975"),
        "reserved": 0,
        "available": Decimal("9.975"),
        "credit_limit": 0,
    }
    assert (mine["balance"], mine["reserved"]) == ("9.9750000000", "0.0000000000")  # decimal strings, never floats
    theirs = _get("/api/v1/balance", outsider_key.raw)
    assert Decimal(theirs["balance"]) == Decimal("2.9")


def test_any_scope_may_read_billing(usage, org) -> None:
    for scope in Scope.values:
        key = api_key_create(organization=org, name=scope, scopes=[scope])
        assert _get("/api/v1/balance", key.raw)["status"] == 200, scope
    assert Client().get("/api/v1/balance").status_code == 401


def test_usage_grouped_and_totalled(usage, api_key, outsider_key) -> None:
    by_sku = _get("/api/v1/usage", api_key.raw, group_by="sku")
    assert by_sku["status"] == 200
    rows = {row["group"]: row for row in by_sku["data"]}
    assert set(rows) == {skus.CHAT_IN, skus.CHAT_OUT}
    assert (Decimal(rows[skus.CHAT_IN]["amount"]), rows[skus.CHAT_IN]["quantity"]) == (Decimal("0.015"), 150)
    assert rows[skus.CHAT_IN]["requests"] == 2
    assert Decimal(by_sku["total"]) == Decimal("0.025")

    by_gateway = _get("/api/v1/usage", api_key.raw, group_by="gateway")
    assert {row["group"]: Decimal(row["amount"]) for row in by_gateway["data"]} == {
        str(GATEWAY): Decimal("0.02"),
        None: Decimal("0.005"),
    }
    today = timezone.now().date()
    by_day = _get("/api/v1/usage", api_key.raw, group_by="day", **{"from": str(today), "to": str(today)})
    assert [(row["group"], Decimal(row["amount"])) for row in by_day["data"]] == [(str(today), Decimal("0.025"))]
    assert by_day["from"].startswith(str(today))

    yesterday = str(today - timedelta(days=1))
    empty = _get("/api/v1/usage", api_key.raw, **{"from": yesterday, "to": yesterday})
    assert (empty["data"], Decimal(empty["total"])) == ([], 0)

    theirs = _get("/api/v1/usage", outsider_key.raw, group_by="sku")
    assert [(row["group"], Decimal(row["amount"])) for row in theirs["data"]] == [(skus.CHAT_IN, Decimal("0.1"))]


def test_usage_validation_errors_are_openai_shaped(api_key) -> None:
    bad = _get("/api/v1/usage", api_key.raw, group_by="color")
    assert bad["status"] == 400 and bad["error"]["param"] == "group_by"
    backwards = _get("/api/v1/usage", api_key.raw, **{"from": "2025-02-01", "to": "2025-01-01"})
    assert backwards["status"] == 400 and backwards["error"]["param"] == "from"


@pytest.mark.django_db(transaction=True)
def test_balance_over_real_http(live_asgi, funded_org, api_key, outsider_key) -> None:
    mine = httpx.get(f"{live_asgi.url}/api/v1/balance", headers={"Authorization": f"Bearer {api_key.raw}"})
    assert mine.status_code == 200, mine.text
    assert Decimal(mine.json()["balance"]) == Decimal("10")
    theirs = httpx.get(f"{live_asgi.url}/api/v1/usage", headers={"Authorization": f"Bearer {outsider_key.raw}"})
    assert theirs.status_code == 200 and theirs.json()["data"] == []
