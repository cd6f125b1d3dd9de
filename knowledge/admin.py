"""Staff views of collections and documents (read-mostly: changes go through the API or the console)."""

from django.contrib import admin

from knowledge.models import Collection, Document


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "embedding_model", "embedding_dimension", "created_at")
    list_filter = ("embedding_model",)
    search_fields = ("name", "organization__name")
    readonly_fields = ("id", "organization", "embedding_dimension", "created_at", "updated_at")
    exclude = ("embedding_api_key",)


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ("name", "collection", "status", "progress", "chunk_count", "attempts", "updated_at")
    list_filter = ("status", "source_kind", "file_kind")
    search_fields = ("name", "reference", "collection__name")
    readonly_fields = [f.name for f in Document._meta.fields]

    def has_add_permission(self, request):
        return False
