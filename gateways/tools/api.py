"""Management API for tenants' server-side tools (envelope {message, data}, like /ai-gateways):

POST/GET /functions, GET/PATCH/DELETE /functions/{id}      (the secret is returned once, on create and rotate)
POST/GET /mcp-servers, GET/PATCH/DELETE /mcp-servers/{id}, POST /mcp-servers/{id}/refresh
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from pydantic import ConfigDict, Field

from accounts.api_auth import admin_auth, principal_of
from accounts.models import Organization
from aivax.errors import InvalidRequest
from aivax.tenancy import get_for_org_or_404
from gateways import protocol
from gateways.tools import selectors, services
from gateways.tools.models import HttpFunction, McpServer

router = Router(tags=["functions"], auth=admin_auth)


class FunctionIn(Schema):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    url: str = Field(min_length=1, max_length=500)
    description: str = ""
    parameters: dict[str, Any] | None = None
    timeoutSeconds: float = 10.0


class FunctionPatch(Schema):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    url: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    timeoutSeconds: float | None = None
    rotateSecret: bool = False


class McpServerIn(Schema):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    url: str = Field(min_length=1, max_length=500)
    authHeaderName: str = "Authorization"
    authHeaderValue: str = ""
    timeoutSeconds: float = 15.0


class McpServerPatch(Schema):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    url: str | None = None
    authHeaderName: str | None = None
    authHeaderValue: str | None = None
    timeoutSeconds: float | None = None


def _envelope(data: Any, message: str = "ok", status: int = 200) -> HttpResponse:
    return HttpResponse(
        protocol.dumps({"message": message, "data": data}), status=status, content_type="application/json"
    )


def _org(request: HttpRequest) -> int:
    return principal_of(request).organization_id


def function_out(function: HttpFunction, *, with_secret: bool = False) -> dict[str, Any]:
    data = {
        "id": str(function.pk),
        "name": function.name,
        "url": function.url,
        "description": function.description,
        "parameters": function.parameters,
        "timeoutSeconds": function.timeout_seconds,
        "createdAt": function.created_at.isoformat(),
    }
    if with_secret:
        data["secret"] = function.secret  # shown once: the tenant verifies X-Aivax-Signature with it
    return data


def server_out(server: McpServer) -> dict[str, Any]:
    return {
        "id": str(server.pk),
        "name": server.name,
        "url": server.url,
        "authHeaderName": server.auth_header_name,
        "authHeaderValue": "(set)" if server.auth_header_value else None,  # never returned
        "timeoutSeconds": server.timeout_seconds,
        "tools": server.tools,
        "toolsRefreshedAt": server.tools_refreshed_at.isoformat() if server.tools_refreshed_at else None,
        "createdAt": server.created_at.isoformat(),
    }


_FUNCTION_FIELDS = {"timeoutSeconds": "timeout_seconds"}
_SERVER_FIELDS = {
    "authHeaderName": "auth_header_name",
    "authHeaderValue": "auth_header_value",
    "timeoutSeconds": "timeout_seconds",
}


@router.post("/functions", summary="Create an HTTP function")
def create_function(request: HttpRequest, payload: FunctionIn) -> HttpResponse:
    function = services.http_function_create(
        organization=Organization.objects.get(pk=_org(request)),
        name=payload.name,
        url=payload.url,
        description=payload.description,
        parameters=payload.parameters,
        timeout_seconds=payload.timeoutSeconds,
    )
    return _envelope(function_out(function, with_secret=True), "Function created.", status=201)


@router.get("/functions", summary="List HTTP functions")
def list_functions(request: HttpRequest) -> HttpResponse:
    return _envelope([function_out(f) for f in selectors.http_function_list(organization=_org(request))])


@router.get("/functions/{function_id}", summary="Get an HTTP function")
def get_function(request: HttpRequest, function_id: str) -> HttpResponse:
    return _envelope(function_out(get_for_org_or_404(HttpFunction, _org(request), pk=function_id)))


@router.patch("/functions/{function_id}", summary="Change an HTTP function (partial); rotateSecret issues a new one")
def patch_function(request: HttpRequest, function_id: str, payload: FunctionPatch) -> HttpResponse:
    function = get_for_org_or_404(HttpFunction, _org(request), pk=function_id)
    changes = payload.model_dump(exclude_unset=True, exclude={"rotateSecret"})
    fields = {_FUNCTION_FIELDS.get(k, k): v for k, v in changes.items()}
    function = services.http_function_update(function=function, rotate_secret=payload.rotateSecret, **fields)
    return _envelope(function_out(function, with_secret=payload.rotateSecret), "Function updated.")


@router.delete("/functions/{function_id}", summary="Delete an HTTP function")
def delete_function(request: HttpRequest, function_id: str) -> HttpResponse:
    services.http_function_delete(function=get_for_org_or_404(HttpFunction, _org(request), pk=function_id))
    return _envelope(None, "Function deleted.")


@router.post("/mcp-servers", summary="Register an MCP server (streamable HTTP) and list its tools")
def create_server(request: HttpRequest, payload: McpServerIn) -> HttpResponse:
    server = services.mcp_server_create(
        organization=Organization.objects.get(pk=_org(request)),
        name=payload.name,
        url=payload.url,
        auth_header_name=payload.authHeaderName,
        auth_header_value=payload.authHeaderValue,
        timeout_seconds=payload.timeoutSeconds,
        refresh=False,
    )
    message = "MCP server registered."
    try:
        services.mcp_server_refresh_tools(server=server)
    except InvalidRequest as exc:  # saved anyway: the tenant may fix the server and refresh
        message = f"MCP server registered. {exc.message}"
    return _envelope(server_out(server), message, status=201)


@router.get("/mcp-servers", summary="List MCP servers")
def list_servers(request: HttpRequest) -> HttpResponse:
    return _envelope([server_out(s) for s in selectors.mcp_server_list(organization=_org(request))])


@router.get("/mcp-servers/{server_id}", summary="Get an MCP server")
def get_server(request: HttpRequest, server_id: str) -> HttpResponse:
    return _envelope(server_out(get_for_org_or_404(McpServer, _org(request), pk=server_id)))


@router.patch("/mcp-servers/{server_id}", summary="Change an MCP server (partial)")
def patch_server(request: HttpRequest, server_id: str, payload: McpServerPatch) -> HttpResponse:
    server = get_for_org_or_404(McpServer, _org(request), pk=server_id)
    fields = {_SERVER_FIELDS.get(k, k): v for k, v in payload.model_dump(exclude_unset=True).items()}
    return _envelope(server_out(services.mcp_server_update(server=server, **fields)), "MCP server updated.")


@router.post("/mcp-servers/{server_id}/refresh", summary="List the MCP server's tools again")
def refresh_server(request: HttpRequest, server_id: str) -> HttpResponse:
    server = get_for_org_or_404(McpServer, _org(request), pk=server_id)
    services.mcp_server_refresh_tools(server=server)
    return _envelope(server_out(server), "Tools listed.")


@router.delete("/mcp-servers/{server_id}", summary="Delete an MCP server")
def delete_server(request: HttpRequest, server_id: str) -> HttpResponse:
    services.mcp_server_delete(server=get_for_org_or_404(McpServer, _org(request), pk=server_id))
    return _envelope(None, "MCP server deleted.")
