"""Cache of resolved gateways (see gateways.resolve): Redis entries dropped on every edit, so changes apply at once."""

from __future__ import annotations

from aivax.redis_client import rkey, sync_redis
from gateways.models import Gateway


def entry_key(organization_id: int, ref: str) -> str:
    return rkey("gw", organization_id, ref)


def forget(gateway: Gateway) -> None:
    sync_redis().delete(
        entry_key(gateway.organization_id, str(gateway.pk)), entry_key(gateway.organization_id, gateway.slug)
    )
    forget_organization(gateway.organization_id)


def forget_organization(organization_id: int) -> None:
    client = sync_redis()
    keys = list(client.scan_iter(match=entry_key(organization_id, "*"), count=500))
    if keys:
        client.delete(*keys)


def forget_all() -> None:
    client = sync_redis()
    keys = list(client.scan_iter(match=rkey("gw", "*"), count=500))
    if keys:
        client.delete(*keys)
