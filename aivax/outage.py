"""Dependency outages, in one place: which exceptions mean "PostgreSQL or Redis is unreachable (or its pool is
exhausted)", the 503 + Retry-After the client gets for them, and counters of what was degraded.

See docs/faults.md for the designed behaviour per fault. A request refused here did nothing: the reservation
is taken before the upstream is called, so a database that cannot reserve means no upstream call, no bill.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

import psycopg
import redis.exceptions
from django.conf import settings
from django.db import InterfaceError, OperationalError

from aivax.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,  # Django's wrapper of the driver's error (connection lost, admin shutdown, ...)
    InterfaceError,  # a connection Django already knows is closed
    psycopg.OperationalError,  # aivax.adb's native connections; psycopg_pool.PoolTimeout is one too
    psycopg.InterfaceError,
)
REDIS_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,  # refused, reset, and the blocking pool's "No connection available"
    redis.exceptions.TimeoutError,
)

_counters: Counter[str] = Counter()
_counters_lock = threading.Lock()


def count(event: str) -> None:
    """Count a degraded operation (e.g. "redis.auth_fallback"); `counters()` exposes them for metrics."""
    with _counters_lock:
        _counters[event] += 1


def counters() -> dict[str, int]:
    with _counters_lock:
        return dict(_counters)


def retry_after() -> str:
    return str(max(1, int(settings.SERVICE_UNAVAILABLE_RETRY_AFTER)))


def unavailable(message: str) -> ServiceUnavailable:
    return ServiceUnavailable(message, headers={"Retry-After": retry_after()})


def _drop_broken_orm_connections() -> None:
    """Django's persistent connections are dropped when broken only at the start and end of requests that go
    through its handler; the /api/ fast path and the shared sync thread of async ORM calls skip that. Drop them
    here, on the thread that owns them, so the request after an outage reconnects instead of failing too."""
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import close_old_connections

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        close_old_connections()  # sync code: this thread's own connections
        return
    task = loop.create_task(sync_to_async(close_old_connections, thread_sensitive=True)())
    _cleanups.add(task)
    task.add_done_callback(_cleanups.discard)


_cleanups: set[object] = set()


def unavailable_for(exc: BaseException) -> ServiceUnavailable | None:
    """The 503 to answer for `exc` if it is a dependency outage, else None."""
    if isinstance(exc, DATABASE_ERRORS):
        count("database.unavailable")
        logger.warning("database unavailable: %s: %s", type(exc).__name__, exc)
        _drop_broken_orm_connections()
        return unavailable("The service is temporarily unavailable (database). Nothing was billed; retry shortly.")
    if isinstance(exc, REDIS_ERRORS):
        count("redis.unavailable")
        logger.warning("redis unavailable: %s: %s", type(exc).__name__, exc)
        return unavailable("The service is temporarily unavailable (cache). Nothing was billed; retry shortly.")
    return None
