"""Money on the inference path: the hold covers the worst case and caps the upstream, 402s say what is needed,
every response and stream names its cost (equal to the ledger), usage shapes (reasoning, cached, cumulative),
and every disconnect variant is billed exactly once."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest

from billing.models import BilledRequest, BillingAccount, LedgerEntry, Price, Reservation
from billing.price_cache import invalidate_price_cache
from billing.services import credit_grant, reconcile_balances
from gateways.models import CatalogModel
from gateways.services import gateway_create

pytestmark = pytest.mark.django_db(transaction=True)


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _post(live_asgi: Any, key: str, body: dict[str, Any]) -> httpx.Response:
    url = f"{live_asgi.url}/api/v1/chat/completions"
    return httpx.post(url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=20)


def _events(live_asgi: Any, key: str, body: dict[str, Any]) -> list[str]:
    url = f"{live_asgi.url}/api/v1/chat/completions"
    with httpx.stream("POST", url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=20) as response:
        assert response.status_code == 200
        return [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]


def _ledger_lines(request_id: str) -> dict[str, tuple[int, Decimal]]:
    rows = LedgerEntry.unscoped.filter(request_id=request_id, kind="charge")
    return {row.sku: (row.quantity, row.amount) for row in rows}


def _context_lines(context: dict[str, Any]) -> dict[str, tuple[int, Decimal]]:
    return {
        line["sku"]: (line["quantity"], Decimal(str(line["amount"])).quantize(Decimal("1e-10")))
        for line in context["generated_usage"]
    }


def _wait_billed(request_id: str) -> None:
    deadline = time.monotonic() + 5
    while not BilledRequest.unscoped.filter(request_id=request_id).exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def _balance(org: Any) -> tuple[Decimal, Decimal]:
    account = BillingAccount.unscoped.get(organization=org)
    return account.balance, account.reserved


@pytest.fixture
def poor(org, owner):
    """An organization left with exactly one tenth of a cent."""
    balance, _ = _balance(org)
    credit_grant(organization=org, amount=Decimal("0.001") - balance, reason="test funds", staff_user=None)
    return org


def test_the_answer_is_capped_to_what_the_balance_can_pay(
    live_asgi, api_key, poor, catalog_model, stub, upstream_model
):
    stub.app.script(upstream_model, endless=True)  # a model that writes as long as it is allowed
    gw = gateway_create(organization=poor, name="Bot", catalog_model=catalog_model)
    response = _post(live_asgi, api_key.raw, {"model": gw.slug, "messages": _user("write forever")})
    assert response.status_code == 200
    cap = stub.app.requests_for(upstream_model)[-1]["max_completion_tokens"]
    # $0.001 pays the prompt and ~495 tokens at $0.000002 each: far below the window left (~4000).
    assert 400 < cap < 500
    assert response.json()["choices"][0]["finish_reason"] == "length"
    balance, reserved = _balance(poor)
    assert balance >= 0 and reserved == 0
    assert all(check.ok for check in reconcile_balances())


def test_the_cap_is_the_smallest_of_request_gateway_and_window(client, gateway, stub, upstream_model):
    client.chat.completions.create(model=gateway.slug, messages=_user("hi"), max_completion_tokens=7)
    assert stub.app.requests_for(upstream_model)[-1]["max_completion_tokens"] == 7
    client.chat.completions.create(model=gateway.slug, messages=_user("hi"))
    cap = stub.app.requests_for(upstream_model)[-1]["max_completion_tokens"]
    assert 4000 < cap < 4096  # a funded tenant: the model's window left after the prompt


def test_402_names_what_is_needed_and_available(live_asgi, api_key, org, catalog_model, stub, upstream_model):
    balance, _ = _balance(org)
    credit_grant(organization=org, amount=Decimal("0.00001") - balance, reason="nearly empty", staff_user=None)
    gw = gateway_create(organization=org, name="Bot", catalog_model=catalog_model)
    response = _post(live_asgi, api_key.raw, {"model": gw.slug, "messages": _user("hello")})
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "insufficient_balance"
    assert "needs" in error["message"] and "0.00001 USD is available" in error["message"]
    assert stub.app.requests_for(upstream_model) == []  # the upstream was never called
    assert _balance(org) == (Decimal("0.00001"), Decimal(0))
    assert not Reservation.unscoped.filter(organization=org, status="held").exists()


def test_a_stream_without_include_usage_ends_with_its_cost(live_asgi, api_key, gateway):
    events = _events(live_asgi, api_key.raw, {"model": gateway.slug, "messages": _user("a b c"), "stream": True})
    assert events[-1] == "[DONE]"
    last = json.loads(events[-2])
    assert last["choices"][0]["finish_reason"] == "stop" and last["usage"] is None
    assert _context_lines(last["generation_context"]) == _ledger_lines(last["id"])
    assert all("generation_context" not in json.loads(e) for e in events[:-2])


def test_a_stream_with_include_usage_ends_with_usage_and_cost(live_asgi, api_key, gateway):
    body = {
        "model": gateway.slug,
        "messages": _user("a b c"),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    events = _events(live_asgi, api_key.raw, body)
    last = json.loads(events[-2])
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 4  # "Echo: a b c"
    assert last["usage"]["completion_tokens_details"] == {"reasoning_tokens": 0}
    assert _context_lines(last["generation_context"]) == _ledger_lines(last["id"])


def test_an_error_event_after_billing_carries_the_billed_lines(live_asgi, api_key, gateway, stub, upstream_model):
    stub.app.script(upstream_model, content="a b c d e f", break_after_chunks=2)
    events = _events(live_asgi, api_key.raw, {"model": gateway.slug, "messages": _user("x"), "stream": True})
    last = json.loads(events[-1])
    request_id = json.loads(events[0])["id"]
    assert last["error"]["type"] == "api_error"
    assert _context_lines(last["generation_context"]) == _ledger_lines(request_id)
    assert "inference.chat_completions.out" in _ledger_lines(request_id)


def test_reasoning_tokens_are_billed_once(client, gateway, catalog_model, stub, upstream_model):
    stub.app.script(upstream_model, content="one two three", reasoning_tokens=40)
    raw = client.post("/chat/completions", cast_to=object, body={"model": gateway.slug, "messages": _user("x")})
    assert (
        raw["usage"]["completion_tokens"] == 43 and raw["usage"]["completion_tokens_details"]["reasoning_tokens"] == 40
    )
    assert _ledger_lines(raw["id"])["inference.chat_completions.out"][0] == 43  # unpriced: stays in .out

    Price.objects.create(
        catalog_model=catalog_model, sku="inference.chat_completions.out.reasoning", unit_price="0.000003"
    )
    invalidate_price_cache()
    raw = client.post("/chat/completions", cast_to=object, body={"model": gateway.slug, "messages": _user("x")})
    lines = _ledger_lines(raw["id"])
    assert lines["inference.chat_completions.out"][0] == 3
    assert lines["inference.chat_completions.out.reasoning"] == (40, Decimal("0.0001200000"))
    assert _context_lines(raw["generation_context"]) == lines


def test_cached_tokens_are_billed_at_the_cached_price(client, gateway, stub, upstream_model):
    stub.app.script(upstream_model, cached_tokens=4)
    raw = client.post("/chat/completions", cast_to=object, body={"model": gateway.slug, "messages": _user("x y z")})
    lines = _ledger_lines(raw["id"])
    assert lines["inference.chat_completions.in.cached"][0] == 4
    assert lines["inference.chat_completions.in"][0] == raw["usage"]["prompt_tokens"] - 4


def test_cumulative_usage_in_every_chunk_is_counted_once(live_asgi, api_key, gateway, stub, upstream_model):
    stub.app.script(upstream_model, content="a b c d e f g h", cumulative_usage=True, usage=False)
    events = _events(live_asgi, api_key.raw, {"model": gateway.slug, "messages": _user("x"), "stream": True})
    request_id = json.loads(events[0])["id"]
    out_quantity, _ = _ledger_lines(request_id)["inference.chat_completions.out"]
    assert out_quantity == 8
    assert not LedgerEntry.unscoped.get(request_id=request_id, sku="inference.chat_completions.out").estimated


def test_an_upstream_that_needs_max_tokens_gets_it(client, gateway, catalog_model, stub, upstream_model):
    CatalogModel.objects.filter(pk=catalog_model.pk).update(output_limit_param="max_tokens")
    from gateways.cache import forget

    forget(gateway)
    client.chat.completions.create(model=gateway.slug, messages=_user("hi"), max_completion_tokens=9)
    sent = stub.app.requests_for(upstream_model)[-1]
    assert sent["max_tokens"] == 9 and "max_completion_tokens" not in sent


def test_a_disconnect_before_the_first_token_is_billed_once(live_asgi, api_key, gateway, stub, upstream_model):
    stub.app.script(upstream_model, first_chunk_delay=1.0)
    url = f"{live_asgi.url}/api/v1/chat/completions"
    body = {"model": gateway.slug, "messages": _user("x"), "stream": True}
    with httpx.stream("POST", url, json=body, headers={"Authorization": f"Bearer {api_key.raw}"}) as response:
        request_id = response.headers["x-request-id"]  # headers arrive before the first token; leave now
    _wait_billed(request_id)
    assert BilledRequest.unscoped.filter(request_id=request_id).count() == 1
    assert set(_ledger_lines(request_id)) == {"inference.chat_completions.in"}  # the prompt, nothing generated
    assert Reservation.unscoped.get(request_id=request_id).status == "settled"
    assert all(check.ok for check in reconcile_balances())


def test_a_disconnect_after_the_last_content_chunk_is_billed_once(live_asgi, api_key, gateway, stub, upstream_model):
    stub.app.script(upstream_model, content="a b c", chunk_delay=0.05)
    url = f"{live_asgi.url}/api/v1/chat/completions"
    body = {"model": gateway.slug, "messages": _user("x"), "stream": True}
    with httpx.stream("POST", url, json=body, headers={"Authorization": f"Bearer {api_key.raw}"}) as response:
        request_id = response.headers["x-request-id"]
        for line in response.iter_lines():
            if '" c"' in line:
                break  # the last content chunk: leave before the finish chunk and [DONE]
    _wait_billed(request_id)
    time.sleep(0.3)
    assert BilledRequest.unscoped.filter(request_id=request_id).count() == 1
    assert _ledger_lines(request_id)["inference.chat_completions.out"][0] >= 3
    assert all(check.ok for check in reconcile_balances())
