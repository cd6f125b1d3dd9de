from django.contrib import admin

from quotas.models import Plan


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "is_default",
        "requests_per_minute",
        "requests_per_day",
        "tokens_per_minute",
        "documents_per_minute",
        "documents_per_day",
    )
    search_fields = ("name",)
