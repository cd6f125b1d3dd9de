"""Usage and balance: balance, daily spend by SKU (JSON for the chart), recent requests, CSV export; every
member may look, only at their own organization."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from django.utils import timezone

from billing import skus
from billing.pricing import UsageLine
from billing.services import charge
from tests.console.stack import fund


def _bill(org, request_id: str, gateway=None, key=None, out_tokens: int = 1000) -> None:
    lines = [
        UsageLine(skus.CHAT_IN, 200, Decimal("0.00000025"), Decimal("0.00005"), "Input tokens"),
        UsageLine(skus.CHAT_OUT, out_tokens, Decimal("0.000002"), Decimal("0.000002") * out_tokens, "Output tokens"),
    ]
    charge(
        organization_id=org.pk,
        request_id=request_id,
        lines=lines,
        gateway_id=gateway.pk if gateway else None,
        api_key_id=key.pk if key else None,
        model="@local/stub",
    )


@pytest.fixture
def billed(org, gateway, api_key):
    fund(org, "5")
    _bill(org, "req_one", gateway, api_key.key)
    _bill(org, "req_two", gateway, None, out_tokens=500)
    return org


def test_balance_totals_and_recent_requests(as_billing: Client, billed, gateway, api_key) -> None:
    response = as_billing.get("/console/usage/")
    assert response.status_code == 200
    html = response.content.decode()
    # 5 - (0.00005 + 0.002) - (0.00005 + 0.001)
    assert 'id="balance">$4.9969</div>' in html
    assert 'id="period-total">$0.0031</div>' in html
    assert "2 requests" in html
    assert gateway.name in html and api_key.key.name in html and ">console</span>" in html
    assert "inference.chat_completions.out" in html


def test_request_lines_partial(as_owner: Client, as_outsider: Client, billed) -> None:
    html = as_owner.get("/console/usage/requests/req_one").content.decode()
    assert "Output tokens" in html and "$0.002" in html
    assert "200 prompt, 1000 completion" in html  # the drill-down: tokens, metadata
    assert "Metadata" in html
    assert as_outsider.get("/console/usage/requests/req_one").status_code == 404


def test_daily_json_by_sku(as_dev: Client, billed) -> None:
    data = as_dev.get("/console/usage/daily.json?days=7").json()
    assert len(data["labels"]) == 7 and data["labels"][-1] == timezone.now().date().isoformat()
    series = {s["label"]: s["data"] for s in data["datasets"]}
    assert set(series) == {skus.CHAT_IN, skus.CHAT_OUT}  # credits are not spend
    assert Decimal(series[skus.CHAT_OUT][-1]) == Decimal("0.003")
    assert all(Decimal(v) == 0 for v in series[skus.CHAT_OUT][:-1])


def test_period_choice(as_owner: Client, billed) -> None:
    assert len(as_owner.get("/console/usage/daily.json?days=90").json()["labels"]) == 90
    assert len(as_owner.get("/console/usage/daily.json?days=12345").json()["labels"]) == 30
    assert 'href="?days=90" aria-current="page"' in as_owner.get("/console/usage/?days=90").content.decode()


def _streamed(response) -> str:
    async def collect() -> bytes:
        return b"".join(
            [part if isinstance(part, bytes) else part.encode() async for part in response.streaming_content]
        )

    return async_to_sync(collect)().decode()


def test_csv_export(as_billing: Client, billed) -> None:
    response = as_billing.get("/console/usage/export.csv?days=30")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="aivax-usage-acme-')
    rows = list(csv.DictReader(io.StringIO(_streamed(response))))
    assert {r["request_id"] for r in rows if r["kind"] == "charge"} == {"req_one", "req_two"}
    assert sum(Decimal(r["balance_delta"]) for r in rows) == Decimal("4.9969")


def test_export_is_only_for_members(db: None, as_outsider: Client, billed) -> None:
    assert Client().get("/console/usage/export.csv")["Location"] == "/console/"
    text = _streamed(as_outsider.get("/console/usage/export.csv"))
    assert "req_one" not in text


def test_outsider_sees_their_own_empty_usage(as_outsider: Client, billed) -> None:
    html = as_outsider.get("/console/usage/").content.decode()
    assert "No requests in this period" in html and "req_one" not in html


def test_old_requests_fall_out_of_the_window(as_owner: Client, org, gateway) -> None:
    from billing.models import BilledRequest, LedgerEntry

    fund(org, "1")
    _bill(org, "req_old", gateway)
    long_ago = timezone.now() - dt.timedelta(days=45)
    BilledRequest.objects.for_org(org).filter(request_id="req_old").update(created_at=long_ago)
    assert LedgerEntry.objects.for_org(org).filter(request_id="req_old").exists()
    assert "No requests in this period" in as_owner.get("/console/usage/?days=30").content.decode()
    assert "No requests in this period" not in as_owner.get("/console/usage/?days=90").content.decode()


def test_no_balance_is_announced(as_owner: Client, org, gateway) -> None:
    for url in ("/console/", f"/console/gateways/{gateway.pk}/playground"):
        assert "has no balance left" in as_owner.get(url).content.decode(), url
    fund(org, "1")
    for url in ("/console/", f"/console/gateways/{gateway.pk}/playground"):
        assert "has no balance left" not in as_owner.get(url).content.decode(), url


def test_spend_this_month_beside_each_key_and_gateway(as_owner: Client, billed, gateway, api_key) -> None:
    from accounts.models import ApiKey

    ApiKey.unscoped.filter(pk=api_key.key.pk).update(monthly_budget=Decimal("5"))
    keys = as_owner.get("/console/keys/").content.decode()
    assert '<td class="num month-spend">$0.00205 <span class="muted small">of $5.00</span></td>' in keys
    gateways = as_owner.get("/console/gateways/").content.decode()
    assert '<td class="num month-spend">$0.0031</td>' in gateways  # both requests went through it; no budget
