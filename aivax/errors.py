"""API errors, shaped as OpenAI error objects: {"error": {"message", "type", "param", "code"}}.

Every /api/v1 endpoint (inference, management, knowledge, billing) answers errors in this one shape, so that
OpenAI SDKs raise their usual exception classes and every other client parses one format.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status: int = 400
    type: str = "invalid_request_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, type=self.type, param=self.param, code=self.code)


def error_body(message: str, *, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class InvalidRequest(ApiError):
    status = 400
    type = "invalid_request_error"


class AuthenticationFailed(ApiError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class InsufficientBalance(ApiError):
    status = 402
    type = "insufficient_quota"
    code = "insufficient_balance"


class PermissionDenied(ApiError):
    status = 403
    type = "permission_error"
    code = "permission_denied"


class NotFound(ApiError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class Conflict(ApiError):
    status = 409
    type = "invalid_request_error"
    code = "conflict"


class RateLimited(ApiError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamError(ApiError):
    status = 502
    type = "api_error"
    code = "upstream_error"


class UpstreamTimeout(ApiError):
    status = 504
    type = "api_error"
    code = "upstream_timeout"


class ServiceUnavailable(ApiError):
    """A dependency (database, Redis) is down or this process is full: nothing was done or billed; retry later.
    Raise it with a `Retry-After` header (aivax.outage.unavailable builds one)."""

    status = 503
    type = "api_error"
    code = "service_unavailable"


class ServerError(ApiError):
    status = 500
    type = "api_error"
    code = "internal_error"


INVALID_API_KEY_MESSAGE = "Incorrect API key provided. Send a valid key as 'Authorization: Bearer <key>'."
