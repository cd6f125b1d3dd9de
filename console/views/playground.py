"""Playground: chat with a gateway in the browser, streamed. The browser holds no API key: it posts to a console
endpoint (session + CSRF) that hands the request to the inference service, which streams OpenAI SSE back."""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from aivax.errors import error_body
from aivax.tenancy import aget_for_org_or_404, get_for_org_or_404
from console import optional, selectors, usage
from console.context import aresolve, console_view, render_console
from gateways.models import Gateway

MAX_BODY_MESSAGES = 200


@console_view()
def playground_index(request: HttpRequest) -> HttpResponse:
    org = request.console.organization  # type: ignore[attr-defined]
    first = selectors.gateway_list(organization=org).filter(is_active=True).first()
    if first is not None:
        return redirect("gateway-playground", pk=first.pk)
    return render_console(request, "console/playground.html", {"gateway": None, "gateways": []})


@console_view()
def playground(request: HttpRequest, pk: str) -> HttpResponse:
    org = request.console.organization  # type: ignore[attr-defined]
    gateway = get_for_org_or_404(Gateway, org, pk=pk)
    return render_console(
        request,
        "console/playground.html",
        {
            "gateway": gateway,
            "gateways": selectors.gateway_list(organization=org),
            "account": usage.account_for(organization_id=org.pk),
        },
    )


def _error(message: str, status: int, *, param: str | None = None, code: str | None = None) -> JsonResponse:
    kind = "invalid_request_error" if status < 500 else "api_error"
    return JsonResponse(error_body(message, type=kind, param=param, code=code), status=status)


def _payload(request: HttpRequest, gateway: Gateway) -> dict[str, Any] | JsonResponse:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return _error("The body must be a JSON chat request.", 400)
    if not isinstance(body, dict):
        return _error("The body must be a JSON object.", 400)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or len(messages) > MAX_BODY_MESSAGES:
        return _error("'messages' must be a non-empty list.", 400, param="messages")
    body["model"] = str(gateway.pk)
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    return body


@require_POST
async def playground_chat(request: HttpRequest, pk: str) -> HttpResponse:
    """POST /console/gateways/<uuid>/playground/chat: an OpenAI chat request in, the SSE stream out."""
    console = await aresolve(request)
    if console is None:
        return _error("Sign in to use the playground.", 401, code="not_signed_in")
    if not console.can_build:
        return _error("Your role cannot use the playground.", 403, code="permission_denied")
    try:
        gateway = await aget_for_org_or_404(Gateway, console.organization, pk=pk)
    except Http404:
        return _error("Gateway not found.", 404, code="not_found")
    payload = _payload(request, gateway)
    if isinstance(payload, JsonResponse):
        return payload
    # The API switch: the same gateway and service, spoken as chat completions or as the Responses API.
    if payload.pop("api", None) == "responses":
        stream = optional.function("gateways.responses.service", "console_responses_stream")
    else:
        stream = optional.function("gateways.chat", "console_chat_stream")
    if stream is None:
        return _error("The inference service is not available yet.", 503, code="unavailable")
    return await stream(organization_id=console.organization.pk, user_id=console.user.pk, payload=payload)
