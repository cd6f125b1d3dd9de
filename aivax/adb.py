"""Native async PostgreSQL (psycopg AsyncConnection) for the few hot-path statements of every inference request
(billing's reserve/settle/release), so they cost one round trip and no thread hop. Everything else uses the ORM.

Connections come from a `psycopg_pool.AsyncConnectionPool`, one per event loop (a pool's connections belong to
the loop that opened them), in autocommit mode (each statement is atomic on its own), built from the same
settings as Django's connection (including the test database name during tests). The pool:

- checks every connection as it is handed out (`check_connection`: one empty round trip), so a connection that
  died with a PostgreSQL restart is thrown away and replaced instead of failing the request;
- discards a connection that broke during a statement (psycopg marks it BAD; the pool never hands it out again);
- waits at most `DB_POOL_TIMEOUT` seconds for a free connection, then raises `PoolTimeout`, which the API
  answers with 503 + Retry-After (aivax.outage), never 500;
- reconnects by itself once the database is back (within DB_POOL_RECONNECT_SECONDS): no restart is needed.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from django.conf import settings
from django.db import connections
from psycopg_pool import AsyncConnectionPool

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncConnectionPool] = weakref.WeakKeyDictionary()


def connect_kwargs() -> dict[str, Any]:
    settings_dict = connections["default"].settings_dict
    kwargs: dict[str, Any] = {
        "dbname": settings_dict["NAME"],
        "user": settings_dict.get("USER") or None,
        "password": settings_dict.get("PASSWORD") or None,
        "host": settings_dict.get("HOST") or None,
        "port": settings_dict.get("PORT") or None,
        # A database host that does not answer at all must not hang a request for the OS's TCP timeout.
        "connect_timeout": max(1, int(settings.DB_CONNECT_TIMEOUT)),
    }
    options = {
        k: v for k, v in (settings_dict.get("OPTIONS") or {}).items() if k not in {"pool", "server_side_binding"}
    }
    kwargs.update(options)
    return {k: v for k, v in kwargs.items() if v is not None}


def _new_pool() -> AsyncConnectionPool:
    return AsyncConnectionPool(
        kwargs={**connect_kwargs(), "autocommit": True},
        min_size=settings.DB_POOL_MIN_SIZE,
        max_size=settings.DB_POOL_MAX_SIZE,
        timeout=settings.DB_POOL_TIMEOUT,
        check=AsyncConnectionPool.check_connection,
        max_idle=60,
        # While the database is away a refill attempt backs off (1 s, 2 s, 4 s, ...) for at most this long, then
        # gives up and the next checkout starts a fresh one: the pool finds a returned database within a few
        # seconds however long the outage was.
        reconnect_timeout=settings.DB_POOL_RECONNECT_SECONDS,
        name="aivax-adb",
        open=False,
    )


async def pool() -> AsyncConnectionPool:
    loop = asyncio.get_running_loop()
    current = _pools.get(loop)
    if current is None:
        current = _pools[loop] = _new_pool()
    if current.closed:
        # wait=False: opening must not fail while the database is down; checkouts then wait (bounded) instead.
        await current.open(wait=False)
    return current


async def fetchone(sql: str, params: list[Any], *, timeout: float | None = None) -> tuple[Any, ...] | None:
    """Run one statement; `timeout` overrides DB_POOL_TIMEOUT (a settle of an answer already delivered may wait
    longer than a reserve, which should rather be refused quickly)."""
    async with (await pool()).connection(timeout=timeout) as conn:
        cursor = await conn.execute(sql, params)
        return await cursor.fetchone() if cursor.description else None
