"""Key introspection for API callers."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema

from accounts.api_auth import any_scope_auth, principal_of

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
