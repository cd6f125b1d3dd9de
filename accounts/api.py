"""Key introspection, and API keys managed over the API (admin scope, AIVAX envelope `{message, data}`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from pydantic import Field

from accounts import selectors, services
from accounts.api_auth import admin_auth, any_scope_auth, principal_of
from accounts.auth import Principal
from accounts.keys import KEY_LABEL, PUBLIC_KEY_LABEL
from accounts.models import ApiKey, KeyKind, Organization, Scope
from aivax.errors import PermissionDenied
from billing import money
from quotas.policy import Limits

router = Router(tags=["accounts"])


class KeyInfo(Schema):
    key_id: str
    organization_id: int
    scopes: list[str]


@router.get("/me", response=KeyInfo, auth=any_scope_auth)
async def whoami(request: HttpRequest) -> KeyInfo:
    principal = principal_of(request)
    return KeyInfo(
        key_id=str(principal.key_id),
        organization_id=principal.organization_id,
        scopes=sorted(principal.scopes),
    )


# ---- /api-keys


class LimitsIn(Schema):
    requestsPerMinute: int | None = Field(default=None, ge=1)
    requestsPerDay: int | None = Field(default=None, ge=1)
    tokensPerMinute: int | None = Field(default=None, ge=1)

    def to_limits(self) -> Limits:
        return Limits(
            requests_per_minute=self.requestsPerMinute,
            requests_per_day=self.requestsPerDay,
            tokens_per_minute=self.tokensPerMinute,
        )


class KeyIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    type: Literal["secret", "public"] = "secret"
    scopes: list[str] | None = None
    expiresAt: datetime | None = None
    gatewayIds: list[uuid.UUID] | None = None
    allowedOrigins: list[str] = Field(default_factory=list, max_length=50)
    limits: LimitsIn | None = None
    # USD per calendar month (UTC), checked inside every hold; left out: the creating key's budget, if any.
    monthlyBudget: Decimal | None = Field(default=None, ge=0, max_digits=20, decimal_places=10)


class KeyPatch(Schema):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    scopes: list[str] | None = None
    expiresAt: datetime | None = None
    gatewayIds: list[uuid.UUID] | None = None
    allowedOrigins: list[str] | None = Field(default=None, max_length=50)
    limits: LimitsIn | None = None
    monthlyBudget: Decimal | None = Field(default=None, ge=0, max_digits=20, decimal_places=10)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def key_out(key: ApiKey) -> dict[str, Any]:
    """A key as the API shows it: never the secret, never its digest."""
    label = PUBLIC_KEY_LABEL if key.kind == KeyKind.PUBLIC else KEY_LABEL
    return {
        "id": str(key.pk),
        "name": key.name,
        "type": key.kind,
        "prefix": f"{label}{key.prefix}",
        "scopes": list(key.scopes),
        "gatewayIds": [str(g) for g in key.allowed_gateway_ids],
        "allowedOrigins": list(key.allowed_origins),
        "limits": {
            "requestsPerMinute": key.requests_per_minute,
            "requestsPerDay": key.requests_per_day,
            "tokensPerMinute": key.tokens_per_minute,
        },
        "monthlyBudget": key.monthly_budget,  # a Decimal: written as an exact fixed-decimal number
        "expiresAt": _iso(key.expires_at),
        "revokedAt": _iso(key.revoked_at),
        "lastUsedAt": _iso(key.last_used_at),
        "createdAt": _iso(key.created_at),
        "active": key.is_active,
    }


def _envelope(data: Any, message: str = "ok", status: int = 200) -> HttpResponse:
    # billing.money.dumps writes money (Decimal) the one way the API does everywhere (README: "Money").
    body = money.dumps({"message": message, "data": data})
    return HttpResponse(body, status=status, content_type="application/json")


def _organization(principal: Principal) -> Organization:
    return Organization.objects.get(pk=principal.organization_id)


keys_router = Router(tags=["api-keys"], auth=admin_auth)


@keys_router.post("/api-keys", summary="Create a key (the secret is in the answer, once)")
def create_key(request: HttpRequest, payload: KeyIn) -> HttpResponse:
    principal = principal_of(request)
    scopes = payload.scopes if payload.scopes is not None else [Scope.INFERENCE]
    # What is left out is inherited from the creating key, so that the new key never grants more than it.
    gateway_ids = payload.gatewayIds if payload.gatewayIds is not None else sorted(principal.allowed_gateway_ids)
    requested = payload.limits.to_limits() if payload.limits else Limits()
    creator_limits = principal.rate_limits or Limits()
    above = [name for name in requested.within(creator_limits) if getattr(requested, name) is not None]
    if above:  # an explicit limit above the creator's is refused, not silently lowered
        raise PermissionDenied(
            f"This key cannot grant higher limits than its own: {', '.join(above)}.", code="exceeds_creator"
        )
    created = services.api_key_create(
        organization=_organization(principal),
        name=payload.name,
        kind=payload.type,
        scopes=scopes,
        expires_at=payload.expiresAt or principal.expires_at,
        allowed_gateway_ids=gateway_ids,
        allowed_origins=payload.allowedOrigins,
        limits=requested.capped_by(creator_limits),
        granted_by=principal,
    )
    budget = services.api_key_budget_within(budget=payload.monthlyBudget, granted_by=principal)
    if budget is not None:
        services.api_key_set_budget(key=created.key, budget=budget)
    data = {**key_out(created.key), "key": created.raw}
    return _envelope(data, "Key created. Store it now: it is never shown again.", status=201)


@keys_router.get("/api-keys", summary="List the organization's keys (never their secrets)")
def list_keys(request: HttpRequest) -> HttpResponse:
    keys = selectors.api_key_list(organization=principal_of(request).organization_id)
    return _envelope([key_out(k) for k in keys])


@keys_router.get("/api-keys/{key_id}", summary="Get a key")
def get_key(request: HttpRequest, key_id: uuid.UUID) -> HttpResponse:
    key = selectors.api_key_get(organization=principal_of(request).organization_id, key_id=key_id)
    return _envelope(key_out(key))


@keys_router.patch("/api-keys/{key_id}", summary="Change a key (partial); takes effect on the next request")
def patch_key(request: HttpRequest, key_id: uuid.UUID, payload: KeyPatch) -> HttpResponse:
    principal = principal_of(request)
    key = selectors.api_key_get(organization=principal.organization_id, key_id=key_id)
    key = services.api_key_edit(
        key=key,
        name=payload.name,
        scopes=payload.scopes,
        expires_at=payload.expiresAt if "expiresAt" in payload.model_fields_set else ...,
        allowed_gateway_ids=payload.gatewayIds,
        allowed_origins=payload.allowedOrigins,
        limits=payload.limits.to_limits() if payload.limits is not None else None,
        edited_by=principal,  # the key as it will be must not grant more than the key that edits it
    )
    if "monthlyBudget" in payload.model_fields_set:
        budget = services.api_key_budget_within(budget=payload.monthlyBudget, granted_by=principal)
        key = services.api_key_set_budget(key=key, budget=budget)
    return _envelope(key_out(key), "Key updated.")


@keys_router.delete("/api-keys/{key_id}", summary="Revoke a key (at once, in every process)")
def revoke_key(request: HttpRequest, key_id: uuid.UUID) -> HttpResponse:
    key = selectors.api_key_get(organization=principal_of(request).organization_id, key_id=key_id)
    key = services.api_key_revoke(key=key)
    return _envelope(key_out(key), "Key revoked.")


router.add_router("", keys_router)
