from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import ApiKey, Membership, Organization, User
from accounts.services import api_key_revoke


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("email", "username", "is_staff", "is_active", "date_joined")
    search_fields = ("email", "username")


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "plan", "created_at")
    list_filter = ("plan",)
    search_fields = ("name", "slug")
    inlines = [MembershipInline]
    fieldsets = (
        (None, {"fields": ("name", "slug", "created_at")}),
        (
            "Rate limits",
            {
                "description": "The plan's limits and these both apply (empty: none at this level). "
                "No plan: the default plan.",
                "fields": (
                    "plan",
                    "requests_per_minute",
                    "requests_per_day",
                    "tokens_per_minute",
                    "documents_per_minute",
                    "documents_per_day",
                ),
            },
        ),
    )


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "prefix", "organization", "scopes", "expires_at", "revoked_at", "last_used_at")
    list_filter = ("kind", "organization")
    search_fields = ("name", "prefix")
    # The digest is never shown; keys are created from the console, the API or the seed command, not here.
    # Saving or deleting a key here drops its cached record at once (accounts/receivers.py).
    exclude = ("digest",)
    readonly_fields = ("kind", "prefix", "last_used_at", "created_at")
    actions = ["revoke"]

    def has_add_permission(self, request: object) -> bool:
        return False

    @admin.action(description="Revoke selected keys (at once)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset:
            api_key_revoke(key=key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")
