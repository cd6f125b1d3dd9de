"""Property: against a model that writes as long as it is allowed, no mix of concurrent requests, streams,
disconnects (before the first token, mid-stream, during a server-side tool round) and QueryFunction tool rounds
takes a nearly empty balance below its floor; afterwards nothing is held, every request is billed at most once,
and reconciliation finds no drift."""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Scope
from accounts.services import api_key_create, organization_create
from billing.models import BilledRequest, BillingAccount, Price, Reservation
from billing.services import credit_grant, reconcile_balances
from gateways.grounding import SEARCH_TOOL_NAME
from gateways.services import catalog_model_upsert, gateway_create
from knowledge import services as knowledge
from tests.gateways.conftest import PRICES
from tests.knowledge.conftest import knowledge_prices  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

CALL = {"id": "c1", "type": "function", "function": {"name": SEARCH_TOOL_NAME, "arguments": '{"query": "x"}'}}
_names = itertools.count()
MODES = ("json", "stream", "drop_mid_stream", "drop_before_first_token", "tools", "tools_stream", "drop_in_tools")


def _model(stub: Any, name: str) -> Any:
    model = catalog_model_upsert(
        name=f"@stub/{name}", base_url=stub.base_url, upstream_model=name, api_key="sk", context_window=4096
    )
    for sku, price in PRICES.items():
        Price.objects.get_or_create(catalog_model=model, sku=sku, defaults={"unit_price": price})
    return model


def _run(base: str, key: str, mode: str, plain: str, tools: str, slow: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    gateway = {"tools": tools, "tools_stream": tools, "drop_in_tools": tools, "drop_before_first_token": slow}
    body = {"model": gateway.get(mode, plain), "messages": [{"role": "user", "content": "go on"}]}
    body["stream"] = mode not in ("json", "tools", "drop_in_tools")
    url = f"{base}/api/v1/chat/completions"
    try:
        if mode == "drop_in_tools":
            httpx.post(url, json=body, headers=headers, timeout=0.15)  # leaves while the tool rounds run
            return
        if not body["stream"]:
            httpx.post(url, json=body, headers=headers, timeout=20)
            return
        with httpx.stream("POST", url, json=body, headers=headers, timeout=20) as response:
            for index, _line in enumerate(response.iter_lines()):
                if mode == "drop_before_first_token" or (mode == "drop_mid_stream" and index > 20):
                    return
    except httpx.TimeoutException:
        return


@pytest.fixture
def world(stub, knowledge_prices, owner):  # noqa: F811
    n = next(_names)
    plain, tools, slow = f"endless-{n}", f"tools-{n}", f"slow-{n}"
    stub.app.script(plain, endless=True, chunk_delay=0.002)
    stub.app.script(tools, tool_calls=[CALL], answer_after_tool=True, first_chunk_delay=0.1)
    stub.app.script(slow, endless=True, first_chunk_delay=0.5)
    return {"owner": owner, "models": {name: _model(stub, name) for name in (plain, tools, slow)}}


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    modes=st.lists(st.sampled_from(MODES), min_size=2, max_size=8),
    hundredths_of_a_cent=st.integers(min_value=1, max_value=60),
)
def test_no_mix_of_requests_takes_a_balance_below_its_floor(live_asgi, world, modes, hundredths_of_a_cent) -> None:
    org = organization_create(name=f"Poor {next(_names)}", owner=world["owner"])
    balance = BillingAccount.unscoped.get(organization=org).balance
    start = Decimal(hundredths_of_a_cent) / 10000
    credit_grant(organization=org, amount=start - balance, reason="test", staff_user=None)
    key = api_key_create(organization=org, name="k", scopes=list(Scope.values)).raw
    collection = knowledge.collection_create(organization=org, name="kb")
    slugs = {}
    for name, model in world["models"].items():
        kb = {"knowledge_collection": collection, "query_strategy": "QueryFunction"} if name.startswith("tools") else {}
        slugs[name.split("-")[0]] = gateway_create(organization=org, name=name, catalog_model=model, **kb).slug

    with ThreadPoolExecutor(max_workers=len(modes)) as pool:
        list(
            pool.map(
                lambda mode: _run(live_asgi.url, key, mode, slugs["endless"], slugs["tools"], slugs["slow"]), modes
            )
        )

    deadline = time.monotonic() + 10  # disconnected requests settle in the background
    while Reservation.unscoped.filter(organization=org, status="held").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    account = BillingAccount.unscoped.get(organization=org)
    assert account.balance >= -account.credit_limit, f"{modes}: balance {account.balance} below the floor"
    assert account.reserved == 0
    assert not Reservation.unscoped.filter(organization=org, status="held").exists()
    assert BilledRequest.unscoped.filter(organization=org).count() <= len(modes)
    assert all(check.ok for check in reconcile_balances(organization_id=org.pk))
