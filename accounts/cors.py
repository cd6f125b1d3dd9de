"""CORS for public keys, on the inference API only (the /api/ middleware list, settings.API_MIDDLEWARE).

- A preflight (OPTIONS with Origin and Access-Control-Request-Method) on an inference path is answered for an
  origin that some active public key allows; any other origin gets a 403 without CORS headers, so the browser
  refuses the call. Preflights carry no key, which is why the answer cannot depend on the key.
- A real request gets `Access-Control-Allow-Origin: <origin>` only when it authenticated with a public key that
  allows that origin (accounts.api_auth refuses the key from other origins). Secret keys never get CORS
  headers: they must not be used from browsers. No credentials (cookies) are ever allowed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from accounts.auth import Principal
from accounts.models import ApiKey, KeyKind

INFERENCE_PATHS = ("/api/v1/chat/completions", "/api/v1/chat-completions", "/api/v1/models")
EXPOSED_HEADERS = (
    "x-request-id, retry-after, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, "
    "x-ratelimit-reset-requests, x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens"
)
PREFLIGHT_MAX_AGE = 600


def _is_inference(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in INFERENCE_PATHS)


async def origin_has_public_key(origin: str) -> bool:
    return await ApiKey.unscoped.filter(
        kind=KeyKind.PUBLIC, revoked_at__isnull=True, allowed_origins__contains=[origin]
    ).aexists()


class PublicKeyCorsMiddleware:
    async_capable = True
    sync_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        origin = request.headers.get("Origin")
        if origin is None or not _is_inference(request.path):
            return await self.get_response(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return await self._preflight(request, origin)
        response = await self.get_response(request)
        principal = getattr(request, "auth", None)
        if isinstance(principal, Principal) and principal.is_public and origin in principal.allowed_origins:
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            response["Vary"] = "Origin"
        return response

    async def _preflight(self, request: HttpRequest, origin: str) -> HttpResponse:
        if not await origin_has_public_key(origin):
            return HttpResponse(status=403)
        response = HttpResponse(status=204)
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        # The OpenAI JS SDK sends its own x-stainless-* headers: echo what was asked (no credentials are allowed).
        response["Access-Control-Allow-Headers"] = request.headers.get(
            "Access-Control-Request-Headers", "authorization, content-type"
        )
        response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
        response["Vary"] = "Origin"
        return response
