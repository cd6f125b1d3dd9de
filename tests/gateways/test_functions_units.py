"""Server-side tools without a gateway: signatures, one round of calls against the suite's MCP server and HTTP
function server (parallel, timeouts, errors), the outbound guard on MCP connections, and the router's parsing."""

from __future__ import annotations

import json
import time

import pytest

from aivax import crypto
from gateways.routing.classify import Band, choose, classifier_messages, last_turn, parse_rating
from gateways.tools import mcp, signing
from gateways.tools.errors import ToolError
from gateways.tools.runtime import ServerTool, run_tool_calls, spec_tool
from gateways.tools.spec import HTTP, MCP, ToolSpec
from tests.gateways.tool_servers import FUNCTION_SECRET, MCP_TOKEN


def _call(name: str, arguments: object, call_id: str = "call_1") -> dict:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": raw}}


def _http_spec(function_server, name: str, timeout: float = 5.0) -> ToolSpec:
    return ToolSpec(
        kind=HTTP,
        name=name,
        description="",
        parameters={},
        url=f"{function_server.base_url}/{name}",
        timeout=timeout,
        secret_cipher=crypto.encrypt(FUNCTION_SECRET),
    )


def _mcp_spec(mcp_server, name: str, timeout: float = 5.0, token: str = MCP_TOKEN) -> ToolSpec:
    return ToolSpec(
        kind=MCP,
        name=name,
        description="",
        parameters={"type": "object"},
        url=mcp_server.url,
        timeout=timeout,
        secret_cipher=crypto.encrypt(token),
        auth_header_name="Authorization",
        server_name="test",
    )


# ---- signatures


def test_signature_round_trip_and_refusals() -> None:
    body = b'{"order_id": 42}'
    header = signing.sign("whsec_a", body, timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    assert signing.verify("whsec_a", body, header, now=1_700_000_010)
    assert not signing.verify("whsec_b", body, header, now=1_700_000_010)  # another secret
    assert not signing.verify("whsec_a", body + b" ", header, now=1_700_000_010)  # another body
    assert not signing.verify("whsec_a", body, header, now=1_700_001_000)  # too old: a replay
    assert not signing.verify("whsec_a", body, "garbage")


# ---- the router's pure part


@pytest.mark.parametrize(
    ("answer", "rating"),
    [("7", 7), (" 3\n", 3), ("Rating: 8/10", 8), ("**6**", 6), ("6.5", 7), ("10", 10), ("I'd say 2.", 2)],
)
def test_ratings_are_parsed_robustly(answer: str, rating: int) -> None:
    assert parse_rating(answer) == rating


@pytest.mark.parametrize("answer", [None, "", "hard", "0", "11", "100", "-", "eleven"])
def test_no_rating_is_none(answer: str | None) -> None:
    assert parse_rating(answer) is None


def test_bands_pick_the_first_that_holds() -> None:
    bands = [Band(1, 4), Band(3, 10)]
    assert choose(bands, 3) == 0 and choose(bands, 5) == 1
    assert choose([Band(1, 4)], 9) is None  # the gateway's own model answers


def test_last_turn_is_the_last_user_message() -> None:
    messages = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "prove it"}]},
        {"role": "tool", "content": "x"},
    ]
    assert last_turn(messages) == "prove it"
    assert "prove it" in classifier_messages("prove it")[1]["content"]


# ---- one round of calls


async def test_http_and_mcp_calls_run_in_parallel(function_server, mcp_server) -> None:
    tools = {
        "slow": spec_tool(_http_spec(function_server, "slow"), request_id="req-1"),
        "get_weather": spec_tool(_mcp_spec(mcp_server, "get_weather"), request_id="req-1"),
        "lookup": spec_tool(_http_spec(function_server, "lookup"), request_id="req-1"),
    }
    calls = [
        _call("slow", {"seconds": 0.8}, "c1"),
        _call("get_weather", {"city": "Lisbon"}, "c2"),
        _call("client_tool", {}, "c3"),  # not the gateway's: left alone
        _call("lookup", {"order_id": 7}, "c4"),
        _call("slow", {"seconds": 0.8}, "c5"),
    ]
    runned: list[dict] = []
    before = time.time()
    messages = await run_tool_calls(tools, calls, runned)
    slow_starts = [c["at"] for c in function_server.record.calls if c["path"] == "/slow" and c["at"] >= before]
    assert len(slow_starts) == 2 and abs(slow_starts[0] - slow_starts[1]) < 0.5  # both began before either ended
    assert [m["tool_call_id"] for m in messages] == ["c1", "c2", "c4", "c5"]
    assert messages[0]["content"] == "late"
    assert messages[1]["content"] == "Sunny and 21 C in Lisbon"
    assert json.loads(messages[2]["content"]) == {"order": 7, "status": "shipped"}
    assert [(r["function_name"], r["success"]) for r in runned] == [
        ("slow", True),
        ("get_weather", True),
        ("lookup", True),
        ("slow", True),
    ]
    assert runned[1]["arguments"] == {"city": "Lisbon"}
    lookups = [c for c in function_server.record.calls if c["arguments"] == {"order_id": 7}]
    assert lookups and lookups[-1]["valid"]
    assert lookups[-1]["headers"]["x-aivax-function"] == "lookup"
    assert lookups[-1]["headers"]["x-aivax-request-id"] == "req-1"


async def test_timeouts_and_errors_become_tool_errors(function_server, mcp_server) -> None:
    tools = {
        "slow": spec_tool(_http_spec(function_server, "slow", timeout=0.3), request_id="r"),
        "fail": spec_tool(_http_spec(function_server, "fail"), request_id="r"),
        "explode": spec_tool(_mcp_spec(mcp_server, "explode"), request_id="r"),
        "add": spec_tool(_mcp_spec(mcp_server, "add", token="Bearer wrong"), request_id="r"),
    }
    calls = [
        _call("slow", {"seconds": 1}, "a"),
        _call("fail", {}, "b"),
        _call("explode", {}, "c"),
        _call("add", {"a": 1, "b": 2}, "d"),
        _call("fail", "{not json", "e"),
    ]
    runned: list[dict] = []
    messages = await run_tool_calls(tools, calls, runned)
    contents = [m["content"] for m in messages]
    assert contents[0] == "Error: the function did not answer within 0.3 s."
    assert contents[1].startswith("Error: the function answered HTTP 500: database down")
    assert contents[2].startswith("Error:") and "explode" in contents[2]
    assert contents[3].startswith("Error:")
    assert "wrong" not in contents[3]  # never the auth header
    assert contents[4] == "Error: the arguments are not valid JSON."
    assert [r["success"] for r in runned] == [False] * 5


async def test_results_are_clipped_in_runned_functions(settings) -> None:
    settings.RUNNED_FUNCTION_RESULT_MAX_CHARS = 10

    async def long(arguments: dict) -> str:
        return "x" * 50

    tools = {"long": ServerTool(name="long", definition={}, run=long, timeout=1)}
    runned: list[dict] = []
    messages = await run_tool_calls(tools, [_call("long", {})], runned)
    assert messages[0]["content"] == "x" * 50
    assert runned[0]["result"] == "x" * 10 + "…"


async def test_mcp_listing(mcp_server) -> None:
    tools = await mcp.list_tools(mcp_server.url, auth_header_name="Authorization", auth_header_value=MCP_TOKEN)
    names = {t["name"] for t in tools}
    assert {"get_weather", "add", "explode", "slow"} <= names
    weather = next(t for t in tools if t["name"] == "get_weather")
    assert weather["inputSchema"]["required"] == ["city"]
    with pytest.raises(ToolError):
        await mcp.list_tools(mcp_server.url)  # no token: refused by the server


async def test_mcp_connections_are_guarded_in_production(settings, mcp_server) -> None:
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    with pytest.raises(ToolError, match=r"could not be reached|not allowed"):
        await mcp.list_tools(mcp_server.url, auth_header_name="Authorization", auth_header_value=MCP_TOKEN)
    runned: list[dict] = []
    messages = await run_tool_calls(
        {"add": spec_tool(_mcp_spec(mcp_server, "add"), request_id="r")}, [_call("add", {"a": 1, "b": 2})], runned
    )
    assert messages[0]["content"].startswith("Error:") and runned[0]["success"] is False


async def test_a_tool_slower_than_its_timeout_does_not_hold_the_round(mcp_server) -> None:
    tools = {"slow": spec_tool(_mcp_spec(mcp_server, "slow", timeout=0.5), request_id="r")}
    started = time.monotonic()
    messages = await run_tool_calls(tools, [_call("slow", {"seconds": 1.5})], [])
    assert time.monotonic() - started < 1.2
    assert "did not answer" in messages[0]["content"]
