"""The inference API (OpenAI-compatible) and the gateway management API (AIVAX-shaped)."""

from __future__ import annotations

import asyncio
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router

from accounts.api_auth import admin_auth, inference_auth, principal_of
from accounts.auth import Principal
from accounts.models import Organization
from accounts.public_keys import public_request_body
from aivax.db import run_db
from gateways import idempotency, protocol, selectors, services
from gateways.chat import Caller, handle_chat
from gateways.responses.api import router as responses_router
from gateways.schemas import GatewayIn, GatewayPatch, gateway_out
from gateways.tools.api import router as tools_router

router = Router(tags=["inference"])


# Bodies above this size are parsed and validated in a worker thread, off the event loop.
_OFFLOAD_BODY_BYTES = 256 * 1024


async def _chat(request: HttpRequest) -> HttpResponse:
    principal = principal_of(request)
    body = public_request_body(request.body) if principal.is_public else request.body
    if len(body) > _OFFLOAD_BODY_BYTES:
        chat_request = await asyncio.to_thread(protocol.parse_chat_request, body)
    else:
        chat_request = protocol.parse_chat_request(body)
    caller = Caller(
        organization_id=principal.organization_id,
        key_id=principal.key_id,
        allowed_gateway_ids=principal.allowed_gateway_ids,
        rate_limits=principal.rate_limits,
    )
    body_key = (chat_request.model_extra or {}).get(idempotency.BODY_FIELD)
    key = idempotency.key_of(request.headers.get(idempotency.HEADER), body_key)
    if key is None:
        return await handle_chat(caller, chat_request)
    return await idempotency.once(
        organization_id=principal.organization_id,
        key=key,
        digest=idempotency.body_hash(chat_request.model_dump(mode="json", exclude_none=True)),
        run=lambda request_id: handle_chat(caller, chat_request, request_id=request_id),
    )


# The body is parsed by protocol.parse_chat_request (orjson, cheap checks first) rather than by Ninja; the
# OpenAPI document still publishes the real request schema, so clients and the API fuzzer see it.
_CHAT_OPENAPI = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": protocol.request_schema()}}}
}


@router.post(
    "/chat/completions",
    auth=inference_auth,
    summary="Create a chat completion (OpenAI-compatible)",
    openapi_extra=_CHAT_OPENAPI,
)
async def chat_completions(request: HttpRequest) -> HttpResponse:
    return await _chat(request)


@router.post(
    "/chat-completions",
    auth=inference_auth,
    summary="Alias of /chat/completions (AIVAX path)",
    openapi_extra=_CHAT_OPENAPI,
)
async def chat_completions_alias(request: HttpRequest) -> HttpResponse:
    return await _chat(request)


def _model_object(gateway: Any) -> dict[str, Any]:
    return {
        "id": gateway.slug,
        "object": "model",
        "created": int(gateway.created_at.timestamp()),
        "owned_by": "organization",
        "gateway_id": str(gateway.pk),
        "name": gateway.name,
        "upstream": gateway.catalog_model.name if gateway.catalog_model_id else gateway.byo_endpoint.model_name,
    }


def _list_models(principal: Principal) -> dict[str, Any]:
    gateways = selectors.gateway_list(organization=principal.organization_id).filter(is_active=True)
    if principal.allowed_gateway_ids:  # only the gateways this key may use
        gateways = gateways.filter(pk__in=principal.allowed_gateway_ids)
    return {"object": "list", "data": [_model_object(g) for g in gateways]}


def _get_model(principal: Principal, ref: str) -> dict[str, Any]:
    from django.http import Http404

    from aivax.errors import NotFound

    try:
        gateway = selectors.gateway_get(organization=principal.organization_id, ref=ref)
        if not principal.may_use_gateway(gateway.pk):
            raise Http404(ref)  # a gateway the key may not use is not shown to it
        return _model_object(gateway)
    except Http404 as exc:
        raise NotFound(
            f"The model '{ref}' does not exist or you do not have access to it.", param="model", code="model_not_found"
        ) from exc


@router.get("/models", auth=inference_auth, summary="The gateways this key may use, as OpenAI models")
async def list_models(request: HttpRequest) -> HttpResponse:
    body = await run_db(_list_models, principal_of(request))
    return HttpResponse(protocol.dumps(body), content_type="application/json")


@router.get("/models/{path:model_id}", auth=inference_auth, summary="One gateway, as an OpenAI model")
async def get_model(request: HttpRequest, model_id: str) -> HttpResponse:
    body = await run_db(_get_model, principal_of(request), model_id)
    return HttpResponse(protocol.dumps(body), content_type="application/json")


# Management API: envelope {message, data}; errors are OpenAI error objects like everywhere on /api/v1.
manage = Router(tags=["ai-gateways"], auth=admin_auth)


def _envelope(data: Any, message: str = "ok", status: int = 200) -> HttpResponse:
    return HttpResponse(
        protocol.dumps({"message": message, "data": data}), status=status, content_type="application/json"
    )


@manage.post("/ai-gateways", summary="Create a gateway")
def create_gateway(request: HttpRequest, payload: GatewayIn) -> HttpResponse:
    organization = Organization.objects.get(pk=principal_of(request).organization_id)
    gateway = services.gateway_create_from_parameters(
        organization=organization, name=payload.name, parameters=payload.parameters.model_dump(exclude_unset=True)
    )
    return _envelope(gateway_out(gateway), "Gateway created.", status=201)


@manage.get("/ai-gateways", summary="List gateways")
def list_gateways(request: HttpRequest) -> HttpResponse:
    gateways = selectors.gateway_list(organization=principal_of(request).organization_id)
    return _envelope([gateway_out(g) for g in gateways])


@manage.get("/ai-gateways/{gateway_id}", summary="Get a gateway")
def get_gateway(request: HttpRequest, gateway_id: str) -> HttpResponse:
    gateway = selectors.gateway_get(organization=principal_of(request).organization_id, ref=gateway_id)
    return _envelope(gateway_out(gateway))


@manage.patch("/ai-gateways/{gateway_id}", summary="Change a gateway (partial)")
def patch_gateway(request: HttpRequest, gateway_id: str, payload: GatewayPatch) -> HttpResponse:
    gateway = selectors.gateway_get(organization=principal_of(request).organization_id, ref=gateway_id)
    parameters = payload.parameters.model_dump(exclude_unset=True) if payload.parameters else {}
    gateway = services.gateway_update_from_parameters(gateway=gateway, name=payload.name, parameters=parameters)
    return _envelope(gateway_out(gateway), "Gateway updated.")


@manage.delete("/ai-gateways/{gateway_id}", summary="Delete a gateway")
def delete_gateway(request: HttpRequest, gateway_id: str) -> HttpResponse:
    gateway = selectors.gateway_get(organization=principal_of(request).organization_id, ref=gateway_id)
    services.gateway_delete(gateway=gateway)
    return _envelope(None, "Gateway deleted.")


router.add_router("", manage)
router.add_router("", responses_router)
router.add_router("", tools_router)
