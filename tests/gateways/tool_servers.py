"""Servers the function tests call: an MCP server made with the ``mcp`` SDK's own server (streamable HTTP) and a
small HTTP function server that checks signatures. Both on loopback, on free ports, in background threads."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer

from gateways.tools import signing

MCP_TOKEN = "Bearer mcp-test-token"
FUNCTION_SECRET = "whsec_test-function-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Threaded:
    def __init__(self, app: Any, *, lifespan: str) -> None:
        self.port = _free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="error", lifespan=lifespan, interface="asgi3"
            )
        )
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


def build_mcp_app() -> Any:
    mcp = MCPServer("aivax-test-tools")

    @mcp.tool(description="Current weather for a city")
    def get_weather(city: str) -> str:
        return f"Sunny and 21 C in {city}"

    @mcp.tool(description="Adds two integers")
    def add(a: int, b: int) -> str:
        return str(a + b)

    @mcp.tool(description="Always fails")
    def explode() -> str:
        raise ValueError("the tool exploded")

    @mcp.tool(description="Takes a long time")
    async def slow(seconds: float = 5.0) -> str:
        await asyncio.sleep(seconds)
        return "finally"

    inner = mcp.streamable_http_app(stateless_http=True, json_response=True)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            if headers.get("authorization") != MCP_TOKEN:
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await inner(scope, receive, send)

    return app


class McpTestServer(_Threaded):
    def __init__(self) -> None:
        super().__init__(build_mcp_app(), lifespan="on")
        self.url = f"http://127.0.0.1:{self.port}/mcp"


@dataclass
class FunctionCalls:
    calls: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FunctionTestServer(_Threaded):
    """POST /<name>: `lookup` answers JSON from the arguments, `slow` sleeps `seconds`, `fail` answers 500.
    Every call is recorded with whether its signature was valid."""

    def __init__(self) -> None:
        self.record = FunctionCalls()
        super().__init__(self._app, lifespan="off")
        self.base_url = f"http://127.0.0.1:{self.port}"

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        valid = signing.verify(FUNCTION_SECRET, body, headers.get(signing.HEADER.lower(), ""))
        arguments = json.loads(body or b"{}")
        with self.record.lock:
            self.record.calls.append(
                {"path": scope["path"], "arguments": arguments, "valid": valid, "headers": headers, "at": time.time()}
            )
        name = scope["path"].strip("/")
        status, answer = 200, b""
        if not valid:
            status, answer = 401, b"bad signature"
        elif name == "slow":
            await asyncio.sleep(float(arguments.get("seconds", 5)))
            answer = b"late"
        elif name == "fail":
            status, answer = 500, b"database down"
        else:
            answer = json.dumps({"order": arguments.get("order_id"), "status": "shipped"}).encode()
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": answer})
