"""The model router: a stub classifier scripted per message sends an easy question to the small model and a hard
one to the big one, the rating round is billed as routing_complexity, and a classifier that fails, hangs or
answers nonsense leaves the gateway's own model to answer."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from billing.models import LedgerEntry, Price
from billing.services import reconcile_balances
from gateways.routing.services import CandidateIn, gateway_router_set
from gateways.services import catalog_model_upsert, gateway_create
from tests.gateways.conftest import PRICES

pytestmark = pytest.mark.django_db(transaction=True)

ROUTING_PRICES = {
    "inference.resolving.routing_complexity.in": Decimal("0.0000001"),
    "inference.resolving.routing_complexity.out": Decimal("0.0000004"),
}


def _model(stub: Any, role: str) -> Any:
    upstream = f"{role}-{uuid.uuid4().hex[:8]}"
    model = catalog_model_upsert(name=f"@stub/{upstream}", base_url=stub.base_url, upstream_model=upstream)
    for sku, price in {**PRICES, **ROUTING_PRICES}.items():
        Price.objects.create(catalog_model=model, sku=sku, unit_price=price)
    return model


@pytest.fixture
def routed(funded, stub):  # type: ignore[no-untyped-def]
    models = {role: _model(stub, role) for role in ("default", "small", "big", "classifier")}
    stub.app.script(models["classifier"].upstream_model, replies={"hello": "2", "prove": "Rating: 9/10"})
    gateway = gateway_create(organization=funded, name="Routed", catalog_model=models["default"])
    gateway_router_set(
        gateway=gateway,
        classifier=models["classifier"],
        candidates=[
            CandidateIn(catalog_model=models["small"], min_complexity=1, max_complexity=4),
            CandidateIn(catalog_model=models["big"], min_complexity=7, max_complexity=10),
        ],
    )
    return gateway, models


def _ask(live_asgi: Any, key: str, gateway: Any, text: str, **extra: Any) -> httpx.Response:
    return httpx.post(
        f"{live_asgi.url}/api/v1/chat/completions",
        json={"model": gateway.slug, "messages": [{"role": "user", "content": text}], **extra},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def _charges(request_id: str) -> dict[str, LedgerEntry]:
    deadline = time.monotonic() + 5
    rows: list[LedgerEntry] = []
    while time.monotonic() < deadline and not rows:
        rows = list(LedgerEntry.unscoped.filter(request_id=request_id, kind="charge"))
        time.sleep(0.05)
    return {row.sku: row for row in rows}


def test_easy_goes_small_and_hard_goes_big_billing_the_rating(live_asgi, api_key, routed, stub, funded) -> None:
    gateway, models = routed
    easy = _ask(live_asgi, api_key.raw, gateway, "hello, how are you?")
    assert easy.status_code == 200, easy.text
    assert easy.json()["model"] == models["small"].name
    assert easy.headers["x-aivax-route"] == f"{models['small'].name}; complexity=2; reason=band-1-4"
    hard = _ask(live_asgi, api_key.raw, gateway, "prove that there are infinitely many primes")
    assert hard.json()["model"] == models["big"].name
    assert hard.headers["x-aivax-route"].startswith(f"{models['big'].name}; complexity=9;")
    assert len(stub.app.requests_for(models["small"].upstream_model)) == 1
    assert len(stub.app.requests_for(models["big"].upstream_model)) == 1
    assert stub.app.requests_for(models["default"].upstream_model) == []
    rating_request = stub.app.requests_for(models["classifier"].upstream_model)[0]
    assert "hello, how are you?" in rating_request["messages"][-1]["content"]

    rows = _charges(easy.json()["id"])
    assert {"inference.resolving.routing_complexity.in", "inference.resolving.routing_complexity.out"} <= set(rows)
    assert rows["inference.resolving.routing_complexity.out"].quantity == 1  # "2": one word from the stub
    listed = {line["sku"] for line in easy.json()["generation_context"]["generated_usage"]}
    assert listed == set(rows)
    assert all(check.ok for check in reconcile_balances(organization_id=funded.pk))


def test_a_rating_no_band_holds_goes_to_the_default(live_asgi, api_key, routed, stub) -> None:
    gateway, models = routed
    stub.app.script(models["classifier"].upstream_model, content="5")
    response = _ask(live_asgi, api_key.raw, gateway, "summarise this")
    assert response.json()["model"] == models["default"].name
    assert response.headers["x-aivax-route"].endswith("complexity=5; reason=no-band")


@pytest.mark.parametrize(
    ("script", "reason", "rating_billed"),
    [
        ({"status": 500}, "classifier-error", False),
        ({"hang": True}, "classifier-timeout", False),
        ({"content": "I cannot rate that."}, "unreadable-rating", True),
    ],
)
def test_a_failing_classifier_still_answers(
    live_asgi, api_key, routed, stub, settings, funded, script, reason, rating_billed
) -> None:
    settings.ROUTER_CLASSIFIER_TIMEOUT = 0.5
    gateway, models = routed
    stub.app.script(models["classifier"].upstream_model, **script)
    response = _ask(live_asgi, api_key.raw, gateway, "hello")
    assert response.status_code == 200, response.text
    assert response.json()["model"] == models["default"].name
    assert response.headers["x-aivax-route"] == f"{models['default'].name}; complexity=none; reason={reason}"
    rows = _charges(response.json()["id"])
    assert ("inference.resolving.routing_complexity.in" in rows) is rating_billed
    assert "inference.chat_completions.in" in rows
    assert all(check.ok for check in reconcile_balances(organization_id=funded.pk))


def test_streams_name_the_chosen_model(live_asgi, api_key, routed) -> None:
    gateway, models = routed
    url = f"{live_asgi.url}/api/v1/chat/completions"
    body = {"model": gateway.slug, "messages": [{"role": "user", "content": "prove it"}], "stream": True}
    with httpx.stream("POST", url, json=body, headers={"Authorization": f"Bearer {api_key.raw}"}, timeout=30) as r:
        assert r.headers["x-aivax-route"].startswith(models["big"].name)
        chunks = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    assert {c["model"] for c in chunks if c.get("choices")} == {models["big"].name}
