"""Requests per minute per API key (fixed one-minute windows in Redis; one round trip per request)."""

from __future__ import annotations

import time

from django.conf import settings

from aivax.errors import RateLimited
from aivax.redis_client import async_redis, rkey


async def check_rate_limit(subject: str) -> None:
    limit = int(getattr(settings, "RATE_LIMIT_REQUESTS_PER_MINUTE", 0) or 0)
    if limit <= 0:
        return
    window = int(time.time() // 60)
    key = rkey("rl", subject, window)
    async with async_redis().pipeline(transaction=False) as pipe:
        pipe.incr(key)
        pipe.expire(key, 90)
        count, _ = await pipe.execute()
    if count > limit:
        retry_after = 60 - int(time.time()) % 60
        raise RateLimited(
            f"Rate limit reached: {limit} requests per minute for this API key. Try again in {retry_after}s.",
            headers={"Retry-After": str(retry_after)},
        )
