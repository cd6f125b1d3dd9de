from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import ApiKey, Membership, Organization, User


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
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    inlines = [MembershipInline]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "organization", "scopes", "expires_at", "revoked_at", "last_used_at")
    list_filter = ("organization",)
    search_fields = ("name", "prefix")
    # The digest is never shown; keys are created from the console or the seed command, not here.
    exclude = ("digest",)
    readonly_fields = ("prefix", "last_used_at", "created_at")

    def has_add_permission(self, request: object) -> bool:
        return False
