"""Counting against limits in Redis with the `limits` library: the one place that touches rate-limit counters.

Strategies: requests per minute use a moving window (exact: one Redis list entry per request, capped at the
limit); per-day counts, tokens and documents use a sliding window counter (two counters per limit whatever its
size, so a cost of thousands of tokens is one increment). Every decision is made by Lua scripts inside Redis, so
it is exact across any number of web processes.

Admission is two round trips however many limits apply: first every limit's window is read, and a request that
would exceed any of them is refused without counting anywhere (a refused request consumes nothing); then every
limit is hit, each hit atomically checked again in Redis. Under a race the second step can still refuse: the
request is then refused (a limit is never exceeded), and the limits hit before the refusing one keep that unit
(slight under-admission, never over-admission). `limits` has no way to take a unit back.

Redis down: settings.RATE_LIMIT_FAIL_OPEN (default on) admits the request, logged and counted
(`fail_open_count()`); off, the request is refused with 503.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerMinute
from limits import strategies as sync_strategies
from limits.aio import storage as aio_storage
from limits.aio import strategies as aio_strategies
from limits.errors import StorageError
from limits.storage import RedisStorage
from limits.util import WindowStats
from redis.exceptions import RedisError

from aivax.errors import ApiError

logger = logging.getLogger(__name__)

Kind = Literal["requests", "tokens", "documents"]
Per = Literal["minute", "day"]
# A limit far above anything real: used to add a correction that must be counted even past the limit.
_NO_LIMIT = 2**40


class RateLimiterUnavailable(ApiError):
    status = 503
    type = "api_error"
    code = "rate_limiter_unavailable"


@dataclass(frozen=True)
class Limit:
    """One limit at one level: e.g. 60 requests per minute for organization 12."""

    kind: Kind
    per: Per
    amount: int
    level: str  # "key", "organization" or "plan": every level counts the same traffic on its own counter
    subject: str

    @property
    def item(self) -> RateLimitItem:
        cls = RateLimitItemPerMinute if self.per == "minute" else RateLimitItemPerDay
        return cls(self.amount, namespace=self.kind)

    @property
    def identifiers(self) -> tuple[str, str]:
        return (self.level, self.subject)

    @property
    def moving(self) -> bool:
        return self.kind == "requests" and self.per == "minute"

    def describe(self) -> str:
        return f"{self.amount} {self.kind} per {self.per} for this {_LEVEL_NAMES.get(self.level, self.level)}"


_LEVEL_NAMES = {"key": "API key", "organization": "organization", "plan": "organization's plan"}


@dataclass(frozen=True)
class Counted:
    limit: Limit
    remaining: int  # after this request
    reset_at: float  # epoch seconds


@dataclass(frozen=True)
class Decision:
    allowed: bool
    counted: tuple[Counted, ...] = ()
    refused_by: Limit | None = None
    retry_after: int = 0
    degraded: bool = False  # Redis could not be reached and the request was let through


_fail_open = {"count": 0}
_fail_open_lock = threading.Lock()


def fail_open_count() -> int:
    """How many admissions this process let through because Redis could not be reached."""
    return _fail_open["count"]


def _storage_failed(exc: Exception) -> Decision:
    if not settings.RATE_LIMIT_FAIL_OPEN:
        logger.error("rate limiter unavailable, refusing (RATE_LIMIT_FAIL_OPEN is off): %s", exc)
        raise RateLimiterUnavailable("Rate limits cannot be checked right now. Try again shortly.") from exc
    with _fail_open_lock:
        _fail_open["count"] += 1
    logger.warning("rate limiter unavailable, admitting without limits (fail open): %s", exc)
    return Decision(allowed=True, degraded=True)


_STORAGE_ERRORS = (StorageError, RedisError, OSError)


def _decide(wants: Sequence[tuple[Limit, int]], stats: Sequence[WindowStats]) -> Decision | None:
    """A refusal if any limit lacks room for its cost (nothing counted yet); None when all have room."""
    now = time.time()
    refused = [(limit, s) for (limit, cost), s in zip(wants, stats, strict=True) if s.remaining < cost]
    if not refused:
        return None
    limit, s = max(refused, key=lambda pair: pair[1].reset_time)
    return Decision(
        allowed=False,
        counted=_as_counted(wants, stats, spent=False),
        refused_by=limit,
        retry_after=max(1, math.ceil(s.reset_time - now)),
    )


def _as_counted(
    wants: Sequence[tuple[Limit, int]], stats: Sequence[WindowStats], *, spent: bool
) -> tuple[Counted, ...]:
    return tuple(
        Counted(limit=limit, remaining=max(0, s.remaining - (cost if spent else 0)), reset_at=s.reset_time)
        for (limit, cost), s in zip(wants, stats, strict=True)
    )


def _admitted(wants: Sequence[tuple[Limit, int]], stats: Sequence[WindowStats], hits: Sequence[bool]) -> Decision:
    for (limit, _), s, hit in zip(wants, stats, hits, strict=True):
        if not hit:  # lost a race to another process between the read and the hit
            return Decision(
                allowed=False,
                counted=_as_counted(wants, stats, spent=False),
                refused_by=limit,
                retry_after=max(1, math.ceil(s.reset_time - time.time())),
            )
    return Decision(allowed=True, counted=_as_counted(wants, stats, spent=True))


def _prefix() -> str:
    return f"{settings.CACHE_KEY_PREFIX}:LIMITS"


class AsyncLimiter:
    """The library's async Redis storage (redis-py's asyncio client) and the two strategies we use."""

    def __init__(self, redis_url: str | None = None, key_prefix: str | None = None) -> None:
        self.storage = aio_storage.RedisStorage(
            "async+" + (redis_url or settings.REDIS_URL),
            implementation="redispy",
            key_prefix=key_prefix or _prefix(),
            wrap_exceptions=True,
            socket_timeout=2,
            socket_connect_timeout=2,
        )
        self.moving = aio_strategies.MovingWindowRateLimiter(self.storage)
        self.sliding = aio_strategies.SlidingWindowCounterRateLimiter(self.storage)

    def _strategy(self, limit: Limit) -> aio_strategies.RateLimiter:
        return self.moving if limit.moving else self.sliding

    async def admit(self, wants: Sequence[tuple[Limit, int]]) -> Decision:
        """Count `cost` against every limit, or against none of them."""
        if not wants:
            return Decision(allowed=True)
        try:
            stats = await asyncio.gather(
                *(self._strategy(limit).get_window_stats(limit.item, *limit.identifiers) for limit, _ in wants)
            )
            refusal = _decide(wants, stats)
            if refusal is not None:
                return refusal
            hits = await asyncio.gather(
                *(self._strategy(limit).hit(limit.item, *limit.identifiers, cost=cost) for limit, cost in wants)
            )
        except _STORAGE_ERRORS as exc:
            return _storage_failed(exc)
        return _admitted(wants, stats, hits)

    async def add(self, limit: Limit, cost: int) -> None:
        """Count `cost` more without refusing (the real token count came in above the admission estimate)."""
        if cost <= 0 or limit.moving:
            return
        try:
            await self.storage.acquire_sliding_window_entry(
                limit.item.key_for(*limit.identifiers), _NO_LIMIT, limit.item.get_expiry(), cost
            )
        except _STORAGE_ERRORS as exc:
            logger.warning("could not add %s %s to %s: %s", cost, limit.kind, limit.describe(), exc)


class SyncLimiter:
    """The same, for sync code paths (document ingestion endpoints); the same Redis keys as AsyncLimiter."""

    def __init__(self, redis_url: str | None = None, key_prefix: str | None = None) -> None:
        self.storage = RedisStorage(
            redis_url or settings.REDIS_URL,
            key_prefix=key_prefix or _prefix(),
            wrap_exceptions=True,
            socket_timeout=2,
            socket_connect_timeout=2,
        )
        self.moving = sync_strategies.MovingWindowRateLimiter(self.storage)
        self.sliding = sync_strategies.SlidingWindowCounterRateLimiter(self.storage)

    def _strategy(self, limit: Limit) -> sync_strategies.RateLimiter:
        return self.moving if limit.moving else self.sliding

    def admit(self, wants: Sequence[tuple[Limit, int]]) -> Decision:
        if not wants:
            return Decision(allowed=True)
        try:
            stats = [self._strategy(limit).get_window_stats(limit.item, *limit.identifiers) for limit, _ in wants]
            refusal = _decide(wants, stats)
            if refusal is not None:
                return refusal
            hits = [self._strategy(limit).hit(limit.item, *limit.identifiers, cost=cost) for limit, cost in wants]
        except _STORAGE_ERRORS as exc:
            return _storage_failed(exc)
        return _admitted(wants, stats, hits)


# One async limiter per event loop (a redis-py asyncio pool must not be shared across loops); one sync limiter.
_async_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncLimiter] = weakref.WeakKeyDictionary()
_sync_limiter: SyncLimiter | None = None
_sync_lock = threading.Lock()


def async_limiter() -> AsyncLimiter:
    loop = asyncio.get_running_loop()
    limiter = _async_limiters.get(loop)
    if limiter is None:
        limiter = _async_limiters[loop] = AsyncLimiter()
    return limiter


def sync_limiter() -> SyncLimiter:
    global _sync_limiter
    with _sync_lock:
        if _sync_limiter is None:
            _sync_limiter = SyncLimiter()
        return _sync_limiter
