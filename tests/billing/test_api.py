from __future__ import annotations

import json
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
    """Money arrives as JSON numbers with fixed decimals: parsed as Decimals, they are exact."""
    response = Client().get(path, params, headers={"Authorization": f"Bearer {key}"})
    return {"status": response.status_code, **json.loads(response.content, parse_float=Decimal)}


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
    raw = Client().get("/api/v1/balance", headers={"Authorization": f"Bearer {api_key.raw}"}).content
    assert b'"balance":9.9750000000,"reserved":0.0000000000' in raw  # exact numbers, fixed decimals, no float
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


def test_tenants_read_their_request_records(usage, api_key, outsider_key) -> None:
    listed = _get("/api/v1/requests", api_key.raw)
    assert [r["id"] for r in listed["data"]] == ["r2", "r1"] and listed["has_more"] is False
    one = _get("/api/v1/requests/r1", api_key.raw)
    assert one["status"] == 200 and one["total"] == Decimal("0.02")
    assert one["usage"] == {"prompt_tokens": 100, "cached_tokens": 0, "completion_tokens": 10, "reasoning_tokens": 0}
    assert [(line["sku"], line["amount"]) for line in one["lines"]] == [
        (skus.CHAT_IN, Decimal("0.01")),
        (skus.CHAT_OUT, Decimal("0.01")),
    ]
    assert sum(line["amount"] for line in one["lines"]) == one["total"]
    assert _get("/api/v1/requests/o1", api_key.raw)["status"] == 404  # another organization's: not found
    assert [r["id"] for r in _get("/api/v1/requests", outsider_key.raw)["data"]] == ["o1"]


def test_request_list_filters_and_pages(usage, api_key) -> None:
    by_gateway = _get("/api/v1/requests", api_key.raw, gateway_id=str(GATEWAY))
    assert [r["id"] for r in by_gateway["data"]] == ["r1"]
    first = _get("/api/v1/requests", api_key.raw, limit="1")
    assert [r["id"] for r in first["data"]] == ["r2"] and first["has_more"] is True
    rest = _get("/api/v1/requests", api_key.raw, limit="1", after="r2")
    assert [r["id"] for r in rest["data"]] == ["r1"] and rest["has_more"] is False
    yesterday = str(timezone.now().date() - timedelta(days=1))
    assert _get("/api/v1/requests", api_key.raw, to=yesterday)["data"] == []
    assert _get("/api/v1/requests", api_key.raw, after="nope")["status"] == 400


def test_request_list_filters_by_metadata(funded_org, api_key) -> None:
    settle(
        request_id="m1", organization_id=funded_org.pk, lines=[_line(skus.CHAT_IN, 1, "0.01")], gateway_id=None,
        api_key_id=None, model="m", metadata={"customer": "acme"},
    )  # fmt: skip
    _bill(funded_org, "m2", _line(skus.CHAT_IN, 1, "0.01"))
    both = _get("/api/v1/requests", api_key.raw, metadata_key="customer", metadata_value="acme")
    assert [r["id"] for r in both["data"]] == ["m1"] and both["data"][0]["metadata"] == {"customer": "acme"}
    assert _get("/api/v1/requests", api_key.raw, metadata_key="customer", metadata_value="other")["data"] == []
