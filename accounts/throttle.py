"""Throttling of console sign-in and sign-up attempts, per client IP and per account (email), in Redis with the
`limits` library (fixed windows; each check is one atomic increment, so parallel attempts cannot slip past).

Every attempt counts, successful or not: a brute-force run is mostly failures anyway, and counting first is what
makes the check exact under concurrency. The windows and limits are settings (SIGNIN_ATTEMPTS_PER_IP,
SIGNIN_ATTEMPTS_PER_ACCOUNT, SIGNUPS_PER_IP, SIGNIN_WINDOW_SECONDS).

Redis down: the attempt is allowed (logged). Locking every user out of the console because the cache is away
would be worse than an unthrottled minute.
"""

from __future__ import annotations

import hashlib
import logging
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest
from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _limiter(redis_url: str, prefix: str) -> FixedWindowRateLimiter:
    return FixedWindowRateLimiter(RedisStorage(redis_url, key_prefix=f"{prefix}:throttle"))


def _client_ip(request: HttpRequest | None) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is set by the client unless a trusted proxy rewrites it.
    return (request.META.get("REMOTE_ADDR") if request is not None else None) or "unknown"


def _account(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]  # no addresses in Redis keys


def _allowed(checks: list[tuple[str, int, str]]) -> bool:
    """Count one attempt against each (namespace, limit, subject); False when any limit is exhausted."""
    window = int(settings.SIGNIN_WINDOW_SECONDS)
    try:
        limiter = _limiter(settings.REDIS_URL, settings.CACHE_KEY_PREFIX)
        results = [
            limiter.hit(RateLimitItemPerSecond(limit, window, namespace=namespace), subject)
            for namespace, limit, subject in checks
            if limit > 0
        ]
    except (StorageError, RedisError, OSError) as exc:
        logger.warning("sign-in throttle unavailable, allowing the attempt: %s", exc)
        return True
    return all(results)


def sign_in_allowed(request: HttpRequest | None, email: str) -> bool:
    return _allowed(
        [
            ("signin-ip", int(settings.SIGNIN_ATTEMPTS_PER_IP), _client_ip(request)),
            ("signin-account", int(settings.SIGNIN_ATTEMPTS_PER_ACCOUNT), _account(email)),
        ]
    )


def sign_up_allowed(request: HttpRequest | None, email: str) -> bool:
    return _allowed(
        [
            ("signup-ip", int(settings.SIGNUPS_PER_IP), _client_ip(request)),
            ("signup-account", int(settings.SIGNIN_ATTEMPTS_PER_ACCOUNT), _account(email)),
        ]
    )


def window_minutes() -> int:
    return max(1, int(settings.SIGNIN_WINDOW_SECONDS) // 60)
