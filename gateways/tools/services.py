"""Writes for server-side tools: tenants' HTTP functions and MCP servers, and which of them a gateway may run.
Shared by the management API, the console and the admin. Every edit drops the organization's cached gateway
configurations (gateways.cache), so a changed URL or secret applies to the next request."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Organization
from aivax.errors import InvalidRequest
from aivax.outbound import validate_url
from gateways import cache as gateway_cache
from gateways.models import Gateway
from gateways.tools import mcp, signing
from gateways.tools.errors import ToolError
from gateways.tools.models import TOOL_NAME_PATTERN, GatewayTool, HttpFunction, McpServer

# Names the gateway itself gives the model; a tenant's tool may not shadow them.
RESERVED_NAMES = {"search_knowledge_base"}
MAX_TIMEOUT_SECONDS = 120.0


def _forget(organization_id: int) -> None:
    transaction.on_commit(lambda: gateway_cache.forget_organization(organization_id))


def _check_name(name: str, param: str = "name") -> str:
    name = (name or "").strip()
    if not re.match(TOOL_NAME_PATTERN, name):
        raise InvalidRequest("A function name is 1-64 letters, digits, '_' or '-'.", param=param)
    if name in RESERVED_NAMES:
        raise InvalidRequest(f"'{name}' is reserved by the gateway.", param=param)
    return name


def _check_url(url: str, *, param: str, https_only: bool) -> str:
    url = (url or "").strip()
    if https_only and urlparse(url).scheme != "https":
        raise InvalidRequest("The URL must use https.", param=param)
    validate_url(url, param=param)  # the same guard as tenants' model endpoints
    return url


def _check_timeout(value: Any) -> float:
    try:
        timeout = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest("'timeout_seconds' must be a number.", param="timeout_seconds") from exc
    if not 0.1 <= timeout <= MAX_TIMEOUT_SECONDS:
        raise InvalidRequest(
            f"'timeout_seconds' must be between 0.1 and {MAX_TIMEOUT_SECONDS:g}.", param="timeout_seconds"
        )
    return timeout


def _check_schema(parameters: Any) -> dict[str, Any]:
    if parameters in (None, ""):
        return {"type": "object", "properties": {}}
    if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
        raise InvalidRequest("'parameters' must be a JSON schema of an object.", param="parameters")
    return {"type": "object", **parameters}


def _saved(obj: Any, message: str, param: str) -> Any:
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError as exc:
        raise InvalidRequest(message, param=param) from exc
    _forget(obj.organization_id)
    return obj


def http_function_create(
    *,
    organization: Organization,
    name: str,
    url: str,
    description: str = "",
    parameters: Any = None,
    timeout_seconds: float = 10.0,
) -> HttpFunction:
    """A new function with a fresh signing secret (shown to the tenant once, by the caller)."""
    function = HttpFunction(
        organization=organization,
        name=_check_name(name),
        url=_check_url(url, param="url", https_only=settings.FUNCTIONS_REQUIRE_HTTPS),
        description=description or "",
        parameters=_check_schema(parameters),
        timeout_seconds=_check_timeout(timeout_seconds),
        secret=signing.new_secret(),
    )
    return _saved(function, f"A function named '{function.name}' exists already.", "name")


def http_function_update(*, function: HttpFunction, rotate_secret: bool = False, **fields: Any) -> HttpFunction:
    checks = {
        "name": _check_name,
        "url": lambda v: _check_url(v, param="url", https_only=settings.FUNCTIONS_REQUIRE_HTTPS),
        "parameters": _check_schema,
        "timeout_seconds": _check_timeout,
        "description": lambda v: v or "",
    }
    unknown = set(fields) - set(checks)
    if unknown:
        raise InvalidRequest(f"Unknown function field(s): {', '.join(sorted(unknown))}.", param=sorted(unknown)[0])
    for key, value in fields.items():
        setattr(function, key, checks[key](value))
    if rotate_secret:
        function.secret = signing.new_secret()
    return _saved(function, f"A function named '{function.name}' exists already.", "name")


def http_function_delete(*, function: HttpFunction) -> None:
    organization_id = function.organization_id
    function.delete()
    _forget(organization_id)


def _check_header_name(name: str) -> str:
    name = (name or "").strip()
    if name and not re.match(r"^[A-Za-z0-9-]{1,100}$", name):
        raise InvalidRequest("The auth header name is letters, digits and '-'.", param="auth_header_name")
    return name


def mcp_server_create(
    *,
    organization: Organization,
    name: str,
    url: str,
    auth_header_name: str = "Authorization",
    auth_header_value: str = "",
    timeout_seconds: float = 15.0,
    refresh: bool = True,
) -> McpServer:
    """Register a server; with `refresh`, list its tools now (a server that cannot be listed is still saved,
    and the error is raised for the caller to show)."""
    if not (name or "").strip():
        raise InvalidRequest("An MCP server needs a name.", param="name")
    server = McpServer(
        organization=organization,
        name=name.strip(),
        url=_check_url(url, param="url", https_only=False),
        auth_header_name=_check_header_name(auth_header_name),
        auth_header_value=auth_header_value or "",
        timeout_seconds=_check_timeout(timeout_seconds),
    )
    _saved(server, f"An MCP server named '{server.name}' exists already.", "name")
    if refresh:
        mcp_server_refresh_tools(server=server)
    return server


def mcp_server_update(*, server: McpServer, **fields: Any) -> McpServer:
    checks = {
        "name": lambda v: str(v or "").strip() or "",
        "url": lambda v: _check_url(v, param="url", https_only=False),
        "auth_header_name": _check_header_name,
        "auth_header_value": lambda v: v or "",
        "timeout_seconds": _check_timeout,
    }
    unknown = set(fields) - set(checks)
    if unknown:
        raise InvalidRequest(f"Unknown MCP server field(s): {', '.join(sorted(unknown))}.", param=sorted(unknown)[0])
    for key, value in fields.items():
        setattr(server, key, checks[key](value))
    if not server.name:
        raise InvalidRequest("An MCP server needs a name.", param="name")
    return _saved(server, f"An MCP server named '{server.name}' exists already.", "name")


def mcp_server_refresh_tools(*, server: McpServer) -> list[dict[str, Any]]:
    """List the server's tools (through the outbound guard) and keep the listing; InvalidRequest on failure."""
    try:
        tools = async_to_sync(mcp.list_tools)(
            server.url,
            auth_header_name=server.auth_header_name,
            auth_header_value=server.auth_header_value,
            timeout=server.timeout_seconds,
        )
    except ToolError as exc:
        raise InvalidRequest(f"Could not list the server's tools: {exc}.", param="url") from exc
    server.tools = tools
    server.tools_refreshed_at = timezone.now()
    server.save(update_fields=["tools", "tools_refreshed_at"])
    _forget(server.organization_id)
    return tools


def mcp_server_delete(*, server: McpServer) -> None:
    organization_id = server.organization_id
    server.delete()
    _forget(organization_id)


@transaction.atomic
def gateway_tools_set(
    *,
    gateway: Gateway,
    http_functions: list[HttpFunction],
    mcp_tools: list[tuple[McpServer, str]],
) -> list[GatewayTool]:
    """Replace the tools `gateway` may run. Every object must be the gateway's organization's; an MCP tool must be
    in its server's last listing; the model sees one flat namespace, so names must not repeat."""
    organization_id = gateway.organization_id
    names: list[str] = []
    for function in http_functions:
        if function.organization_id != organization_id:
            raise InvalidRequest("Unknown function.", param="functions")
        names.append(function.name)
    for server, tool_name in mcp_tools:
        if server.organization_id != organization_id:
            raise InvalidRequest("Unknown MCP server.", param="mcpTools")
        if tool_name not in {t.get("name") for t in server.tools or []}:
            raise InvalidRequest(
                f"'{tool_name}' is not among the tools of {server.name} (refresh its tool list?).", param="mcpTools"
            )
        if not re.match(TOOL_NAME_PATTERN, tool_name) or tool_name in RESERVED_NAMES:
            raise InvalidRequest(f"The tool name '{tool_name}' cannot be offered to a model.", param="mcpTools")
        names.append(tool_name)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidRequest(f"Two tools are named {', '.join(repeated)}; a model needs unique names.", param="tools")
    GatewayTool.objects.for_org(organization_id).filter(gateway=gateway).delete()
    rows = [GatewayTool(organization_id=organization_id, gateway=gateway, http_function=f) for f in http_functions]
    rows += [
        GatewayTool(organization_id=organization_id, gateway=gateway, mcp_server=s, mcp_tool_name=t)
        for s, t in mcp_tools
    ]
    GatewayTool.unscoped.bulk_create(rows)
    transaction.on_commit(lambda: gateway_cache.forget(gateway))
    return rows
