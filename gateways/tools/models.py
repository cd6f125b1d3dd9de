"""Tenants' server-side tools and which gateways may use them."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from aivax.crypto import EncryptedTextField
from aivax.tenancy import TenantModel

# OpenAI's rule for function names; MCP tool names outside it are not offered to the model.
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class HttpFunction(TenantModel):
    """A function the model may call: its arguments are POSTed, signed with `secret`, to `url`; the response body
    is the result the model reads."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=64, help_text="What the model calls, e.g. get_order_status")
    description = models.TextField(blank=True, default="", help_text="Tells the model when to call it")
    parameters = models.JSONField(default=dict, blank=True, help_text="JSON schema of the arguments")
    url = models.URLField(max_length=500)
    secret = EncryptedTextField(help_text="Signs every call (X-Aivax-Signature); stored encrypted")
    timeout_seconds = models.FloatField(default=10.0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="http_function_name_per_org")]

    def __str__(self) -> str:
        return self.name


class McpServer(TenantModel):
    """An MCP server reachable over streamable HTTP. `tools` is the last listing (name, description, inputSchema),
    refreshed on demand; the gateway offers only the tools attached to it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500, help_text="The streamable HTTP endpoint, e.g. https://example.com/mcp")
    auth_header_name = models.CharField(max_length=100, blank=True, default="Authorization")
    auth_header_value = EncryptedTextField(blank=True, default="", help_text="e.g. 'Bearer …'; stored encrypted")
    tools = models.JSONField(default=list, blank=True)
    tools_refreshed_at = models.DateTimeField(null=True, blank=True)
    timeout_seconds = models.FloatField(default=15.0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = "MCP server"
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="mcp_server_name_per_org")]

    def __str__(self) -> str:
        return self.name


class GatewayTool(TenantModel):
    """One tool a gateway may run: an HTTP function, or one named tool of an MCP server."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    gateway = models.ForeignKey("gateways.Gateway", on_delete=models.CASCADE, related_name="tools")
    http_function = models.ForeignKey(HttpFunction, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    mcp_server = models.ForeignKey(McpServer, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    mcp_tool_name = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["mcp_tool_name"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(http_function__isnull=False, mcp_server__isnull=True, mcp_tool_name="")
                    | (models.Q(http_function__isnull=True, mcp_server__isnull=False) & ~models.Q(mcp_tool_name=""))
                ),
                name="gateway_tool_exactly_one_kind",
            ),
            models.UniqueConstraint(
                fields=["gateway", "http_function"],
                condition=models.Q(http_function__isnull=False),
                name="gateway_tool_function_once",
            ),
            models.UniqueConstraint(
                fields=["gateway", "mcp_server", "mcp_tool_name"],
                condition=models.Q(mcp_server__isnull=False),
                name="gateway_tool_mcp_once",
            ),
        ]

    def __str__(self) -> str:
        return self.mcp_tool_name or str(self.http_function)
