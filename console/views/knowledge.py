"""Knowledge collections: list and create, detail with drag-and-drop uploads, documents whose status and progress
update live (htmx polling a small partial while any is queued or processing), a search box with scores.

The knowledge app may land after the console: every view checks `optional.collection_model()` first.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from aivax.errors import ApiError, InvalidRequest, RateLimited
from aivax.tenancy import get_for_org_or_404
from console import optional, selectors
from console.context import console_view, render_console

SEARCH_TOP = 10


class CollectionForm(forms.Form):
    name = forms.CharField(
        label="Collection name", max_length=200, widget=forms.TextInput(attrs={"placeholder": "Product docs"})
    )


def _require_knowledge() -> None:
    if optional.collection_model() is None:
        raise Http404("Knowledge collections are not available.")


def _collection(request: HttpRequest, pk: str) -> Any:
    _require_knowledge()
    return get_for_org_or_404(optional.collection_model(), request.console.organization, pk=pk)  # type: ignore[arg-type, attr-defined]


@console_view()
def knowledge_list(request: HttpRequest) -> HttpResponse:
    org = request.console.organization  # type: ignore[attr-defined]
    if optional.collection_model() is None:
        return render_console(request, "console/knowledge/list.html", {"collections": None})
    form = CollectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        from knowledge.services import collection_create

        try:
            collection = collection_create(organization=org, name=form.cleaned_data["name"])
        except InvalidRequest as exc:
            form.add_error("name" if exc.param in (None, "name") else None, exc.message)
        else:
            messages.success(request, f"Created {collection.name}. Drop your documents here.")
            return redirect("collection-detail", pk=collection.pk)
    status = 400 if form.errors else 200
    collections = selectors.collection_list(organization=org)
    for collection in collections:
        # Counted here: the template's `add` of two counts fails when either status has no documents.
        collection.in_progress = sum(collection.counts.get(s, 0) for s in ("queued", "processing"))
    context = {"collections": collections, "form": form}
    return render_console(request, "console/knowledge/list.html", context, status=status)


def _documents_context(collection: Any) -> dict[str, Any]:
    from knowledge.models import DocumentStatus

    documents = selectors.document_list(collection=collection)
    busy = any(d.status in (DocumentStatus.QUEUED, DocumentStatus.PROCESSING) for d in documents)
    return {"collection": collection, "documents": documents, "busy": busy}


@console_view()
def collection_detail(request: HttpRequest, pk: str) -> HttpResponse:
    collection = _collection(request, pk)
    gateways = selectors.gateways_using(collection=collection) if optional.gateway_links_collections() else []
    context = {**_documents_context(collection), "linked_gateways": gateways, "modes": SEARCH_MODES}
    return render_console(request, "console/knowledge/detail.html", context)


@console_view()
def collection_documents(request: HttpRequest, pk: str) -> HttpResponse:
    """The documents table alone: what the page polls while documents are being indexed."""
    collection = _collection(request, pk)
    return render_console(request, "console/knowledge/_documents.html", _documents_context(collection))


@require_POST
@console_view()
def collection_upload(request: HttpRequest, pk: str) -> HttpResponse:
    """Several files at once (multipart `files`); answers with the refreshed documents table."""
    from knowledge.parsing import upload_name
    from knowledge.services import FileUpload, documents_upload_files
    from quotas.gate import admit_documents

    collection = _collection(request, pk)
    uploads = [
        FileUpload(name=upload_name(f.name), data=f.read(), content_type=f.content_type)
        for f in request.FILES.getlist("files")
    ]
    problems: list[str] = []
    try:
        admit_documents(organization_id=collection.organization_id, count=len(uploads))  # the plan's limits
        results = documents_upload_files(collection=collection, files=uploads)
    except (InvalidRequest, RateLimited) as exc:
        results, problems = [], [exc.message]
    problems += [f"{r.name}: {r.error}" for r in results if r.error]
    accepted = [r for r in results if r.document is not None]
    context = {**_documents_context(collection), "problems": problems, "accepted": accepted}
    if not request.headers.get("HX-Request"):
        for problem in problems:
            messages.error(request, problem)
        if accepted:
            messages.success(request, f"Uploaded {len(accepted)} file{'s' if len(accepted) != 1 else ''}.")
        return redirect("collection-detail", pk=collection.pk)
    return render_console(
        request, "console/knowledge/_documents.html", context, status=400 if problems and not accepted else 200
    )


SEARCH_MODES = [("hybrid", "Hybrid"), ("vector", "Meaning (vector)"), ("fulltext", "Keywords (full text)")]


@console_view()
def collection_search(request: HttpRequest, pk: str) -> HttpResponse:
    """Test retrieval: the passages a gateway would be given, with their scores (billed as a search)."""
    collection = _collection(request, pk)
    term = request.GET.get("q", "").strip()
    mode = request.GET.get("mode", "hybrid")
    hits: list[Any] | None = None
    error = ""
    query = optional.function("knowledge.services", "collection_query")
    if term and query is None:
        error = "Search is not available yet."
    elif term:
        try:
            result = query(
                organization_id=collection.organization_id,
                collection_id=collection.pk,
                term=term,
                top=SEARCH_TOP,
                mode=mode if mode in dict(SEARCH_MODES) else "hybrid",
            )
            hits = result.hits
        except ApiError as exc:
            error = exc.message
    context = {"collection": collection, "term": term, "hits": hits, "error": error}
    return render_console(request, "console/knowledge/_search.html", context)


@require_POST
@console_view()
def document_delete(request: HttpRequest, pk: str, document_pk: str) -> HttpResponse:
    from knowledge.models import Document
    from knowledge.services import document_delete as delete

    collection = _collection(request, pk)
    document = get_for_org_or_404(Document, collection.organization_id, pk=document_pk, collection=collection)
    delete(document=document)
    if request.headers.get("HX-Request"):
        return render_console(request, "console/knowledge/_documents.html", _documents_context(collection))
    messages.success(request, f"Deleted {document.name}.")
    return redirect("collection-detail", pk=collection.pk)


@require_POST
@console_view()
def document_retry(request: HttpRequest, pk: str, document_pk: str) -> HttpResponse:
    from knowledge.models import Document
    from knowledge.services import document_retry as retry

    collection = _collection(request, pk)
    document = get_for_org_or_404(Document, collection.organization_id, pk=document_pk, collection=collection)
    retry(document=document)
    if request.headers.get("HX-Request"):
        return render_console(request, "console/knowledge/_documents.html", _documents_context(collection))
    return redirect("collection-detail", pk=collection.pk)


@console_view()
def collection_delete(request: HttpRequest, pk: str) -> HttpResponse:
    from knowledge.services import collection_delete as delete

    collection = _collection(request, pk)
    if request.method == "POST":
        delete(collection=collection)
        messages.success(request, f"Deleted {collection.name} and its documents.")
        return redirect("knowledge-list")
    return render_console(request, "console/knowledge/confirm_delete.html", {"collection": collection})
