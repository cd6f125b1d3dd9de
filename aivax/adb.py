"""Native async PostgreSQL (psycopg AsyncConnection) for the few hot-path statements of every inference request
(billing's reserve/settle/release), so they cost one round trip and no thread hop. Everything else uses the ORM.

Connections are pooled per event loop, in autocommit mode (each statement is atomic on its own), and built from
the same settings as Django's connection (including the test database name during tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from django.db import connections

POOL_SIZE = 16
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = weakref.WeakKeyDictionary()


def _connect_kwargs() -> dict[str, Any]:
    settings_dict = connections["default"].settings_dict
    kwargs: dict[str, Any] = {
        "dbname": settings_dict["NAME"],
        "user": settings_dict.get("USER") or None,
        "password": settings_dict.get("PASSWORD") or None,
        "host": settings_dict.get("HOST") or None,
        "port": settings_dict.get("PORT") or None,
    }
    options = {
        k: v for k, v in (settings_dict.get("OPTIONS") or {}).items() if k not in {"pool", "server_side_binding"}
    }
    kwargs.update(options)
    return {k: v for k, v in kwargs.items() if v is not None}


class _Pool:
    def __init__(self) -> None:
        self.idle: list[psycopg.AsyncConnection[Any]] = []
        self.slots = asyncio.Semaphore(POOL_SIZE)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self.slots:
            conn = self.idle.pop() if self.idle else None
            if conn is None or conn.closed:
                conn = await psycopg.AsyncConnection.connect(**_connect_kwargs(), autocommit=True)
            try:
                yield conn
            except BaseException:
                # A failed or cancelled statement may leave the connection mid-protocol: never reuse it.
                await conn.close()
                raise
            if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                await conn.close()
            else:
                self.idle.append(conn)


def _pool() -> _Pool:
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        pool = _pools[loop] = _Pool()
    return pool


async def fetchone(sql: str, params: list[Any]) -> tuple[Any, ...] | None:
    async with _pool().connection() as conn:
        cursor = await conn.execute(sql, params)
        return await cursor.fetchone() if cursor.description else None
