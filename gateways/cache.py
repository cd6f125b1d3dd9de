"""Cache of resolved gateways (see gateways.resolve): Redis entries dropped on every edit, so changes apply at once.

Redis down: the edit is saved all the same (the database is the truth and lookups read it while Redis is down);
the failed invalidation is logged and counted, and an entry that survives the outage expires within
gateways.resolve.CACHE_TTL_SECONDS.
"""

from __future__ import annotations

from aivax import outage
from aivax.redis_client import redis_failed, rkey, sync_redis
from gateways.models import Gateway


def entry_key(organization_id: int, ref: str) -> str:
    return rkey("gw", organization_id, ref)


def forget(gateway: Gateway) -> None:
    try:
        sync_redis().delete(
            entry_key(gateway.organization_id, str(gateway.pk)), entry_key(gateway.organization_id, gateway.slug)
        )
    except outage.REDIS_ERRORS as exc:
        redis_failed(exc, "gateway_forget")
    forget_organization(gateway.organization_id)


def _delete_matching(pattern: str) -> None:
    client = sync_redis()
    try:
        keys = list(client.scan_iter(match=pattern, count=500))
        if keys:
            client.delete(*keys)
    except outage.REDIS_ERRORS as exc:
        redis_failed(exc, "gateway_forget")


def forget_organization(organization_id: int) -> None:
    _delete_matching(entry_key(organization_id, "*"))


def forget_all() -> None:
    _delete_matching(rkey("gw", "*"))
