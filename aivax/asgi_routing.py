"""The edges of the ASGI application: the API's handler and its one middleware, the body-size limit, start-up warming.

/api/ requests skip the browser middleware (sessions, CSRF, messages, static files: each sync middleware costs two
thread hops per request), but not what every response needs: ApiEdgeMiddleware, async and without thread hops,
checks the Host header against ALLOWED_HOSTS, adds the security headers SecurityMiddleware and
XFrameOptionsMiddleware add elsewhere, and turns every non-JSON error (Django's HTML 404 for an unknown path,
Ninja's empty 405 for a wrong method) into an OpenAI error object.

BodyLimit wraps the whole application: a body larger than MAX_REQUEST_BODY_BYTES (MAX_UPLOAD_BODY_BYTES for
multipart uploads) is refused with 413 from its Content-Length alone, or as soon as the bytes received pass the
limit, before Django spools it to memory or disk and before authentication: an anonymous client cannot fill either.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable

import orjson
from asgiref.sync import markcoroutinefunction
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.security import SecurityMiddleware

from aivax.asgi_types import App, Message, Receive, Scope, Send
from aivax.errors import error_body


class ApiASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler reads settings.MIDDLEWARE; swap in API_MIDDLEWARE for the duration of this one-time load.
        original = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.API_MIDDLEWARE
        try:
            super().load_middleware(is_async=is_async)
        finally:
            settings.MIDDLEWARE = original


_STATUS_ERRORS = {
    400: ("Bad request.", "invalid_request_error", "bad_request"),
    404: ("Unknown API path. See /api/v1/docs for the endpoints.", "invalid_request_error", "unknown_url"),
    405: ("Method not allowed on this path.", "invalid_request_error", "method_not_allowed"),
    413: ("The request body is too large.", "invalid_request_error", "request_too_large"),
}


class ApiEdgeMiddleware:
    """Host check, security headers and JSON errors for /api/ (see the module docstring). Async only."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        # Used only for its header logic (process_request/process_response are pure, no I/O).
        self.security = SecurityMiddleware(get_response)
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            request.get_host()
        except DisallowedHost:
            response: HttpResponse = JsonResponse(
                error_body("Invalid Host header.", type="invalid_request_error", code="invalid_host"), status=400
            )
            return self._secure(request, response)
        redirect = self.security.process_request(request)
        response = redirect if redirect is not None else await self.get_response(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith("application/json"):
            response = _json_error(response)
        return self._secure(request, response)

    def _secure(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response = self.security.process_response(request, response)
        if "X-Frame-Options" not in response:
            response["X-Frame-Options"] = settings.X_FRAME_OPTIONS
        return response


def _json_error(original: HttpResponse) -> HttpResponse:
    status = original.status_code
    message, kind, code = _STATUS_ERRORS.get(
        status,
        ("The server had an error while processing your request.", "api_error", "internal_error")
        if status >= 500
        else ("Invalid request.", "invalid_request_error", None),
    )
    response = JsonResponse(error_body(message, type=kind, code=code), status=status)
    for header in ("Allow", "Retry-After"):
        if header in original:
            response[header] = original[header]
    return response


class BodyLimit:
    """ASGI wrapper refusing oversized request bodies with 413 before they are read (see the module docstring)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").lower()
        limit = (
            settings.MAX_UPLOAD_BODY_BYTES
            if content_type.startswith(b"multipart/form-data")
            else settings.MAX_REQUEST_BODY_BYTES
        )
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await _refuse(scope, send, 400, "Invalid Content-Length header.", "invalid_content_length")
                return
            if length > limit:
                await _refuse(scope, send, 413, _too_large(limit), "request_too_large")
                return
        received = 0
        exceeded = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # To the application this is a client that went away: Django stops reading and answers
                    # nothing, and the 413 is sent below.
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, limited_receive, send)
        if exceeded:
            await _refuse(scope, send, 413, _too_large(limit), "request_too_large")


def _too_large(limit: int) -> str:
    return f"The request body is larger than the {limit // (1024 * 1024)} MiB this endpoint accepts."


async def _refuse(scope: Scope, send: Send, status: int, message: str, code: str) -> None:
    if scope["path"].startswith("/api/"):
        body = orjson.dumps(error_body(message, type="invalid_request_error", code=code))
        content_type = b"application/json"
    else:
        body, content_type = message.encode(), b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def warm_up() -> None:
    """Load the tokenizer now, in the background, instead of inside the first request (about a second)."""

    def _load() -> None:
        from aivax import tokens

        tokens.count_text("warm up")

    threading.Thread(target=_load, name="aivax-warm-up", daemon=True).start()
