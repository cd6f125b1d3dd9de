"""Reads for server-side tools."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.models import Organization
from aivax import crypto
from gateways.models import Gateway
from gateways.tools.models import GatewayTool, HttpFunction, McpServer
from gateways.tools.spec import HTTP, MCP, ToolSpec


def http_function_list(*, organization: Organization | int) -> QuerySet[HttpFunction]:
    return HttpFunction.objects.for_org(organization).order_by("name")


def mcp_server_list(*, organization: Organization | int) -> QuerySet[McpServer]:
    return McpServer.objects.for_org(organization).order_by("name")


def gateway_tool_list(*, gateway: Gateway) -> QuerySet[GatewayTool]:
    return (
        GatewayTool.objects.for_org(gateway.organization_id)
        .filter(gateway=gateway)
        .select_related("http_function", "mcp_server")
    )


def _mcp_schema(server: McpServer, tool_name: str) -> tuple[str, dict[str, Any]]:
    for tool in server.tools or []:
        if tool.get("name") == tool_name:
            return str(tool.get("description") or ""), dict(tool.get("inputSchema") or {})
    return "", {}


def tool_specs(*, gateway: Gateway) -> list[ToolSpec]:
    """What the inference path needs of the gateway's tools (secrets encrypted, as in the config cache). An MCP
    tool no longer in its server's listing is left out."""
    specs: list[ToolSpec] = []
    for row in gateway_tool_list(gateway=gateway):
        if row.http_function_id:
            function = row.http_function
            specs.append(
                ToolSpec(
                    kind=HTTP,
                    name=function.name,
                    description=function.description,
                    parameters=function.parameters or {},
                    url=function.url,
                    timeout=function.timeout_seconds,
                    secret_cipher=crypto.encrypt(function.secret) if function.secret else "",
                )
            )
            continue
        server = row.mcp_server
        description, schema = _mcp_schema(server, row.mcp_tool_name)
        if not schema:
            continue
        specs.append(
            ToolSpec(
                kind=MCP,
                name=row.mcp_tool_name,
                description=description,
                parameters=schema,
                url=server.url,
                timeout=server.timeout_seconds,
                secret_cipher=crypto.encrypt(server.auth_header_value) if server.auth_header_value else "",
                auth_header_name=server.auth_header_name,
                server_name=server.name,
            )
        )
    return specs
