"""Who is calling: API key authentication with a Redis cache in front of the database.

A key's record is cached in Redis (only there: no process keeps a copy) under its lookup prefix; any change to
the key (revoke, edit, delete; services, console, API or Django admin: accounts/receivers.py) deletes that entry
at once and on commit, so revocation is immediate for every process. `last_used_at` is written at most once a minute
per key and process, not on every request.

Redis down: every lookup reads the database instead (aivax.redis_client's cache helpers turn an outage into a
miss), so authentication keeps working. An invalidation that cannot reach Redis is logged and counted; an entry
that survives an outage (a network partition, not a restart) expires within CACHE_TTL_SECONDS.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from asgiref.sync import sync_to_async
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from accounts import keys
from accounts.models import ApiKey, KeyKind
from aivax import log, outage
from aivax.errors import INVALID_API_KEY_MESSAGE, AuthenticationFailed, PermissionDenied
from aivax.redis_client import acache_get, async_redis, redis_failed, redis_skipped, rkey, sync_redis
from quotas.policy import Limits

logger = logging.getLogger(__name__)

CACHE_TTL_SECONDS = 300
NEGATIVE_TTL_SECONDS = 30
TOUCH_INTERVAL_SECONDS = 60
_last_touch: dict[uuid.UUID, float] = {}


@dataclass(frozen=True)
class Principal:
    """An authenticated API key, as the rest of the code sees it."""

    key_id: uuid.UUID
    organization_id: int
    scopes: frozenset[str]
    allowed_gateway_ids: frozenset[uuid.UUID]
    digest: str
    expires_at: datetime | None
    revoked: bool
    kind: str = KeyKind.SECRET
    allowed_origins: frozenset[str] = frozenset()
    rate_limits: Limits | None = None

    @property
    def is_public(self) -> bool:
        return self.kind == KeyKind.PUBLIC

    def require_scope(self, scope: str) -> None:
        if scope not in self.scopes:
            raise PermissionDenied(f"This API key lacks the '{scope}' scope.", code="missing_scope")

    def may_use_gateway(self, gateway_id: uuid.UUID) -> bool:
        return not self.allowed_gateway_ids or gateway_id in self.allowed_gateway_ids

    def to_json(self) -> str:
        return json.dumps(
            {
                "key_id": str(self.key_id),
                "organization_id": self.organization_id,
                "scopes": sorted(self.scopes),
                "allowed_gateway_ids": sorted(str(g) for g in self.allowed_gateway_ids),
                "digest": self.digest,
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
                "revoked": self.revoked,
                "kind": self.kind,
                "allowed_origins": sorted(self.allowed_origins),
                "rate_limits": self.rate_limits.to_dict() if self.rate_limits else None,
            }
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Principal:
        data = json.loads(raw)
        return cls(
            key_id=uuid.UUID(data["key_id"]),
            organization_id=data["organization_id"],
            scopes=frozenset(data["scopes"]),
            allowed_gateway_ids=frozenset(uuid.UUID(g) for g in data["allowed_gateway_ids"]),
            digest=data["digest"],
            expires_at=datetime.fromisoformat(data["expires_at"]) if data["expires_at"] else None,
            revoked=data["revoked"],
            kind=data.get("kind", KeyKind.SECRET),
            allowed_origins=frozenset(data.get("allowed_origins") or ()),
            rate_limits=Limits.of(data["rate_limits"]) if data.get("rate_limits") else None,
        )

    @classmethod
    def from_key(cls, key: ApiKey) -> Principal:
        return cls(
            key_id=key.id,
            organization_id=key.organization_id,
            scopes=frozenset(key.scopes),
            allowed_gateway_ids=frozenset(key.allowed_gateway_ids),
            digest=key.digest,
            expires_at=key.expires_at,
            revoked=key.revoked_at is not None,
            kind=key.kind,
            allowed_origins=frozenset(key.allowed_origins),
            rate_limits=Limits.of(key),
        )


_MISSING = "-"


def _cache_key(prefix: str) -> str:
    return rkey("apikey", prefix)


# A change leaves a short-lived marker: a request that read the old row just before the change (its DB read
# raced the commit) must not put it back in the cache after the change deleted it.
CHANGED_TTL_SECONDS = 10
_SET_UNLESS_CHANGED = (
    "if redis.call('exists', KEYS[2]) == 0 then return redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2]) end return 0"
)


def _changed_key(prefix: str) -> str:
    return rkey("apikey-changed", prefix)


def forget_cached_key(prefix: str, *, changed: bool = True) -> None:
    """Drop the cached record; `changed` (an existing key was edited, revoked or deleted) also leaves the marker."""
    try:
        with sync_redis().pipeline(transaction=True) as pipe:
            pipe.delete(_cache_key(prefix))
            if changed:
                pipe.set(_changed_key(prefix), "1", ex=CHANGED_TTL_SECONDS)
            pipe.execute()
    except outage.REDIS_ERRORS as exc:
        redis_failed(exc, "apikey_forget")


def _cache_value(principal: Principal | None) -> tuple[str, int]:
    return (_MISSING, NEGATIVE_TTL_SECONDS) if principal is None else (principal.to_json(), CACHE_TTL_SECONDS)


def _check(principal: Principal | None, raw_key: str) -> Principal:
    # Unknown, revoked and expired keys all get the same answer.
    if principal is None or not keys.digests_match(principal.digest, raw_key):
        raise AuthenticationFailed(INVALID_API_KEY_MESSAGE)
    if principal.revoked or (principal.expires_at is not None and principal.expires_at <= timezone.now()):
        raise AuthenticationFailed(INVALID_API_KEY_MESSAGE)
    return principal


async def aauthenticate_key(raw_key: str) -> Principal:
    prefix = keys.lookup_prefix(raw_key)
    if prefix is None:
        raise AuthenticationFailed(INVALID_API_KEY_MESSAGE)
    cached = await acache_get(_cache_key(prefix), what="apikey")
    if cached is not None:
        principal = None if cached == _MISSING.encode() else Principal.from_json(cached)
    else:
        key = await ApiKey.unscoped.filter(prefix=prefix).afirst()
        principal = Principal.from_key(key) if key else None
        if not redis_skipped():
            try:
                value, ttl = _cache_value(principal)
                await async_redis().eval(_SET_UNLESS_CHANGED, 2, _cache_key(prefix), _changed_key(prefix), value, ttl)
            except outage.REDIS_ERRORS as exc:
                redis_failed(exc, "apikey")
    principal = _check(principal, raw_key)
    log.annotate(organization_id=principal.organization_id, key_prefix=prefix)
    if _touch_due(principal.key_id):
        await sync_to_async(_touch_best_effort, thread_sensitive=True)(principal.key_id)
    return principal


def _touch_best_effort(key_id: uuid.UUID) -> None:
    """Record a key's last use; a failed bookkeeping write must not fail the request it describes. After a
    database restart this is often the first statement on the shared ORM thread's dead connection: dropping
    that connection here lets the next statement reconnect instead of failing too."""
    try:
        ApiKey.unscoped.filter(pk=key_id).update(last_used_at=timezone.now())
    except DatabaseError:
        logger.warning("could not record the last use of API key %s", key_id)
        close_old_connections()


def _touch_due(key_id: uuid.UUID) -> bool:
    now = time.monotonic()
    last = _last_touch.get(key_id)
    if last is not None and now - last < TOUCH_INTERVAL_SECONDS:
        return False
    _last_touch[key_id] = now
    return True


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
