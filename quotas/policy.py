"""Which limits apply to a caller: its key's, its organization's and its organization's plan's, all at once.

The organization's own limits and its plan's are read from the database once and kept in Redis (one GET per
request); saving or deleting an organization or a plan deletes the cached entries on commit (quotas/signals.py),
so a change made in the admin applies to the next request in every process.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from django.conf import settings

from aivax.redis_client import async_redis, rkey, sync_redis
from quotas.limiter import Kind, Limit, Per

CACHE_TTL_SECONDS = 300


@dataclass(frozen=True)
class Limits:
    """The numbers of one level; None is no limit at that level."""

    requests_per_minute: int | None = None
    requests_per_day: int | None = None
    tokens_per_minute: int | None = None
    documents_per_minute: int | None = None
    documents_per_day: int | None = None

    @classmethod
    def of(cls, obj: Any) -> Limits:
        """From any object (a model, a dict) with some of these attribute names."""
        get = obj.get if isinstance(obj, dict) else lambda name: getattr(obj, name, None)
        return cls(**{f.name: get(f.name) for f in fields(cls)})

    def to_dict(self) -> dict[str, int | None]:
        return asdict(self)

    def within(self, other: Limits) -> list[str]:
        """The names of the limits where self grants more than `other` (None is unlimited)."""
        wider = []
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if theirs is not None and (mine is None or mine > theirs):
                wider.append(f.name)
        return wider

    def capped_by(self, other: Limits) -> Limits:
        """Each limit no wider than `other`'s: a missing one is inherited."""
        values = {}
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            values[f.name] = theirs if mine is None else (mine if theirs is None else min(mine, theirs))
        return Limits(**values)


_FIELDS: tuple[tuple[str, Kind, Per], ...] = (
    ("requests_per_minute", "requests", "minute"),
    ("requests_per_day", "requests", "day"),
    ("tokens_per_minute", "tokens", "minute"),
    ("documents_per_minute", "documents", "minute"),
    ("documents_per_day", "documents", "day"),
)


def limits_at(level: str, subject: object, limits: Limits, kinds: tuple[Kind, ...]) -> list[Limit]:
    out = []
    for name, kind, per in _FIELDS:
        amount = getattr(limits, name)
        if kind in kinds and amount is not None:
            out.append(Limit(kind=kind, per=per, amount=int(amount), level=level, subject=str(subject)))
    return out


def key_limits(limits: Limits | None) -> Limits:
    """A key's own limits, with the server-wide default requests-per-minute when it sets none."""
    limits = limits or Limits()
    default_rpm = int(settings.RATE_LIMIT_REQUESTS_PER_MINUTE or 0)
    if limits.requests_per_minute is None and default_rpm > 0:
        limits = Limits(**{**limits.to_dict(), "requests_per_minute": default_rpm})
    return limits


@dataclass(frozen=True)
class OrganizationLimits:
    organization: Limits
    plan: Limits

    def to_json(self) -> str:
        return json.dumps({"organization": self.organization.to_dict(), "plan": self.plan.to_dict()})

    @classmethod
    def from_json(cls, raw: str | bytes) -> OrganizationLimits:
        data = json.loads(raw)
        return cls(organization=Limits.of(data["organization"]), plan=Limits.of(data["plan"]))


def cache_key(organization_id: int) -> str:
    return rkey("quota-org", organization_id)


def load_from_db(organization_id: int) -> OrganizationLimits:
    from accounts.models import Organization
    from quotas.models import Plan

    org = Organization.objects.select_related("plan").filter(pk=organization_id).first()
    plan = (org.plan if org is not None else None) or Plan.objects.filter(is_default=True).first()
    return OrganizationLimits(
        organization=Limits.of(org) if org else Limits(), plan=Limits.of(plan) if plan else Limits()
    )


def organization_limits(organization_id: int) -> OrganizationLimits:
    client = sync_redis()
    cached = client.get(cache_key(organization_id))
    if cached is not None:
        return OrganizationLimits.from_json(cached)
    found = load_from_db(organization_id)
    client.set(cache_key(organization_id), found.to_json(), ex=CACHE_TTL_SECONDS)
    return found


async def aorganization_limits(organization_id: int) -> OrganizationLimits:
    from aivax.db import run_db

    client = async_redis()
    cached = await client.get(cache_key(organization_id))
    if cached is not None:
        return OrganizationLimits.from_json(cached)
    found = await run_db(load_from_db, organization_id)
    await client.set(cache_key(organization_id), found.to_json(), ex=CACHE_TTL_SECONDS)
    return found


def forget_organizations(organization_ids: list[int] | None = None) -> None:
    """Drop cached limits: of these organizations, or of every organization (a plan changed)."""
    client = sync_redis()
    if organization_ids is not None:
        if organization_ids:
            client.delete(*(cache_key(i) for i in organization_ids))
        return
    batch = []
    for key in client.scan_iter(match=rkey("quota-org", "*"), count=500):
        batch.append(key)
        if len(batch) >= 500:
            client.delete(*batch)
            batch = []
    if batch:
        client.delete(*batch)


def applicable(
    *,
    organization_id: int,
    key_id: object | None,
    key: Limits | None,
    org: OrganizationLimits,
    kinds: tuple[Kind, ...],
) -> list[Limit]:
    """Every limit that applies, narrowest level first."""
    found: list[Limit] = []
    if key_id is not None:
        found += limits_at("key", key_id, key_limits(key), kinds)
    found += limits_at("organization", organization_id, org.organization, kinds)
    found += limits_at("plan", organization_id, org.plan, kinds)
    return found
