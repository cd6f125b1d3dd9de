"""Direct Redis clients for hot paths (key lookups, rate limits) where Django's cache API would cost a thread hop.

Keys are namespaced with settings.CACHE_KEY_PREFIX so that parallel test runs sharing one Redis never collide.

Pools are `BlockingConnectionPool`s sized by REDIS_MAX_CONNECTIONS, one per process (one per event loop for the
async client): a burst waits up to REDIS_POOL_TIMEOUT for a free connection instead of failing with "Too many
connections". Sockets have timeouts and a failed command is retried once; connections are re-made on demand, so
the clients reconnect by themselves when Redis comes back.

Redis only caches here (the database holds keys and gateways): the `cache_*` helpers turn an outage into a miss.
After a failure Redis is skipped for REDIS_RETRY_SECONDS, so an unreachable Redis costs one timeout per process
and period, not one per request.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from typing import cast

import redis
import redis.asyncio as aredis
from django.conf import settings
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from aivax import outage

logger = logging.getLogger(__name__)

_sync_client: redis.Redis | None = None
_sync_lock = threading.Lock()
# One async client per event loop: a connection pool must not be shared across loops.
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aredis.Redis] = weakref.WeakKeyDictionary()
_down_until = 0.0


def rkey(*parts: object) -> str:
    return ":".join([settings.CACHE_KEY_PREFIX, *(str(p) for p in parts)])


def _pool_kwargs() -> dict[str, object]:
    return {
        "max_connections": settings.REDIS_MAX_CONNECTIONS,
        "timeout": settings.REDIS_POOL_TIMEOUT,
        "socket_timeout": settings.REDIS_SOCKET_TIMEOUT,
        "socket_connect_timeout": settings.REDIS_SOCKET_TIMEOUT,
        "health_check_interval": 30,
    }


def sync_redis() -> redis.Redis:
    global _sync_client
    with _sync_lock:
        if _sync_client is None:
            pool = redis.BlockingConnectionPool.from_url(
                settings.REDIS_URL, retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 1), **_pool_kwargs()
            )
            _sync_client = redis.Redis(connection_pool=pool)
        return _sync_client


def async_redis() -> aredis.Redis:
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        from redis.asyncio.retry import Retry as AsyncRetry

        pool = aredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL, retry=AsyncRetry(ExponentialBackoff(cap=0.2, base=0.02), 1), **_pool_kwargs()
        )
        client = aredis.Redis(connection_pool=pool)
        _async_clients[loop] = client
    return client


def redis_skipped() -> bool:
    """True while a recent failure says Redis is down (callers go straight to the database)."""
    return time.monotonic() < _down_until


def redis_failed(exc: BaseException, what: str) -> None:
    """Record a Redis failure of a cache operation `what`: log, count, and skip Redis for a short while."""
    global _down_until
    if not redis_skipped():
        logger.warning("redis unavailable during %s (%s): using the database", what, type(exc).__name__)
    _down_until = time.monotonic() + settings.REDIS_RETRY_SECONDS
    outage.count(f"redis.{what}_fallback")


async def acache_get(key: str, *, what: str) -> bytes | None:
    """The cached value, or None on a miss or while Redis is down."""
    if redis_skipped():
        outage.count(f"redis.{what}_fallback")
        return None
    try:
        value = await async_redis().get(key)
        return cast(bytes | None, value)  # the client does not decode responses
    except outage.REDIS_ERRORS as exc:
        redis_failed(exc, what)
        return None


async def acache_set(key: str, value: str, *, ex: int, what: str) -> None:
    if redis_skipped():
        return
    try:
        await async_redis().set(key, value, ex=ex)
    except outage.REDIS_ERRORS as exc:
        redis_failed(exc, what)


def cache_set(key: str, value: str, *, ex: int, what: str) -> None:
    if redis_skipped():
        return
    try:
        sync_redis().set(key, value, ex=ex)
    except outage.REDIS_ERRORS as exc:
        redis_failed(exc, what)
