"""The limiter on the real Redis: exact counts shared by separate limiter instances and by another process,
refusals that consume nothing, Retry-After, and the Redis-down policy."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import uuid

import pytest

from aivax.errors import ApiError
from quotas import limiter as limiter_module
from quotas.limiter import AsyncLimiter, Limit, SyncLimiter


def _limit(kind: str = "requests", per: str = "minute", amount: int = 3, level: str = "key") -> Limit:
    return Limit(kind=kind, per=per, amount=amount, level=level, subject=uuid.uuid4().hex)  # type: ignore[arg-type]


async def test_two_limiter_instances_share_one_exact_count() -> None:
    first, second = AsyncLimiter(), AsyncLimiter()  # two clients, as two web processes have
    limit = _limit(amount=3)
    decisions = [await lim.admit([(limit, 1)]) for lim in (first, second, first, second)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [c.remaining for d in decisions[:3] for c in d.counted] == [2, 1, 0]
    assert decisions[3].refused_by == limit
    assert 1 <= decisions[3].retry_after <= 60


async def test_a_refused_request_counts_nowhere() -> None:
    lim = AsyncLimiter()
    roomy, full = _limit(amount=10, level="key"), _limit(amount=1, level="organization")
    assert (await lim.admit([(roomy, 1), (full, 1)])).allowed
    refused = await lim.admit([(roomy, 1), (full, 1)])
    assert not refused.allowed and refused.refused_by == full
    stats = await lim.moving.get_window_stats(roomy.item, *roomy.identifiers)
    assert stats.remaining == 9  # the refused request did not take a unit from the level that had room


async def test_costs_count_in_tokens_and_a_request_larger_than_the_limit_never_fits() -> None:
    lim = AsyncLimiter()
    tokens = _limit(kind="tokens", amount=100)
    assert (await lim.admit([(tokens, 60)])).allowed
    assert not (await lim.admit([(tokens, 41)])).allowed
    assert (await lim.admit([(tokens, 40)])).allowed
    assert not (await lim.admit([(_limit(kind="tokens", amount=10), 11)])).allowed
    # The correction after the real count is known is counted even past the limit.
    await lim.add(tokens, 500)
    stats = await lim.sliding.get_window_stats(tokens.item, *tokens.identifiers)
    assert stats.remaining == 0


def test_sync_and_async_limiters_count_the_same_keys() -> None:
    import asyncio

    limit = _limit(kind="documents", amount=5)
    assert SyncLimiter().admit([(limit, 3)]).allowed
    decision = asyncio.run(AsyncLimiter().admit([(limit, 3)]))
    assert not decision.allowed
    assert SyncLimiter().admit([(limit, 2)]).allowed


async def test_another_process_counts_against_the_same_limit() -> None:
    limit = _limit(amount=5, per="day")
    script = textwrap.dedent(
        f"""
        import django
        django.setup()
        from quotas.limiter import Limit, SyncLimiter
        limit = Limit(kind="requests", per="day", amount=5, level="key", subject={limit.subject!r})
        print(sum(SyncLimiter().admit([(limit, 1)]).allowed for _ in range(4)))
        """
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "aivax.settings.test"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "4"
    lim = AsyncLimiter()
    assert (await lim.admit([(limit, 1)])).allowed
    assert not (await lim.admit([(limit, 1)])).allowed  # 4 there + 1 here = 5


def _dead_redis_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"  # nothing listens there any more


async def test_redis_down_fails_open_by_default_and_is_counted(settings, monkeypatch) -> None:
    settings.RATE_LIMIT_FAIL_OPEN = True
    logged: list[str] = []
    # (not caplog: other suites' logging set-up, e.g. Celery's, may have detached this logger from the root)
    monkeypatch.setattr(limiter_module.logger, "warning", lambda message, *args: logged.append(message % args))
    before = limiter_module.fail_open_count()
    decision = await AsyncLimiter(redis_url=_dead_redis_url()).admit([(_limit(amount=1), 1)])
    assert decision.allowed and decision.degraded
    assert limiter_module.fail_open_count() == before + 1
    assert len(logged) == 1 and "fail open" in logged[0]


async def test_redis_down_fails_closed_when_configured(settings) -> None:
    settings.RATE_LIMIT_FAIL_OPEN = False
    with pytest.raises(ApiError) as raised:
        await AsyncLimiter(redis_url=_dead_redis_url()).admit([(_limit(amount=1), 1)])
    assert raised.value.status == 503 and raised.value.code == "rate_limiter_unavailable"
    with pytest.raises(ApiError):
        SyncLimiter(redis_url=_dead_redis_url()).admit([(_limit(amount=1), 1)])
