"""Monthly budgets per key and per gateway: checked inside the hold (a request that could pass the cap is capped or
refused up front), never exceeded under concurrency, reset at the start of each UTC month, 402 `budget_exceeded`
naming the budget."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from accounts.models import ApiKey
from billing.models import BilledRequest, Reservation
from billing.services import reconcile_balances
from billing.services.holds import month_start
from gateways.models import Gateway

pytestmark = pytest.mark.django_db(transaction=True)


def _ask(live_asgi: Any, key: str, model: str, text: str = "go") -> httpx.Response:
    return httpx.post(
        f"{live_asgi.url}/api/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": text}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )


def _spent(**scope: Any) -> Decimal:
    return sum((r.total for r in BilledRequest.unscoped.filter(**scope)), Decimal(0))


def test_a_key_budget_caps_the_answer_then_refuses(live_asgi, api_key, gateway, stub, upstream_model):
    ApiKey.unscoped.filter(pk=api_key.key.pk).update(monthly_budget=Decimal("0.0005"))
    stub.app.script(upstream_model, endless=True)
    first = _ask(live_asgi, api_key.raw, gateway.slug)
    assert first.status_code == 200
    cap = stub.app.requests_for(upstream_model)[-1]["max_completion_tokens"]
    assert cap < 250  # $0.0005 at $0.000002 a token, after the prompt: not the window's ~4000
    assert _spent(api_key_id=api_key.key.pk) <= Decimal("0.0005")
    refused = _ask(live_asgi, api_key.raw, gateway.slug)
    assert refused.status_code == 402
    error = refused.json()["error"]
    assert error["code"] == "budget_exceeded" and error["param"] == "api_key.monthly_budget"
    assert error["message"].startswith("This API key's monthly budget of 0.0005 USD is used up")
    assert not Reservation.unscoped.filter(status="held").exists()


def test_a_gateway_budget_is_named_when_it_refuses(live_asgi, api_key, gateway, stub, upstream_model):
    Gateway.unscoped.filter(pk=gateway.pk).update(monthly_budget=Decimal("0.00001"))
    from gateways.cache import forget

    forget(gateway)
    refused = _ask(live_asgi, api_key.raw, gateway.slug)
    assert refused.status_code == 402
    error = refused.json()["error"]
    assert error["code"] == "budget_exceeded" and error["param"] == "gateway.monthly_budget"
    assert "This gateway's monthly budget" in error["message"]
    assert stub.app.requests_for(upstream_model) == []


def test_a_budget_is_never_exceeded_by_concurrent_requests(live_asgi, api_key, gateway, stub, upstream_model):
    budget = Decimal("0.002")
    ApiKey.unscoped.filter(pk=api_key.key.pk).update(monthly_budget=budget)
    stub.app.script(upstream_model, content=" ".join(["word"] * 40))
    # 100 requests, 16 at a time: a burst at once still trips the Redis pool of API-key authentication
    # (issue 10, fixed separately), which is not what this test is about.
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda i: _ask(live_asgi, api_key.raw, gateway.slug, f"q{i}"), range(100)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 402} and statuses.count(200) >= 5 and 402 in statuses
    assert _spent(api_key_id=api_key.key.pk) <= budget
    assert not Reservation.unscoped.filter(status="held").exists()
    assert all(check.ok for check in reconcile_balances())


def test_budgets_reset_at_the_start_of_each_utc_month(live_asgi, api_key, gateway, stub, upstream_model):
    ApiKey.unscoped.filter(pk=api_key.key.pk).update(monthly_budget=Decimal("0.0005"))
    stub.app.script(upstream_model, endless=True)
    assert _ask(live_asgi, api_key.raw, gateway.slug).status_code == 200
    assert _ask(live_asgi, api_key.raw, gateway.slug).status_code == 402
    # Last month's spend does not count in this one.
    BilledRequest.unscoped.filter(api_key_id=api_key.key.pk).update(created_at=month_start() - timedelta(seconds=1))
    assert _ask(live_asgi, api_key.raw, gateway.slug).status_code == 200
