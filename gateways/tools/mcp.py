"""MCP servers over streamable HTTP, through the official ``mcp`` SDK's client.

The SDK talks HTTP with ``httpx2`` (not our ``httpx``), so the outbound guard is installed here on its transport:
the host is resolved by us, every address is checked by the same policy as tenants' model endpoints
(aivax.outbound, Policy.TENANT) and we connect to a checked address. A session is opened per call or listing
(initialize, request, close): MCP sessions are cheap, and no tenant connection outlives a request.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpcore
import httpcore2
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from aivax import outbound
from gateways.tools.errors import ToolError

logger = logging.getLogger(__name__)

# A listing or a session's handshake; tool calls use the server's own timeout.
CONNECT_TIMEOUT = 10.0


class GuardedMcpBackend(httpcore2.AsyncNetworkBackend):
    """httpcore2's twin of aivax.outbound.GuardedAsyncBackend (the SDK's httpx2 does not take httpcore backends)."""

    def __init__(self) -> None:
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore2.AsyncNetworkStream:
        try:
            addresses = await anyio.to_thread.run_sync(
                lambda: outbound.checked_addresses(host, port, policy=outbound.Policy.TENANT)
            )
        except httpcore.ConnectError as exc:  # BlockedAddress is one
            raise httpcore2.ConnectError(str(exc)) from exc
        return await self._inner.connect_tcp(
            addresses[0], port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _http_client(auth_header_name: str, auth_header_value: str, timeout: float) -> httpx2.AsyncClient:
    transport = httpx2.AsyncHTTPTransport(retries=0)
    transport._pool._network_backend = GuardedMcpBackend()  # httpcore2's extension point, as in gateways.upstream
    headers = {auth_header_name: auth_header_value} if auth_header_name and auth_header_value else {}
    return httpx2.AsyncClient(
        transport=transport,
        headers=headers,
        timeout=httpx2.Timeout(min(CONNECT_TIMEOUT, timeout), read=timeout),
        follow_redirects=False,
        trust_env=False,  # a proxy from the environment would connect for us, past the guard
    )


@asynccontextmanager
async def mcp_session(
    url: str, *, auth_header_name: str = "", auth_header_value: str = "", timeout: float = 15.0
) -> AsyncIterator[Client]:
    """An initialised MCP client session on `url`."""
    async with (
        _http_client(auth_header_name, auth_header_value, timeout) as http,
        Client(streamable_http_client(url, http_client=http), read_timeout_seconds=timeout, cache=None) as client,
    ):
        yield client


def _describe(exc: BaseException) -> str:
    """A short reason for an MCP failure, for the tenant or the model: no trace, no header value."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, httpx2.ConnectError | httpcore2.ConnectError):
        return "the MCP server could not be reached (or its address is not allowed)"
    if isinstance(exc, httpx2.HTTPStatusError):
        return f"the MCP server answered HTTP {exc.response.status_code}"
    if isinstance(exc, TimeoutError | httpx2.TimeoutException):
        return "the MCP server did not answer in time"
    message = str(exc).strip()
    return f"MCP error: {message[:200]}" if message else f"MCP error ({type(exc).__name__})"


async def list_tools(
    url: str, *, auth_header_name: str = "", auth_header_value: str = "", timeout: float = 15.0
) -> list[dict[str, Any]]:
    """The server's tools as ``{name, description, inputSchema}`` (every page). Raises ToolError."""
    tools: list[dict[str, Any]] = []
    try:
        with anyio.fail_after(timeout):
            async with mcp_session(
                url, auth_header_name=auth_header_name, auth_header_value=auth_header_value, timeout=timeout
            ) as client:
                cursor: str | None = None
                for _ in range(50):  # a server paging forever is cut off
                    page = await client.list_tools(cursor=cursor)
                    tools += [
                        {"name": t.name, "description": t.description or "", "inputSchema": t.input_schema}
                        for t in page.tools
                    ]
                    cursor = page.next_cursor
                    if not cursor:
                        break
    except Exception as exc:
        logger.info("MCP listing of %s failed: %r", outbound_host(url), exc)
        raise ToolError(_describe(exc)) from exc
    return tools


def _result_text(result: Any) -> str:
    parts: list[str] = []
    for block in result.content or []:
        text = getattr(block, "text", None)
        if isinstance(text, str):
            parts.append(text)
        else:
            parts.append(f"[{getattr(block, 'type', 'content')} omitted]")
    if not parts and result.structured_content is not None:
        from gateways import protocol

        parts.append(protocol.dumps(result.structured_content).decode())
    return "\n".join(parts)


async def call_tool(
    url: str,
    tool_name: str,
    arguments: dict[str, Any],
    *,
    auth_header_name: str = "",
    auth_header_value: str = "",
    timeout: float = 15.0,
) -> str:
    """Run one tool; its text content is the result. A tool's own error (isError) and any failure: ToolError."""
    try:
        async with mcp_session(
            url, auth_header_name=auth_header_name, auth_header_value=auth_header_value, timeout=timeout
        ) as client:
            result = await client.call_tool(tool_name, arguments)
    except Exception as exc:
        logger.info("MCP call %s on %s failed: %r", tool_name, outbound_host(url), exc)
        raise ToolError(_describe(exc)) from exc
    text = _result_text(result)
    if result.is_error:
        raise ToolError(text or "the tool reported an error")
    return text


def outbound_host(url: str) -> str:
    from urllib.parse import urlparse

    return urlparse(url).hostname or "?"
