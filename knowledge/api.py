"""The knowledge API (AIVAX-shaped): collections, documents and search, under /api/v1, keys with the knowledge
scope. Success answers are the envelope ``{message, data}``; errors are OpenAI error objects."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import File, Form, Query, Router, Schema
from ninja.files import UploadedFile
from pydantic import Field, StringConstraints

from accounts.api_auth import knowledge_auth, principal_of
from aivax import inputs
from aivax.db import run_db
from aivax.errors import InvalidRequest
from aivax.inputs import HttpUrlText
from billing.money import dumps as money_dumps
from knowledge import parsing, selectors, services
from knowledge.bulk import BulkFormatError, parse_bulk_jsonl
from knowledge.models import Collection, Document
from quotas import gate as quotas

router = Router(tags=["knowledge"], auth=knowledge_auth)

MAX_PAGE_SIZE = 100
MAX_JSONL_BYTES = 50 * 1024 * 1024


def _envelope(data: Any, message: str = "ok", status: int = 200) -> JsonResponse:
    return JsonResponse({"message": message, "data": data}, status=status, encoder=DjangoJSONEncoder)


def _org(request: HttpRequest) -> int:
    return principal_of(request).organization_id


def _collection(request: HttpRequest, collection_id: str) -> Collection:
    return selectors.collection_get(organization=_org(request), collection_id=collection_id)


def collection_out(collection: Collection, *, detail: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(collection.pk),
        "name": collection.name,
        "embeddingModel": collection.embedding_model,
        "embeddingDimension": collection.embedding_dimension,
        "embeddingBaseUrl": collection.embedding_base_url or None,
        "chunkMaxTokens": collection.chunk_max_tokens,
        "chunkOverlapTokens": collection.chunk_overlap_tokens,
        "language": collection.language,
        "createdAt": collection.created_at,
    }
    if detail:
        data["state"] = selectors.collection_state(collection=collection).as_api()
        data["tags"] = selectors.collection_tags(collection=collection)
    return data


def document_out(document: Document, *, contents: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(document.pk),
        "collectionId": str(document.collection_id),
        "name": document.name,
        "reference": document.reference or None,
        "tags": list(document.tags),
        "metadata": document.metadata,
        "sourceKind": document.source_kind,
        "fileKind": document.file_kind or None,
        "sizeBytes": document.size_bytes,
        "contentHash": document.content_hash,
        "state": document.get_status_display(),
        "status": document.status,
        "progress": document.progress,
        "failureReason": document.failure_reason or None,
        "chunkCount": document.chunk_count,
        "attempts": document.attempts,
        "createdAt": document.created_at,
        "updatedAt": document.updated_at,
        "processingStartedAt": document.processing_started_at,
        "indexedAt": document.indexed_at,
    }
    if contents:
        data["contents"] = document.content
    return data


def _page_info(number: int, has_more: bool) -> dict[str, Any]:
    return {"currentPage": number, "hasMoreItems": has_more}


# ---- collections


# Bounds mirror the columns (lengths, smallint widths), so bad input is a 400 here rather than a database error.
SMALLINT_MAX = 32767


class CollectionPatch(Schema):
    collectionName: str | None = Field(default=None, min_length=1, max_length=200)
    embeddingModel: str | None = Field(default=None, max_length=200)
    embeddingDimension: int | None = Field(default=None, ge=1, le=16000)  # pgvector's limit for an index
    embeddingBaseUrl: HttpUrlText | Literal[""] | None = None
    embeddingApiKey: str | None = Field(default=None, max_length=4096)
    chunkMaxTokens: int | None = Field(default=None, ge=1, le=SMALLINT_MAX)
    chunkOverlapTokens: int | None = Field(default=None, ge=0, le=SMALLINT_MAX)
    # A PostgreSQL text search configuration (portuguese, spanish, simple, ...) or a language code (pt, es).
    language: str | None = Field(default=None, max_length=32)


class CollectionIn(CollectionPatch):
    collectionName: str = Field(min_length=1, max_length=200)


class PageQuery(Schema):
    page: int = Field(default=1, ge=1, le=100_000)
    pageSize: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE)


@router.post("/collections", summary="Create a collection")
def create_collection(request: HttpRequest, payload: CollectionIn) -> JsonResponse:
    collection = services.collection_create(
        organization=_org(request),
        name=payload.collectionName,
        embedding_model=payload.embeddingModel or services.LOCAL_EMBEDDING_MODEL,
        embedding_dimension=payload.embeddingDimension,
        embedding_base_url=payload.embeddingBaseUrl or "",
        embedding_api_key=payload.embeddingApiKey or "",
        chunk_max_tokens=payload.chunkMaxTokens,
        chunk_overlap_tokens=payload.chunkOverlapTokens,
        language=payload.language,
    )
    return _envelope(collection_out(collection), "Collection created.", status=201)


@router.get("/collections", summary="List collections (paged)")
def list_collections(request: HttpRequest, paging: Query[PageQuery]) -> JsonResponse:
    rows, more = selectors.page(
        selectors.collection_list(organization=_org(request)), number=paging.page, size=paging.pageSize
    )
    return _envelope({"items": [collection_out(c) for c in rows], "pageInfo": _page_info(paging.page, more)})


@router.get("/collections/{collection_id}", summary="Get a collection with its document counts and tags")
def get_collection(request: HttpRequest, collection_id: str) -> JsonResponse:
    return _envelope(collection_out(_collection(request, collection_id), detail=True))


@router.patch("/collections/{collection_id}", summary="Change a collection (a new model or chunking re-indexes)")
def patch_collection(request: HttpRequest, collection_id: str, payload: CollectionPatch) -> JsonResponse:
    collection, reindexing = services.collection_update(
        collection=_collection(request, collection_id),
        name=payload.collectionName,
        embedding_model=payload.embeddingModel,
        embedding_dimension=payload.embeddingDimension,
        embedding_base_url=payload.embeddingBaseUrl,
        embedding_api_key=payload.embeddingApiKey,
        chunk_max_tokens=payload.chunkMaxTokens,
        chunk_overlap_tokens=payload.chunkOverlapTokens,
        language=payload.language,
    )
    message = "Collection updated; its documents are being re-indexed." if reindexing else "Collection updated."
    return _envelope(collection_out(collection, detail=True), message)


@router.post("/collections/{collection_id}/reindex", summary="Re-index every document with the collection's model")
def reindex_collection(request: HttpRequest, collection_id: str) -> JsonResponse:
    """Queues every document again (in batches, on the workers). Progress: the collection's ``state`` (queued,
    indexed, and ``outdatedDocuments``: those still indexed with another model) and each document's status."""
    collection = _collection(request, collection_id)
    queued = services.collection_reindex(collection=collection)
    data = {"queuedDocuments": queued, **collection_out(collection, detail=True)}
    return _envelope(data, f"{queued} documents queued for re-indexing.", status=202)


@router.delete("/collections/{collection_id}", summary="Delete a collection and its documents")
def delete_collection(request: HttpRequest, collection_id: str) -> JsonResponse:
    services.collection_delete(collection=_collection(request, collection_id))
    return _envelope(None, "Collection deleted.")


@router.delete("/collections/{collection_id}/reset-only", summary="Remove every document, keep the collection")
def reset_collection(request: HttpRequest, collection_id: str) -> JsonResponse:
    removed = services.collection_reset(collection=_collection(request, collection_id))
    return _envelope({"removedDocuments": removed}, "Collection emptied.")


# ---- documents


Tag = Annotated[str, StringConstraints(max_length=100)]


class DocumentPut(Schema):
    name: str = Field(min_length=1, max_length=300)
    contents: str = Field(min_length=1)
    reference: str | None = Field(default=None, max_length=300)
    tags: list[Tag] | Annotated[str, StringConstraints(max_length=4000)] | None = Field(default=None)
    metadata: dict[str, Any] | None = None


class DocumentFilters(PageQuery):
    tag: str | None = Field(default=None, max_length=100)
    reference: str | None = Field(default=None, max_length=300)
    name: str | None = Field(default=None, max_length=300)
    content: str | None = Field(default=None, max_length=4000)
    status: str | None = Field(default=None, max_length=12)


@router.put("/collections/{collection_id}/documents", summary="Create or update one document by name")
def put_document(request: HttpRequest, collection_id: str, payload: DocumentPut) -> JsonResponse:
    collection = _collection(request, collection_id)
    quotas.admit_documents(organization_id=_org(request), count=1)
    result = services.document_upsert(
        collection=collection,
        name=payload.name,
        contents=payload.contents,
        reference=payload.reference or "",
        tags=payload.tags,
        metadata=payload.metadata,
    )
    messages = {
        services.UpsertState.CREATED: "Document created; it is queued for indexing.",
        services.UpsertState.MODIFIED: "Document modified.",
        services.UpsertState.NOT_MODIFIED: "Document not modified.",
    }
    # `state` is the upsert's outcome here (Created / Modified / NotModified); `status` the indexing state.
    data = {**document_out(result.document), "state": str(result.state), "documentId": str(result.document.pk)}
    return _envelope(data, messages[result.state])


@router.post("/collections/{collection_id}/documents", summary="Bulk upsert: multipart 'documents' JSONL file")
def bulk_documents(request: HttpRequest, collection_id: str, documents: File[UploadedFile]) -> JsonResponse:
    collection = _collection(request, collection_id)
    if documents.size > MAX_JSONL_BYTES:
        raise InvalidRequest(
            f"The JSONL file is larger than {MAX_JSONL_BYTES // (1024 * 1024)} MiB.", param="documents"
        )
    try:
        parsed = parse_bulk_jsonl(documents.read())
    except BulkFormatError as exc:
        raise InvalidRequest(str(exc), param="documents", code="invalid_jsonl") from exc
    except RecursionError as exc:
        raise InvalidRequest(
            "A line of the JSONL file is nested too deeply to read.", param="documents", code="invalid_jsonl"
        ) from exc
    for document in parsed:
        # Text and metadata are stored as text and jsonb: no NUL characters, bounded nesting.
        try:
            inputs.check_value([document.name, document.text, document.reference, list(document.tags)])
            inputs.check_value(document.metadata)
        except InvalidRequest as exc:
            detail = exc.message.split(": ", 1)[-1]
            raise InvalidRequest(f"Line {document.line}: {detail}", param="documents", code="invalid_jsonl") from exc
    quotas.admit_documents(organization_id=_org(request), count=len(parsed))
    result = services.documents_bulk_upsert(collection=collection, documents=parsed)
    data = {
        "created": result.created,
        "modified": result.modified,
        "notModified": result.not_modified,
        "documentIds": result.document_ids,
    }
    return _envelope(data, f"{len(parsed)} documents received.")


@router.post("/collections/{collection_id}/files", summary="Upload files (multipart 'files'); each is a document")
def upload_files(
    request: HttpRequest,
    collection_id: str,
    files: File[list[UploadedFile]],
    reference: Form[str] = "",
    tags: Form[str] = "",
) -> JsonResponse:
    collection = _collection(request, collection_id)
    quotas.admit_documents(organization_id=_org(request), count=len(files))
    limit = parsing.DEFAULT_LIMITS.max_bytes
    uploads = [
        # An oversized file is refused by the service from its size alone, without reading it into memory.
        services.FileUpload(
            name=parsing.upload_name(f.name),
            data=f.read() if f.size <= limit else b"",
            content_type=f.content_type,
            size=f.size,
        )
        for f in files
    ]
    results = services.documents_upload_files(
        collection=collection, files=uploads, reference=reference, tags=tags or None
    )
    items = [
        {
            "fileName": r.name,
            "state": str(r.state) if r.state else "Rejected",
            "error": r.error,
            "document": document_out(r.document) if r.document else None,
        }
        for r in results
    ]
    accepted = sum(1 for r in results if r.document is not None)
    if not accepted:
        raise InvalidRequest("; ".join(f"{r.name}: {r.error}" for r in results), param="files", code="invalid_file")
    return _envelope(items, f"{accepted} of {len(results)} files accepted.", status=202)


@router.get("/collections/{collection_id}/documents", summary="List documents (filters: tag, reference, name, content)")
def list_documents(request: HttpRequest, collection_id: str, filters: Query[DocumentFilters]) -> JsonResponse:
    documents = selectors.document_list(
        collection=_collection(request, collection_id),
        tag=filters.tag,
        reference=filters.reference,
        name=filters.name,
        content=filters.content,
        status=filters.status,
    )
    rows, more = selectors.page(documents.defer("content"), number=filters.page, size=filters.pageSize)
    return _envelope({"items": [document_out(d) for d in rows], "pageInfo": _page_info(filters.page, more)})


@router.get("/collections/{collection_id}/documents/{document_id}", summary="Get a document")
def get_document(request: HttpRequest, collection_id: str, document_id: str) -> JsonResponse:
    document = selectors.document_get(collection=_collection(request, collection_id), document_id=document_id)
    return _envelope(document_out(document, contents=True))


@router.delete("/collections/{collection_id}/documents/{document_id}", summary="Delete a document and its chunks")
def delete_document(request: HttpRequest, collection_id: str, document_id: str) -> JsonResponse:
    document = selectors.document_get(collection=_collection(request, collection_id), document_id=document_id)
    services.document_delete(document=document)
    return _envelope(None, "Document deleted.")


# ---- search


class SearchQuery(Schema):
    term: str = Field(min_length=1, max_length=4000)
    top: int = Field(default=10, ge=1, le=100)
    min: float = Field(default=0.0, ge=-1.0, le=1.0)
    mode: str = "hybrid"
    references: bool = True


def _query(organization_id: int, key_id: Any, collection_id: str, params: SearchQuery) -> tuple[list[Any], list[Any]]:
    collection = selectors.collection_get(organization=organization_id, collection_id=collection_id)
    result = services.collection_query(
        organization_id=organization_id,
        collection_id=collection.pk,
        term=params.term,
        top=params.top,
        min_score=params.min,
        mode=params.mode,
        use_references=params.references,
        api_key_id=key_id,
    )
    return [hit.as_api() for hit in result.hits], result.usage_lines


@router.get("/collections/{collection_id}/query", summary="Search a collection (hybrid, vector or fulltext)")
async def query_collection(request: HttpRequest, collection_id: str, params: Query[SearchQuery]) -> HttpResponse:
    # Async, with the work on the shared pool: a search (query embedding + SQL) never queues behind other
    # requests' sync work on Django's single sync thread.
    principal = principal_of(request)
    await quotas.admit_search(principal)
    hits, lines = await run_db(_query, principal.organization_id, principal.key_id, collection_id, params)
    # What the search cost, as the ledger holds it (money as exact numbers, like every response: billing.money).
    body = {
        "message": f"{len(hits)} results ({params.mode}).",
        "data": hits,
        "generation_context": {"generated_usage": [line.as_dict() for line in lines]},
    }
    return HttpResponse(money_dumps(body), content_type="application/json")
