"""Direct Redis clients for hot paths (key lookups, rate limits) where Django's cache API would cost a thread hop.

Keys are namespaced with settings.CACHE_KEY_PREFIX so that parallel test runs sharing one Redis never collide.
"""

from __future__ import annotations

import asyncio
import threading
import weakref

import redis
import redis.asyncio as aredis
from django.conf import settings

_sync_client: redis.Redis | None = None
_sync_lock = threading.Lock()
# One async client per event loop: a connection pool must not be shared across loops.
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aredis.Redis] = weakref.WeakKeyDictionary()


def rkey(*parts: object) -> str:
    return ":".join([settings.CACHE_KEY_PREFIX, *(str(p) for p in parts)])


def sync_redis() -> redis.Redis:
    global _sync_client
    with _sync_lock:
        if _sync_client is None:
            _sync_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        return _sync_client


def async_redis() -> aredis.Redis:
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = aredis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        _async_clients[loop] = client
    return client
