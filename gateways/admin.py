"""Django admin for platform staff: the model catalog (with its prices inline), tenants' endpoints, gateways."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db import transaction

from aivax import outbound
from aivax.errors import InvalidRequest
from billing.models import Price
from gateways import cache as gateway_cache
from gateways.models import ByoEndpoint, CatalogModel, Gateway
from gateways.tools.admin import GatewayToolInline, RouteCandidateInline


class SecretField(forms.CharField):
    """A write-only secret: the admin never renders the stored key; leaving it empty keeps it."""

    widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "Stored encrypted. Leave empty to keep the current key.")
        super().__init__(**kwargs)


def _checked_url(url: str, policy: outbound.Policy) -> str:
    """Staff forms apply the same outbound policy as the services (a staff member cannot point at metadata)."""
    try:
        outbound.validate_url(url, policy=policy)
    except InvalidRequest as exc:
        raise forms.ValidationError(exc.message) from exc
    return url


class CatalogModelForm(forms.ModelForm):
    api_key = SecretField(label="Upstream API key")

    class Meta:
        model = CatalogModel
        fields = (
            "name",
            "base_url",
            "upstream_model",
            "api_key",
            "context_window",
            "wire_api",
            "capabilities",
            "description",
            "is_active",
        )

    def clean_api_key(self) -> str:
        value = self.cleaned_data.get("api_key") or ""
        return value or (self.instance.api_key if self.instance.pk else "")

    def clean_base_url(self) -> str:
        return _checked_url(self.cleaned_data.get("base_url") or "", outbound.Policy.PLATFORM)


class PriceInline(admin.TabularInline):
    """Prices are versioned by effective date: add a new row to change one; existing rows stay as they were."""

    model = Price
    fk_name = "catalog_model"
    extra = 0
    can_delete = False
    fields = ("sku", "unit_price", "effective_from")

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(CatalogModel)
class CatalogModelAdmin(admin.ModelAdmin):
    form = CatalogModelForm
    list_display = ("name", "upstream_model", "base_url", "context_window", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "upstream_model")
    inlines = [PriceInline]

    def save_model(self, request: Any, obj: CatalogModel, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        transaction.on_commit(gateway_cache.forget_all)  # every gateway on this model sees the change at once


class ByoEndpointForm(forms.ModelForm):
    api_key = SecretField(label="API key")

    class Meta:
        model = ByoEndpoint
        fields = ("organization", "name", "base_url", "model_name", "api_key", "context_window", "wire_api")

    def clean_api_key(self) -> str:
        value = self.cleaned_data.get("api_key") or ""
        return value or (self.instance.api_key if self.instance.pk else "")

    def clean_base_url(self) -> str:
        return _checked_url(self.cleaned_data.get("base_url") or "", outbound.Policy.TENANT)


@admin.register(ByoEndpoint)
class ByoEndpointAdmin(admin.ModelAdmin):
    form = ByoEndpointForm
    list_display = ("name", "organization", "model_name", "base_url")
    list_filter = ("organization",)
    search_fields = ("name", "model_name", "base_url")

    def save_model(self, request: Any, obj: ByoEndpoint, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        transaction.on_commit(lambda: gateway_cache.forget_organization(obj.organization_id))


@admin.register(Gateway)
class GatewayAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "organization", "catalog_model", "byo_endpoint", "is_active", "updated_at")
    list_filter = ("is_active", "organization", "catalog_model")
    search_fields = ("name", "slug")
    readonly_fields = ("slug", "created_at", "updated_at")
    inlines = [GatewayToolInline, RouteCandidateInline]

    def save_model(self, request: Any, obj: Gateway, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        transaction.on_commit(lambda: gateway_cache.forget(obj))

    def delete_model(self, request: Any, obj: Gateway) -> None:
        super().delete_model(request, obj)
        transaction.on_commit(lambda: gateway_cache.forget(obj))
