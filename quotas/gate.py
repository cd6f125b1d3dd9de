"""The rate-limit checks the rest of the code calls: inference, knowledge search, document ingestion.

Inference counts one request and the caller's messages in tokens at admission (before any work or balance is
reserved, so a refused request costs, reserves and bills nothing), then adds the difference once the real count
(the whole prompt with the gateway's instructions and grounding, plus the completion) is known (`record_tokens`).
A real count below the estimate is not given back (`limits` cannot take units back); the estimate covers only
part of the real prompt, so that is rare and small. Knowledge searches count as requests (not tokens);
documents count against the documents limits only.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from redis.exceptions import RedisError

from aivax import tokens
from aivax.errors import RateLimited
from quotas import policy
from quotas.limiter import Counted, Decision, Kind, Limit, async_limiter, sync_limiter
from quotas.policy import Limits, OrganizationLimits

logger = logging.getLogger(__name__)


class Subject(Protocol):
    """Who is asking: an API key's principal or a chat caller (key_id None for a console user)."""

    organization_id: int

    @property
    def key_id(self) -> object | None: ...


def _key_limits(subject: Subject) -> Limits | None:
    return getattr(subject, "rate_limits", None)


def _format_reset(seconds: float) -> str:
    """OpenAI's duration format: 20ms, 1s, 6m0s, 1h2m3s."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    total = math.ceil(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def _tightest(counted: tuple[Counted, ...], kind: Kind) -> Counted | None:
    mine = [c for c in counted if c.limit.kind == kind]
    return min(mine, key=lambda c: (c.remaining, c.limit.amount)) if mine else None


def ratelimit_headers(decision: Decision) -> dict[str, str]:
    """OpenAI's x-ratelimit-* headers, from the tightest applicable limit of each kind."""
    headers: dict[str, str] = {}
    now = time.time()
    kinds: tuple[Kind, ...] = ("requests", "tokens")
    for kind in kinds:
        tightest = _tightest(decision.counted, kind)
        if tightest is None:
            continue
        headers[f"x-ratelimit-limit-{kind}"] = str(tightest.limit.amount)
        headers[f"x-ratelimit-remaining-{kind}"] = str(tightest.remaining)
        headers[f"x-ratelimit-reset-{kind}"] = _format_reset(max(0.0, tightest.reset_at - now))
    return headers


def _refuse(decision: Decision, wanted: dict[Kind, int]) -> RateLimited:
    limit = decision.refused_by
    assert limit is not None
    requested = wanted.get(limit.kind, 1)
    if requested > limit.amount:
        message = (
            f"Request too large: it needs {requested} {limit.kind} and the limit is {limit.describe()}. "
            "Send less at once."
        )
    else:
        message = f"Rate limit reached: {limit.describe()}. Please try again in {decision.retry_after}s."
    return RateLimited(message, headers={"Retry-After": str(decision.retry_after), **ratelimit_headers(decision)})


async def _org_limits(organization_id: int) -> OrganizationLimits:
    try:
        return await policy.aorganization_limits(organization_id)
    except (RedisError, OSError):  # no cache: read the database; the limiter then applies the fail-open policy
        from aivax.db import run_db

        return await run_db(policy.load_from_db, organization_id)


def _wants(limits: list[Limit], costs: dict[Kind, int]) -> list[tuple[Limit, int]]:
    return [(limit, costs[limit.kind]) for limit in limits if limit.kind in costs]


@dataclass
class Admission:
    decision: Decision
    token_limits: tuple[Limit, ...]
    estimate: int

    def headers(self) -> dict[str, str]:
        return ratelimit_headers(self.decision)


# Admissions waiting for their real token count, by request id (bounded: an abandoned one ages out).
_pending: OrderedDict[str, tuple[float, Admission]] = OrderedDict()
_PENDING_MAX_AGE = 3600.0


def _remember(request_id: str, admission: Admission) -> None:
    now = time.monotonic()
    while _pending:
        oldest_id, (at, _) = next(iter(_pending.items()))
        if now - at < _PENDING_MAX_AGE and len(_pending) < 100_000:
            break
        _pending.pop(oldest_id, None)
    _pending[request_id] = (now, admission)


_INLINE_COUNT_MESSAGES = 32
_INLINE_COUNT_CHARS = 20_000


def _rough_chars(messages: Sequence[Any]) -> int:
    total = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else getattr(message, "content", None)
        total += len(content) if isinstance(content, str) else len(str(content or ""))
    return total


def estimate_prompt_tokens(messages: Sequence[Any]) -> int:
    """The caller's messages in tokens (pydantic messages or dicts); grounding and the gateway's own prompt are
    not known yet at admission and come in with the correction."""
    dicts = [m.model_dump(exclude_none=True) if hasattr(m, "model_dump") else dict(m) for m in messages]
    return tokens.count_messages(dicts)


async def admit_inference(
    subject: Subject,
    *,
    messages: Sequence[Any] = (),
    prompt_tokens: int | None = None,
    request_id: str | None = None,
) -> Admission:
    """One request and the prompt's tokens (given, or estimated from `messages`) against every level, or a
    RateLimited (429) with Retry-After."""
    if prompt_tokens is None:
        # A long conversation takes milliseconds to tokenize: count it off the event loop so other streams and
        # /healthz are not stalled meanwhile (short ones are cheaper inline than a thread hop).
        if len(messages) > _INLINE_COUNT_MESSAGES or _rough_chars(messages) > _INLINE_COUNT_CHARS:
            prompt_tokens = await asyncio.to_thread(estimate_prompt_tokens, messages)
        else:
            prompt_tokens = estimate_prompt_tokens(messages)
    org = await _org_limits(subject.organization_id)
    limits = policy.applicable(
        organization_id=subject.organization_id,
        key_id=subject.key_id,
        key=_key_limits(subject),
        org=org,
        kinds=("requests", "tokens"),
    )
    costs: dict[Kind, int] = {"requests": 1, "tokens": max(0, int(prompt_tokens))}
    decision = await async_limiter().admit(_wants(limits, costs))
    if not decision.allowed:
        raise _refuse(decision, costs)
    admission = Admission(
        decision=decision, token_limits=tuple(x for x in limits if x.kind == "tokens"), estimate=costs["tokens"]
    )
    if request_id is not None and admission.token_limits:
        _remember(request_id, admission)
    return admission


async def record_tokens(request_id: str, total_tokens: int) -> None:
    """The real prompt+completion count of an admitted request: count what the estimate did not cover."""
    entry = _pending.pop(request_id, None)
    if entry is None:
        return
    admission = entry[1]
    extra = int(total_tokens) - admission.estimate
    if extra <= 0:
        return
    limiter = async_limiter()
    for limit in admission.token_limits:
        await limiter.add(limit, extra)


async def admit_search(subject: Subject) -> None:
    """A knowledge search counts as one request at every level."""
    org = await _org_limits(subject.organization_id)
    limits = policy.applicable(
        organization_id=subject.organization_id,
        key_id=subject.key_id,
        key=_key_limits(subject),
        org=org,
        kinds=("requests",),
    )
    decision = await async_limiter().admit(_wants(limits, {"requests": 1}))
    if not decision.allowed:
        raise _refuse(decision, {"requests": 1})


def admit_documents(*, organization_id: int, count: int) -> None:
    """`count` documents to ingest, against the organization's and its plan's documents limits (sync)."""
    if count <= 0:
        return
    try:
        org = policy.organization_limits(organization_id)
    except (RedisError, OSError):
        org = policy.load_from_db(organization_id)
    limits = policy.applicable(organization_id=organization_id, key_id=None, key=None, org=org, kinds=("documents",))
    decision = sync_limiter().admit(_wants(limits, {"documents": count}))
    if not decision.allowed:
        raise _refuse(decision, {"documents": count})
