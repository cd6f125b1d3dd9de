"""Knowledge collections: list, detail, uploads with live progress, search. Lights up once the knowledge app
provides its models (see console.optional)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from console import optional
from console.context import console_view, render_console


@console_view()
def knowledge_list(request: HttpRequest) -> HttpResponse:
    org = request.console.organization  # type: ignore[attr-defined]
    collection = optional.collection_model()
    collections = list(collection.objects.for_org(org).order_by("name")) if collection else None
    return render_console(request, "console/knowledge/list.html", {"collections": collections})
