"""The connect-time guard (httpcore network backends) and the hardened httpx clients built on it."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from typing import Any

import httpcore
import httpx
from django.conf import settings

from aivax.outbound.policy import BlockedAddress, Policy, checked_addresses


class GuardedAsyncBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself (in a thread), checks every address, then connects to a checked one."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        lookup = asyncio.to_thread(checked_addresses, host, port, policy=self.policy)
        try:
            addresses = await asyncio.wait_for(lookup, timeout)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} took too long") from exc
        error: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedSyncBackend(httpcore.SyncBackend):
    """The same guard for sync clients (the remote embedder runs in Celery workers and sync views)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        error: httpcore.ConnectError | None = None
        for address in checked_addresses(host, port, policy=self.policy):
            try:
                return super().connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise BlockedAddress("unix sockets are not allowed")


def upstream_timeout() -> httpx.Timeout:
    connect = settings.UPSTREAM_CONNECT_TIMEOUT
    return httpx.Timeout(connect=connect, read=settings.UPSTREAM_READ_TIMEOUT, write=connect, pool=connect)


def _limits() -> httpx.Limits:
    return httpx.Limits(
        max_connections=settings.OUTBOUND_MAX_CONNECTIONS,
        max_keepalive_connections=settings.OUTBOUND_MAX_KEEPALIVE_CONNECTIONS,
        keepalive_expiry=30,
    )


def new_async_client(policy: Policy) -> httpx.AsyncClient:
    """A hardened client: guarded connections, explicit timeouts, no redirects (a redirect would resend the key
    wherever it points), no proxies from the environment (they would bypass the guard)."""
    transport = httpx.AsyncHTTPTransport(limits=_limits(), retries=0)
    transport._pool._network_backend = GuardedAsyncBackend(policy)  # httpcore's documented extension point
    return httpx.AsyncClient(transport=transport, timeout=upstream_timeout(), follow_redirects=False, trust_env=False)


def new_sync_client(policy: Policy, *, timeout: float = 60.0, connect_timeout: float | None = None) -> httpx.Client:
    connect = settings.UPSTREAM_CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
    transport = httpx.HTTPTransport(limits=_limits(), retries=0)
    transport._pool._network_backend = GuardedSyncBackend(policy)
    return httpx.Client(
        transport=transport,
        timeout=httpx.Timeout(timeout, connect=connect, pool=connect),
        follow_redirects=False,
        trust_env=False,
    )


_shared: dict[Policy, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]] = {
    policy: weakref.WeakKeyDictionary() for policy in Policy
}


def shared_async_client(policy: Policy) -> httpx.AsyncClient:
    """The pooled client for this event loop and policy (a client's pool belongs to one loop)."""
    loop = asyncio.get_running_loop()
    client = _shared[policy].get(loop)
    if client is None:
        client = _shared[policy][loop] = new_async_client(policy)
    return client


class ResponseTooLarge(Exception):
    """An upstream sent more than OUTBOUND_MAX_RESPONSE_BYTES in one body or one line."""


async def aread_limited(response: httpx.Response) -> bytes:
    """The whole body, refusing one larger than OUTBOUND_MAX_RESPONSE_BYTES (memory is the limit otherwise)."""
    limit = settings.OUTBOUND_MAX_RESPONSE_BYTES
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(f"more than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


async def aiter_lines_limited(response: httpx.Response) -> AsyncIterator[str]:
    """The body's lines (as httpx's ``aiter_lines``), refusing a line longer than OUTBOUND_MAX_RESPONSE_BYTES: an
    upstream that never sends a newline must not grow our buffer without end."""
    limit = settings.OUTBOUND_MAX_RESPONSE_BYTES
    parts: list[str] = []  # the unfinished line, in pieces (joined once it ends, which keeps this linear)
    size = 0
    async for text in response.aiter_text():
        *ended, rest = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if ended:
            yield "".join([*parts, ended[0]])
            for line in ended[1:]:
                yield line
            parts, size = [], 0
        parts.append(rest)
        size += len(rest)
        if size > limit:
            raise ResponseTooLarge(f"a line of more than {limit} characters")
    if size:
        yield "".join(parts)
