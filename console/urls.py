from django.urls import include, path

from console.views import gateways, home, keys, knowledge, playground, usage

urlpatterns = [
    path("", home.root, name="root"),
    path("", include("accounts.urls")),
    path("console/", home.home, name="console-home"),
    path("console/gateways/", gateways.gateway_list, name="gateway-list"),
    path("console/gateways/new", gateways.gateway_new, name="gateway-new"),
    path("console/gateways/<uuid:pk>/", gateways.gateway_detail, name="gateway-detail"),
    path("console/gateways/<uuid:pk>/edit", gateways.gateway_edit, name="gateway-edit"),
    path("console/gateways/<uuid:pk>/delete", gateways.gateway_delete_view, name="gateway-delete"),
    path("console/gateways/<uuid:pk>/playground", playground.playground, name="gateway-playground"),
    path("console/gateways/<uuid:pk>/playground/chat", playground.playground_chat, name="playground-chat"),
    path("console/endpoints/new", gateways.endpoint_new, name="endpoint-new"),
    path("console/endpoints/<uuid:pk>/delete", gateways.endpoint_delete, name="endpoint-delete"),
    path("console/playground/", playground.playground_index, name="playground"),
    path("console/keys/", keys.key_list, name="key-list"),
    path("console/keys/<uuid:pk>/revoke", keys.key_revoke, name="key-revoke"),
    path("console/knowledge/", knowledge.knowledge_list, name="knowledge-list"),
    path("console/knowledge/<uuid:pk>/", knowledge.collection_detail, name="collection-detail"),
    path("console/knowledge/<uuid:pk>/documents", knowledge.collection_documents, name="collection-documents"),
    path("console/knowledge/<uuid:pk>/upload", knowledge.collection_upload, name="collection-upload"),
    path("console/knowledge/<uuid:pk>/search", knowledge.collection_search, name="collection-search"),
    path("console/knowledge/<uuid:pk>/delete", knowledge.collection_delete, name="collection-delete"),
    path(
        "console/knowledge/<uuid:pk>/documents/<uuid:document_pk>/delete",
        knowledge.document_delete,
        name="document-delete",
    ),
    path(
        "console/knowledge/<uuid:pk>/documents/<uuid:document_pk>/retry",
        knowledge.document_retry,
        name="document-retry",
    ),
    path("console/usage/", usage.usage, name="usage"),
    path("console/usage/daily.json", usage.usage_daily, name="usage-daily"),
    path("console/usage/export.csv", usage.usage_export, name="usage-export"),
    path("console/usage/requests/<str:request_id>", usage.usage_request, name="usage-request"),
]
