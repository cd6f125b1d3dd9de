"""POST /responses, GET and DELETE /responses/{id}: thin endpoints over the Responses service."""

from __future__ import annotations

from typing import Literal

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from ninja import Query, Router

from accounts.api_auth import inference_auth, principal_of
from aivax.db import run_db
from gateways import protocol as chat_protocol
from gateways.chat import Caller
from gateways.responses import selectors, services
from gateways.responses.items import input_items_page
from gateways.responses.request import parse_request
from gateways.responses.service import handle_response

router = Router(tags=["inference"], auth=inference_auth)


def _json(body: object) -> HttpResponse:
    return HttpResponse(chat_protocol.dumps(body), content_type="application/json")


@router.post("/responses", summary="Create a model response (OpenAI Responses API)")
async def create_response(request: HttpRequest) -> HttpResponseBase:
    principal = principal_of(request)
    caller = Caller(
        organization_id=principal.organization_id,
        key_id=principal.key_id,
        allowed_gateway_ids=principal.allowed_gateway_ids,
    )
    return await handle_response(caller, parse_request(request.body))


@router.get("/responses/{response_id}", summary="Get a stored response")
async def get_response(request: HttpRequest, response_id: str) -> HttpResponse:
    stored = await run_db(
        selectors.response_get, organization_id=principal_of(request).organization_id, response_id=response_id
    )
    return _json(stored.body)


@router.get("/responses/{response_id}/input_items", summary="The input items of a stored response")
async def list_input_items(
    request: HttpRequest,
    response_id: str,
    limit: int = Query(20, ge=1, le=100),
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> HttpResponse:
    stored = await run_db(
        selectors.response_get, organization_id=principal_of(request).organization_id, response_id=response_id
    )
    return _json(input_items_page(stored.input_items, limit=limit, order=order, after=after))


def _delete(organization_id: int, response_id: str) -> None:
    stored = selectors.response_get(organization_id=organization_id, response_id=response_id)
    services.response_delete(stored=stored)


@router.delete("/responses/{response_id}", summary="Delete a stored response")
async def delete_response(request: HttpRequest, response_id: str) -> HttpResponse:
    await run_db(_delete, principal_of(request).organization_id, response_id)
    return _json({"id": response_id, "object": "response", "deleted": True})
