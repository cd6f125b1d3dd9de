"""Django Ninja auth for /api/v1: `Authorization: Bearer <key>`, with a required scope per router."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security.base import AuthBase

from accounts.auth import Principal, aauthenticate_key, bearer_token
from aivax.errors import INVALID_API_KEY_MESSAGE, AuthenticationFailed


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
        if self.scope is not None:
            principal.require_scope(self.scope)
        return principal


def principal_of(request: HttpRequest) -> Principal:
    principal = getattr(request, "auth", None)
    if not isinstance(principal, Principal):  # only reachable if a route forgot its auth
        raise AuthenticationFailed(INVALID_API_KEY_MESSAGE)
    return principal


inference_auth = ApiKeyAuth("inference")
knowledge_auth = ApiKeyAuth("knowledge")
admin_auth = ApiKeyAuth("admin")
any_scope_auth = ApiKeyAuth(None)
