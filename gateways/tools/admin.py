"""Django admin for tenants' server-side tools and a gateway's tools and router candidates (inlines on the gateway
admin). Secrets are write-only, as for endpoint keys."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db import transaction

from gateways import cache as gateway_cache
from gateways.routing.models import RouteCandidate
from gateways.tools.models import GatewayTool, HttpFunction, McpServer


def _keep_secret(form: forms.ModelForm, field: str) -> str:
    value = form.cleaned_data.get(field) or ""
    return value or (getattr(form.instance, field) if form.instance.pk else "")


class HttpFunctionForm(forms.ModelForm):
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted. Leave empty to keep the current secret.",
    )

    class Meta:
        model = HttpFunction
        fields = ("organization", "name", "description", "parameters", "url", "secret", "timeout_seconds")

    def clean_secret(self) -> str:
        value = _keep_secret(self, "secret")
        if not value:
            from gateways.tools.signing import new_secret

            value = new_secret()
        return value


class McpServerForm(forms.ModelForm):
    auth_header_value = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted. Leave empty to keep the current value.",
    )

    class Meta:
        model = McpServer
        fields = ("organization", "name", "url", "auth_header_name", "auth_header_value", "timeout_seconds")

    def clean_auth_header_value(self) -> str:
        return _keep_secret(self, "auth_header_value")


class _ForgetsOrganization(admin.ModelAdmin):
    def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        transaction.on_commit(lambda: gateway_cache.forget_organization(obj.organization_id))


@admin.register(HttpFunction)
class HttpFunctionAdmin(_ForgetsOrganization):
    form = HttpFunctionForm
    list_display = ("name", "organization", "url", "timeout_seconds")
    list_filter = ("organization",)
    search_fields = ("name", "url")


@admin.register(McpServer)
class McpServerAdmin(_ForgetsOrganization):
    form = McpServerForm
    list_display = ("name", "organization", "url", "tools_refreshed_at")
    list_filter = ("organization",)
    search_fields = ("name", "url")
    readonly_fields = ("tools", "tools_refreshed_at")


class GatewayToolInline(admin.TabularInline):
    model = GatewayTool
    extra = 0
    fields = ("organization", "http_function", "mcp_server", "mcp_tool_name")


class RouteCandidateInline(admin.TabularInline):
    model = RouteCandidate
    extra = 0
    fields = ("organization", "position", "catalog_model", "byo_endpoint", "min_complexity", "max_complexity")
