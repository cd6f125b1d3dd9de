"""Django admin for billing. The ledger, reservations and billed requests are read-only here; balances change only
through ledger rows (credits and reversals live on the staff pages at /staff/billing/)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone

from billing.models import BilledRequest, BillingAccount, LedgerEntry, Price, Reservation
from billing.services import account_set_credit_limit


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    """A price already in effect is history: add a new version with a later `effective_from` instead."""

    list_display = ("sku", "catalog_model", "unit_price", "effective_from")
    list_filter = ("sku", "catalog_model")
    search_fields = ("sku", "catalog_model__name")
    date_hierarchy = "effective_from"

    def has_change_permission(self, request: HttpRequest, obj: Price | None = None) -> bool:
        in_effect = obj is not None and obj.effective_from <= timezone.now()
        return not in_effect and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Price | None = None) -> bool:
        in_effect = obj is not None and obj.effective_from <= timezone.now()
        return not in_effect and super().has_delete_permission(request, obj)


@admin.register(BillingAccount)
class BillingAccountAdmin(admin.ModelAdmin):
    list_display = ("organization", "balance", "reserved", "credit_limit")
    search_fields = ("organization__name", "organization__slug")
    fields = ("organization", "balance", "reserved", "credit_limit")
    readonly_fields = ("organization", "balance", "reserved")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: BillingAccount, form: Any, change: bool) -> None:
        # Only the credit limit, with one UPDATE: a full save would overwrite the live balance.
        account_set_credit_limit(
            organization_id=obj.organization_id, credit_limit=obj.credit_limit, staff_user=request.user
        )


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "organization", "kind", "request_id", "sku", "quantity", "amount", "balance_delta")
    list_filter = ("kind", "sku", "estimated")
    search_fields = ("request_id", "organization__slug", "model")
    date_hierarchy = "created_at"
    list_select_related = ("organization",)


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "organization", "request_id", "amount", "status", "closed_at")
    list_filter = ("status",)
    search_fields = ("request_id",)


@admin.register(BilledRequest)
class BilledRequestAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "organization", "request_id", "model", "total", "estimated")
    list_filter = ("estimated",)
    search_fields = ("request_id", "organization__slug", "model")
    date_hierarchy = "created_at"
    list_select_related = ("organization",)
