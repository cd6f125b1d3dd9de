"""The /api/v1 API object: one NinjaAPI, one router per app, errors in the OpenAI shape."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.datastructures import MultiValueDict
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser

from aivax import inputs
from aivax.errors import INVALID_API_KEY_MESSAGE, ApiError, error_body

logger = logging.getLogger(__name__)


class CheckedParser(Parser):
    """Ninja's parser with the checks every body, query and form gets (aivax/inputs.py: no NUL, bounded depth)."""

    def parse_body(self, request: HttpRequest) -> Any:
        return inputs.loads(request.body)

    def parse_querydict(self, data: MultiValueDict, list_fields: list[str], request: HttpRequest) -> dict[str, Any]:
        result = super().parse_querydict(data, list_fields, request)
        inputs.check_value({k: v for k, v in result.items() if isinstance(v, str | list)})
        return result


api = NinjaAPI(
    title="aivax API",
    version="1",
    urls_namespace="api-v1",
    description="OpenAI-compatible inference plus management of gateways, knowledge collections and billing.",
    parser=CheckedParser(),
)


def error_response(exc: ApiError) -> JsonResponse:
    response = JsonResponse(exc.body(), status=exc.status)
    for key, value in exc.headers.items():
        response[key] = value
    return response


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return error_response(exc)


@api.exception_handler(AuthenticationError)
def _authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    body = error_body(INVALID_API_KEY_MESSAGE, type="invalid_request_error", code="invalid_api_key")
    return JsonResponse(body, status=401)


# Ninja prefixes the source ("body", "query", ...) and the schema argument name; OpenAI names the field.
_SOURCES = ("body", "query", "path", "header", "form", "file", "payload", "filters", "params", "paging")


def _param_name(loc: list[object] | tuple[object, ...]) -> str | None:
    return inputs.param_name(loc, skip=_SOURCES)


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    first = exc.errors[0] if exc.errors else {}
    param = _param_name(first.get("loc", ()))
    detail = first.get("msg", "Invalid request")
    message = f"Invalid value for '{param}': {detail}" if param else f"Invalid request: {detail}"
    return JsonResponse(
        error_body(message, type="invalid_request_error", param=param, code="invalid_value"), status=400
    )


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return JsonResponse(error_body("Not found.", type="invalid_request_error", code="not_found"), status=404)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # Ninja wraps whatever the body parser raised in "Cannot parse request body": ours says which parameter.
    if isinstance(exc.__cause__, ApiError):
        return error_response(exc.__cause__)
    return JsonResponse(error_body(str(exc), type="invalid_request_error"), status=exc.status_code)


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    body = error_body("The request body is too large.", type="invalid_request_error", code="request_too_large")
    return JsonResponse(body, status=413)


@api.exception_handler(MultiPartParserError)
def _bad_multipart(request: HttpRequest, exc: MultiPartParserError) -> HttpResponse:
    body = error_body(
        "The multipart/form-data body could not be parsed.", type="invalid_request_error", code="invalid_multipart"
    )
    return JsonResponse(body, status=400)


@api.exception_handler(SuspiciousOperation)
def _suspicious(request: HttpRequest, exc: SuspiciousOperation) -> HttpResponse:
    # Malformed multipart bodies, too many fields (TooManyFieldsSent, TooManyFilesSent) and the like.
    message = "Too many fields in the request." if isinstance(exc, TooManyFieldsSent) else "Malformed request."
    return JsonResponse(error_body(message, type="invalid_request_error", code="bad_request"), status=400)


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    from aivax.outage import unavailable_for

    # A database or Redis outage (or a pool wait that ran out) is a 503 with Retry-After, not a 500.
    if (outage := unavailable_for(exc)) is not None:
        return error_response(outage)
    logger.exception("Unhandled error on %s %s", request.method, request.path)
    return JsonResponse(
        error_body("The server had an error while processing your request.", type="api_error", code="internal_error"),
        status=500,
    )


def _mount_routers() -> None:
    from accounts.api import router as accounts_router
    from billing.api import router as billing_router
    from gateways.api import router as gateways_router
    from knowledge.api import router as knowledge_router

    api.add_router("", gateways_router)
    api.add_router("", knowledge_router)
    api.add_router("", billing_router)
    api.add_router("", accounts_router)


_mount_routers()
