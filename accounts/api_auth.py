"""Django Ninja auth for /api/v1: `Authorization: Bearer <key>`, with a required scope per router."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security.base import AuthBase

from accounts.auth import Principal, aauthenticate_key, bearer_token
from accounts.models import Scope
from aivax.errors import INVALID_API_KEY_MESSAGE, AuthenticationFailed, PermissionDenied


class ApiKeyAuth(AuthBase):
    """A valid key with `scope`; scope=None accepts a key with any scope (Ninja stops at the first failing auth
    callback, so a list of one ApiKeyAuth per scope would refuse keys that lack the first scope)."""

    openapi_type = "http"
    openapi_scheme = "bearer"
    is_async = True

    def __init__(self, scope: str | None) -> None:
        self.scope = scope
        super().__init__()
        self.is_async = True  # AuthBase guesses from an `authenticate` method we do not have

    async def __call__(self, request: HttpRequest) -> Principal:
        token = bearer_token(request.headers.get("Authorization"))
        if token is None:
            raise AuthenticationFailed(
                "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
                code="missing_api_key",
            )
        principal = await aauthenticate_key(token)
        if principal.is_public:
            check_public_key(principal, scope=self.scope, origin=request.headers.get("Origin"))
        if self.scope is not None:
            principal.require_scope(self.scope)
        return principal


def check_public_key(principal: Principal, *, scope: str | None, origin: str | None) -> None:
    """A public key calls inference only, from a browser page on one of its allowed origins."""
    if scope != Scope.INFERENCE:
        raise PermissionDenied("Public keys (pk-aivax-...) can only call the inference API.", code="public_key_scope")
    if origin is None or origin not in principal.allowed_origins:
        raise PermissionDenied(
            "This public key is not allowed from this origin. Add the page's origin to the key's allowed origins.",
            code="origin_not_allowed",
        )


def principal_of(request: HttpRequest) -> Principal:
    principal = getattr(request, "auth", None)
    if not isinstance(principal, Principal):  # only reachable if a route forgot its auth
        raise AuthenticationFailed(INVALID_API_KEY_MESSAGE)
    return principal


inference_auth = ApiKeyAuth("inference")
knowledge_auth = ApiKeyAuth("knowledge")
admin_auth = ApiKeyAuth("admin")
any_scope_auth = ApiKeyAuth(None)
