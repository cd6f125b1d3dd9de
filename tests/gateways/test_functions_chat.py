"""Server-side tools in chat completions: the model (the stub, scripted to call tools) gets the results of the
suite's HTTP function and MCP server, `runned_functions` lists every call, the ledger has one line per SKU,
timeouts and errors reach the model as tool errors, client tools pass through, streams show progress."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest

from billing.models import LedgerEntry
from billing.services import reconcile_balances
from gateways.services import gateway_create
from gateways.tools.services import gateway_tools_set, http_function_create, mcp_server_create
from tests.gateways.tool_servers import FUNCTION_SECRET, MCP_TOKEN

pytestmark = pytest.mark.django_db(transaction=True)


def _call(name: str, arguments: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def _post(live_asgi: Any, key: str, body: dict[str, Any]) -> httpx.Response:
    url = f"{live_asgi.url}/api/v1/chat/completions"
    return httpx.post(url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def _charges(request_id: str) -> list[LedgerEntry]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        rows = list(LedgerEntry.unscoped.filter(request_id=request_id, kind="charge"))
        if rows:
            return rows
        time.sleep(0.05)
    return []


@pytest.fixture
def agent(funded, catalog_model, function_server, mcp_server):  # type: ignore[no-untyped-def]
    """A gateway with two HTTP functions (lookup, slow: 0.5 s timeout) and the MCP server's get_weather."""
    lookup = http_function_create(organization=funded, name="lookup", url=f"{function_server.base_url}/lookup")
    lookup.secret = FUNCTION_SECRET  # the test server verifies with this one
    lookup.save()
    slow = http_function_create(
        organization=funded, name="slow", url=f"{function_server.base_url}/slow", timeout_seconds=0.5
    )
    slow.secret = FUNCTION_SECRET
    slow.save()
    server = mcp_server_create(
        organization=funded, name="Weather", url=mcp_server.url, auth_header_value=MCP_TOKEN, timeout_seconds=5
    )
    gateway = gateway_create(organization=funded, name="Agent", catalog_model=catalog_model, max_tool_rounds=3)
    gateway_tools_set(gateway=gateway, http_functions=[lookup, slow], mcp_tools=[(server, "get_weather")])
    return gateway


def test_the_model_gets_tool_results_and_runned_functions_lists_them(
    live_asgi, api_key, agent, stub, upstream_model, function_server, funded
) -> None:
    calls = [_call("lookup", {"order_id": 42}, "c1"), _call("get_weather", {"city": "Porto"}, "c2")]
    stub.app.script(upstream_model, tool_calls=calls, answer_after_tool=True)
    response = _post(live_asgi, api_key.raw, {"model": agent.slug, "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200, response.text
    body = response.json()
    message = body["choices"][0]["message"]
    assert message["content"] == "From the tool: Sunny and 21 C in Porto"  # the last tool result, as the model saw it
    assert not message.get("tool_calls") and body["choices"][0]["finish_reason"] == "stop"

    sent = stub.app.requests_for(upstream_model)
    assert len(sent) == 2
    assert {t["function"]["name"] for t in sent[0]["tools"]} == {"lookup", "slow", "get_weather"}
    tool_messages = [m for m in sent[1]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["c1", "c2"]
    assert json.loads(tool_messages[0]["content"]) == {"order": 42, "status": "shipped"}
    signed = [c for c in function_server.record.calls if c["arguments"] == {"order_id": 42}]
    assert signed and signed[-1]["valid"]

    runned = body["generation_context"]["runned_functions"]
    assert [(r["function_name"], r["success"], r["arguments"]) for r in runned] == [
        ("lookup", True, {"order_id": 42}),
        ("get_weather", True, {"city": "Porto"}),
    ]
    assert runned[1]["result"] == "Sunny and 21 C in Porto"

    # One ledger line per SKU for the request, the two model rounds added up; the response names the same lines.
    rows = _charges(body["id"])
    skus = [row.sku for row in rows]
    assert sorted(skus) == sorted(set(skus)) and "inference.chat_completions.in" in skus
    listed = {line["sku"]: Decimal(str(line["amount"])) for line in body["generation_context"]["generated_usage"]}
    assert listed == {row.sku: row.amount for row in rows}
    prompt_row = next(row for row in rows if row.sku == "inference.chat_completions.in")
    stub_count = [sum(len(str(m.get("content", "")).split()) + 3 for m in r["messages"]) for r in sent]
    assert prompt_row.quantity == sum(stub_count)  # both rounds, as the upstream reported them
    assert all(check.ok for check in reconcile_balances(organization_id=funded.pk))


def test_a_tool_timeout_is_a_tool_error_the_model_sees(live_asgi, api_key, agent, stub, upstream_model) -> None:
    stub.app.script(upstream_model, tool_calls=[_call("slow", {"seconds": 3}, "s1")], answer_after_tool=True)
    started = time.monotonic()
    response = _post(live_asgi, api_key.raw, {"model": agent.slug, "messages": [{"role": "user", "content": "go"}]})
    assert time.monotonic() - started < 2.5
    body = response.json()
    assert body["choices"][0]["message"]["content"] == "From the tool: Error: the function did not answer within 0.5 s."
    runned = body["generation_context"]["runned_functions"]
    assert [(r["function_name"], r["success"]) for r in runned] == [("slow", False)]


def test_client_tools_pass_through_untouched(live_asgi, api_key, agent, stub, upstream_model, function_server) -> None:
    before = len(function_server.record.calls)
    mine = _call("client_tool", {"x": 1}, "k1")
    stub.app.script(upstream_model, tool_calls=[mine], finish_reason="tool_calls")
    client_tools = [{"type": "function", "function": {"name": "client_tool", "parameters": {"type": "object"}}}]
    response = _post(
        live_asgi,
        api_key.raw,
        {"model": agent.slug, "messages": [{"role": "user", "content": "x"}], "tools": client_tools},
    )
    body = response.json()
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["choices"][0]["message"]["tool_calls"] == [mine]
    assert len(stub.app.requests_for(upstream_model)) == 1
    assert len(function_server.record.calls) == before and body["generation_context"]["runned_functions"] == []


def test_rounds_stop_at_the_gateway_limit(live_asgi, api_key, agent, stub, upstream_model) -> None:
    stub.app.script(upstream_model, tool_calls=[_call("lookup", {"order_id": 1}, "l1")])  # calls forever
    response = _post(live_asgi, api_key.raw, {"model": agent.slug, "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 200
    sent = stub.app.requests_for(upstream_model)
    assert len(sent) == 3 and sent[-1]["tool_choice"] == "none" and "tool_choice" not in sent[0]
    assert len(response.json()["generation_context"]["runned_functions"]) == 2
    assert not response.json()["choices"][0]["message"].get("tool_calls")  # our own tool never reaches the client


def test_streams_show_progress_and_relay_the_final_round(live_asgi, api_key, agent, stub, upstream_model) -> None:
    stub.app.script(
        upstream_model,
        tool_calls=[_call("get_weather", {"city": "Faro"}, "w1")],
        content="",  # the tool round says nothing, as models usually do
        answer_after_tool=True,
        first_chunk_delay=1.5,
    )
    url = f"{live_asgi.url}/api/v1/chat/completions"
    body = {"model": agent.slug, "messages": [{"role": "user", "content": "weather?"}], "stream": True}
    lines: list[str] = []
    started = time.monotonic()
    first_byte = None
    with httpx.stream("POST", url, json=body, headers={"Authorization": f"Bearer {api_key.raw}"}, timeout=30) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if first_byte is None:
                first_byte = time.monotonic() - started
            lines.append(line)
    assert first_byte is not None and first_byte < 1.0, first_byte  # the model's first round takes 1.5 s
    assert ": running tool get_weather" in lines
    data = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in data if c.get("choices"))
    assert text == "From the tool: Sunny and 21 C in Faro"
    assert len([c for c in data if c.get("choices") and c["choices"][0]["delta"].get("content")]) > 3  # live, piecewise
    assert not any(c["choices"][0]["delta"].get("tool_calls") for c in data if c.get("choices"))
    final = next(c for c in data if c.get("generation_context"))
    assert [r["function_name"] for r in final["generation_context"]["runned_functions"]] == ["get_weather"]
    assert lines[-2:] == ["data: [DONE]", ""] or lines[-1] == "data: [DONE]"
