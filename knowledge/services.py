"""Knowledge writes: collections, documents (text, bulk JSONL, files), and what enqueues their indexing.

Every write that needs indexing sets the document ``queued`` and enqueues ``knowledge.ingest_documents`` with the
document id and its content hash (batched, see ``enqueue_indexing``) *on commit*; the task (knowledge.ingestion)
does the rest. An upsert whose content, reference, tags and metadata are all unchanged is ``NotModified``: nothing
is re-embedded or billed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization
from aivax import outbound
from aivax.errors import InvalidRequest
from billing import skus
from billing.pricing import UsageLine, aprice_platform_sku, price_platform_sku
from knowledge import parsing
from knowledge.bulk import MAX_NAME, BulkDocument, normalise_tags
from knowledge.models import (
    LANGUAGES,
    LOCAL_EMBEDDING_DIMENSION,
    LOCAL_EMBEDDING_MODEL,
    MAX_DIMENSION,
    Chunk,
    Collection,
    Document,
    DocumentStatus,
    SourceKind,
)
from knowledge.search import SearchResult, search_collection

MAX_FILES_PER_UPLOAD = 20
ACTIVE_STATUSES = (DocumentStatus.QUEUED, DocumentStatus.PROCESSING)


class UpsertState(StrEnum):
    CREATED = "Created"
    MODIFIED = "Modified"
    NOT_MODIFIED = "NotModified"


def content_hash(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def enqueue_indexing(documents: list[Document]) -> None:
    """Send the documents' indexing tasks once the surrounding transaction commits.

    Text documents go in batches of ``KNOWLEDGE_INDEX_BATCH`` per task (``knowledge.ingest_documents``), so that
    a bulk upload's short documents share model calls; a file, which can be large and slow to parse, has a task
    of its own. Each document keeps its own status and progress either way."""
    if not documents:
        return
    from django.conf import settings

    size = max(1, int(settings.KNOWLEDGE_INDEX_BATCH))
    texts = [(str(d.pk), d.content_hash) for d in documents if d.source_kind != SourceKind.FILE]
    files = [(str(d.pk), d.content_hash) for d in documents if d.source_kind == SourceKind.FILE]
    batches = [texts[i : i + size] for i in range(0, len(texts), size)] + [[job] for job in files]

    def send() -> None:
        from knowledge.tasks import ingest_documents

        for jobs in batches:
            try:
                ingest_documents.delay([list(job) for job in jobs])
            except Exception:  # broker (Redis) down: the rows stay queued and the sweeper sends them again
                logging.getLogger(__name__).warning("could not enqueue %d document(s); left to the sweeper", len(jobs))

    transaction.on_commit(send)


# ---- collections


def _validate_collection(fields: dict[str, Any]) -> None:
    name = fields.get("name")
    if name is not None and not (str(name).strip() and len(str(name)) <= 200):
        raise InvalidRequest("A collection needs a name of 1 to 200 characters.", param="collectionName")
    size = fields.get("chunk_max_tokens")
    if size is not None and not 32 <= int(size) <= 8192:
        raise InvalidRequest("chunkMaxTokens must be between 32 and 8192.", param="chunkMaxTokens")
    overlap = fields.get("chunk_overlap_tokens")
    if overlap is not None and not 0 <= int(overlap) <= 1024:
        raise InvalidRequest("chunkOverlapTokens must be between 0 and 1024.", param="chunkOverlapTokens")
    dimension = fields.get("embedding_dimension")
    if dimension is not None and not 1 <= int(dimension) <= MAX_DIMENSION:
        raise InvalidRequest(f"embeddingDimension must be between 1 and {MAX_DIMENSION}.", param="embeddingDimension")
    base_url = fields.get("embedding_base_url")
    if base_url:
        outbound.validate_url(base_url, param="embeddingBaseUrl")


def _embedding_fields(
    model: str | None, dimension: int | None, base_url: str | None, api_key: str | None
) -> dict[str, Any]:
    if model is None:
        return {}
    model = model.strip()
    if model == LOCAL_EMBEDDING_MODEL and not base_url:
        return {
            "embedding_model": model,
            "embedding_dimension": LOCAL_EMBEDDING_DIMENSION,
            "embedding_base_url": "",
            "embedding_api_key": "",
        }
    if not base_url or not dimension:
        raise InvalidRequest(
            f"An embedding model other than {LOCAL_EMBEDDING_MODEL} needs embeddingBaseUrl (an OpenAI-compatible "
            "endpoint) and embeddingDimension.",
            param="embeddingModel",
        )
    if not model or len(model) > 200:
        raise InvalidRequest("embeddingModel must have 1 to 200 characters.", param="embeddingModel")
    return {
        "embedding_model": model,
        "embedding_dimension": int(dimension),
        "embedding_base_url": base_url.rstrip("/"),
        "embedding_api_key": api_key or "",
    }


def collection_create(
    *,
    organization: Organization | int,
    name: str,
    embedding_model: str = LOCAL_EMBEDDING_MODEL,
    embedding_dimension: int | None = None,
    embedding_base_url: str = "",
    embedding_api_key: str = "",
    chunk_max_tokens: int | None = None,
    chunk_overlap_tokens: int | None = None,
    language: str | None = None,
) -> Collection:
    fields: dict[str, Any] = {"name": (name or "").strip()}
    if language is not None:
        fields["language"] = text_search_language(language)
    fields.update(_embedding_fields(embedding_model, embedding_dimension, embedding_base_url, embedding_api_key))
    if chunk_max_tokens is not None:
        fields["chunk_max_tokens"] = chunk_max_tokens
    if chunk_overlap_tokens is not None:
        fields["chunk_overlap_tokens"] = chunk_overlap_tokens
    _validate_collection(fields)
    org_id = organization if isinstance(organization, int) else organization.pk
    return Collection.unscoped.create(organization_id=org_id, **fields)


@transaction.atomic
def collection_update(
    *,
    collection: Collection,
    name: str | None = None,
    embedding_model: str | None = None,
    embedding_dimension: int | None = None,
    embedding_base_url: str | None = None,
    embedding_api_key: str | None = None,
    chunk_max_tokens: int | None = None,
    chunk_overlap_tokens: int | None = None,
    language: str | None = None,
) -> tuple[Collection, bool]:
    """Change a collection. A new embedding model or chunking re-indexes every document; returns (collection,
    reindexing). A new language re-indexes the full text only (no embedding), in SQL, on commit."""
    fields: dict[str, Any] = {}
    if language is not None:
        fields["language"] = text_search_language(language)
    if name is not None:
        fields["name"] = name.strip()
    if embedding_model is not None:
        fields.update(
            _embedding_fields(
                embedding_model,
                embedding_dimension or collection.embedding_dimension,
                collection.embedding_base_url if embedding_base_url is None else embedding_base_url,
                collection.embedding_api_key if embedding_api_key is None else embedding_api_key,
            )
        )
    if chunk_max_tokens is not None:
        fields["chunk_max_tokens"] = chunk_max_tokens
    if chunk_overlap_tokens is not None:
        fields["chunk_overlap_tokens"] = chunk_overlap_tokens
    _validate_collection(fields)
    collection = Collection.unscoped.select_for_update().get(pk=collection.pk)
    index_fields = ("embedding_model", "embedding_dimension", "embedding_base_url", "chunk_max_tokens")
    index_fields += ("chunk_overlap_tokens",)
    reindex = any(k in fields and fields[k] != getattr(collection, k) for k in index_fields)
    relanguage = "language" in fields and fields["language"] != collection.language
    for key, value in fields.items():
        setattr(collection, key, value)
    collection.save()
    if reindex:
        collection_reindex(collection=collection)
    if relanguage:
        chunks_set_language(collection=collection)
    return collection, reindex


# ISO 639-1 codes (and pt-BR style tags) for the built-in configurations; anything else must be a config's name.
_LANGUAGE_CODES = {
    "ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "da": "danish", "nl": "dutch",
    "en": "english", "fi": "finnish", "fr": "french", "de": "german", "el": "greek", "hi": "hindi",
    "hu": "hungarian", "id": "indonesian", "ga": "irish", "it": "italian", "lt": "lithuanian", "ne": "nepali",
    "no": "norwegian", "nb": "norwegian", "pt": "portuguese", "ro": "romanian", "ru": "russian", "sr": "serbian",
    "es": "spanish", "sv": "swedish", "ta": "tamil", "tr": "turkish", "yi": "yiddish",
}  # fmt: skip


def text_search_language(value: str) -> str:
    """The PostgreSQL text search configuration for ``value``: a configuration's name (``portuguese``,
    ``simple``) or a language code (``pt``, ``pt-BR``)."""
    name = (value or "").strip().lower() if isinstance(value, str) else ""
    name = _LANGUAGE_CODES.get(name.replace("_", "-").split("-")[0], name) if len(name) <= 5 else name
    if name not in LANGUAGES:
        raise InvalidRequest(
            f"'language' must be one of {', '.join(LANGUAGES)} (or a language code such as 'pt').", param="language"
        )
    return name


def chunks_set_language(*, collection: Collection) -> None:
    """Re-index the collection's full text in its (new) language, once the surrounding transaction commits.

    One UPDATE of the chunks' ``language``: PostgreSQL recomputes each generated ``search_vector``; no embedding.
    A concurrent ingestion cannot leave chunks in the old language: it reads the language with the collection row
    ``FOR SHARE`` in the transaction that inserts the chunks, so either it commits first (this update, which locks
    that row ``FOR UPDATE``, waits, and its UPDATE then sees those chunks), or it reads the new language.
    """
    from django.db import connection

    def update() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE knowledge_chunk SET language = c.language::regconfig FROM knowledge_collection c "
                "WHERE c.id = %s AND knowledge_chunk.collection_id = c.id "
                "AND knowledge_chunk.organization_id = c.organization_id AND knowledge_chunk.language <> "
                "c.language::regconfig",
                [collection.pk],
            )

    transaction.on_commit(update)


@transaction.atomic
def collection_reindex(*, collection: Collection) -> int:
    """Queue every document of the collection again (new model or chunking). Old chunks stay searchable (full
    text always; by vector while the dimension is unchanged) until each document's new chunks replace them."""
    documents = list(
        Document.objects.for_org(collection.organization_id)
        .filter(collection=collection)
        .exclude(status=DocumentStatus.CANCELLED)
        .select_for_update()
    )
    now = timezone.now()
    Document.unscoped.filter(pk__in=[d.pk for d in documents]).update(
        status=DocumentStatus.QUEUED, progress=0, attempts=0, failure_reason="", enqueued_at=now
    )
    enqueue_indexing(documents)
    return len(documents)


def _delete_files_on_commit(names: list[str]) -> None:
    names = [n for n in names if n]
    if not names:
        return

    def delete() -> None:
        from django.core.files.storage import default_storage

        for name in names:
            with contextlib.suppress(OSError):
                default_storage.delete(name)

    transaction.on_commit(delete)


@transaction.atomic
def collection_reset(*, collection: Collection) -> int:
    """Remove every document (and chunk) but keep the collection and its settings. Returns how many."""
    documents = Document.objects.for_org(collection.organization_id).filter(collection=collection)
    _delete_files_on_commit(list(documents.exclude(file="").values_list("file", flat=True)))
    Chunk.objects.for_org(collection.organization_id).filter(collection=collection).delete()
    count = documents.count()
    documents.delete()
    return count


@transaction.atomic
def collection_delete(*, collection: Collection) -> None:
    """Delete the collection, its documents and chunks. Gateways linked to it lose the link (SET NULL); their
    cached configurations are dropped on commit so they stop searching it at once."""
    organization_id = collection.organization_id
    collection_reset(collection=collection)
    collection.delete()

    def forget_gateways() -> None:
        from gateways.cache import forget_organization

        forget_organization(organization_id)

    transaction.on_commit(forget_gateways)


# ---- documents


@dataclass(frozen=True)
class UpsertResult:
    document: Document
    state: UpsertState
    needs_indexing: bool = False


def _check_name(name: str, param: str = "name") -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidRequest(f"A document needs a name of 1 to {MAX_NAME} characters.", param=param)
    return name


def _upsert(
    *,
    collection: Collection,
    name: str,
    digest: str,
    values: dict[str, Any],
    file: tuple[str, bytes] | None = None,
    to_index: list[Document] | None = None,
) -> UpsertResult:
    """Create or update the document named ``name``; queue it when its content changed (or it never indexed).

    With ``to_index``, a document to index is appended there instead of enqueued: the caller enqueues the lot
    (a bulk upload's documents then share indexing batches)."""
    for _attempt in range(2):
        try:
            with transaction.atomic():
                result = _upsert_once(collection=collection, name=name, digest=digest, values=values, file=file)
            if result.needs_indexing:
                if to_index is None:
                    enqueue_indexing([result.document])
                else:
                    to_index.append(result.document)
            return result
        except IntegrityError:
            continue  # created concurrently under the same name: the second pass updates it
    raise InvalidRequest("The document is being written concurrently; retry.", param="name")


def _upsert_once(
    *, collection: Collection, name: str, digest: str, values: dict[str, Any], file: tuple[str, bytes] | None
) -> UpsertResult:
    existing = (
        Document.objects.for_org(collection.organization_id)
        .select_for_update()
        .filter(collection=collection, name=name)
        .first()
    )
    now = timezone.now()
    if existing is None:
        document = Document(
            organization_id=collection.organization_id,
            collection=collection,
            name=name,
            content_hash=digest,
            status=DocumentStatus.QUEUED,
            enqueued_at=now,
            **values,
        )
        if file is not None:
            document.file.save(file[0], ContentFile(file[1]), save=False)
        document.save(force_insert=True)
        return UpsertResult(document, UpsertState.CREATED, needs_indexing=True)

    same_content = existing.content_hash == digest and existing.status not in (
        DocumentStatus.FAILED,
        DocumentStatus.CANCELLED,
    )
    # What the user sees and filters by; the file's declared type or size alone changes nothing.
    same_meta = all(getattr(existing, key) == values[key] for key in ("reference", "tags", "metadata") if key in values)
    if same_content and same_meta:
        return UpsertResult(existing, UpsertState.NOT_MODIFIED)
    for key, value in values.items():
        if key != "content" or not same_content:
            setattr(existing, key, value)
    if not same_content:
        old_file = existing.file.name if existing.file else ""
        existing.content_hash = digest
        existing.status = DocumentStatus.QUEUED
        existing.progress = 0
        existing.attempts = 0
        existing.failure_reason = ""
        existing.enqueued_at = now
        if file is not None:
            existing.file.save(file[0], ContentFile(file[1]), save=False)
            _delete_files_on_commit([old_file])
    existing.save()
    return UpsertResult(existing, UpsertState.MODIFIED, needs_indexing=not same_content)


def document_upsert(
    *,
    collection: Collection,
    name: str,
    contents: str,
    reference: str = "",
    tags: list[str] | tuple[str, ...] | str | None = None,
    metadata: dict[str, Any] | None = None,
    to_index: list[Document] | None = None,
) -> UpsertResult:
    """The AIVAX ``PUT .../documents``: Created, Modified, or NotModified (nothing re-embedded, nothing billed)."""
    name = _check_name(name)
    if not isinstance(contents, str) or not contents.strip():
        raise InvalidRequest("'contents' must be a non-empty string.", param="contents")
    if len(contents) > 1_000_000:
        raise InvalidRequest("'contents' is longer than 1,000,000 characters; upload it as a file.", param="contents")
    reference = (reference or "").strip()
    if len(reference) > MAX_NAME:
        raise InvalidRequest(f"'reference' has more than {MAX_NAME} characters.", param="reference")
    try:
        clean_tags = list(normalise_tags(tags))
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="tags") from exc
    values = {
        "content": contents,
        "reference": reference,
        "tags": clean_tags,
        "metadata": metadata or {},
        "source_kind": SourceKind.TEXT,
        "size_bytes": len(contents.encode()),
    }
    return _upsert(collection=collection, name=name, digest=content_hash(contents), values=values, to_index=to_index)


@dataclass(frozen=True)
class BulkResult:
    created: int
    modified: int
    not_modified: int
    document_ids: list[str]


def documents_bulk_upsert(*, collection: Collection, documents: list[BulkDocument]) -> BulkResult:
    """Upsert each line of a validated JSONL file (knowledge.bulk.parse_bulk_jsonl) in one transaction; the
    documents to index are enqueued together (in batches, see ``enqueue_indexing``) when it commits."""
    counts = dict.fromkeys(UpsertState, 0)
    ids: list[str] = []
    to_index: list[Document] = []
    with transaction.atomic():
        for item in documents:
            result = document_upsert(
                collection=collection,
                name=item.name,
                contents=item.text,
                reference=item.reference,
                tags=list(item.tags),
                metadata=item.metadata,
                to_index=to_index,
            )
            counts[result.state] += 1
            ids.append(str(result.document.pk))
        enqueue_indexing(to_index)
    return BulkResult(counts[UpsertState.CREATED], counts[UpsertState.MODIFIED], counts[UpsertState.NOT_MODIFIED], ids)


@dataclass(frozen=True)
class FileUpload:
    name: str
    data: bytes
    content_type: str | None = None
    size: int | None = None  # when known before reading (an upload too large to read is refused by size)


@dataclass(frozen=True)
class FileUploadResult:
    name: str
    document: Document | None
    state: UpsertState | None
    error: str | None = None


def documents_upload_files(
    *,
    collection: Collection,
    files: list[FileUpload],
    reference: str = "",
    tags: list[str] | tuple[str, ...] | None = None,
) -> list[FileUploadResult]:
    """Each file becomes a document named after it (an upsert: the same name replaces, the same bytes are
    NotModified). Files that are too large or of an unsupported type are refused here with their reason; the
    rest is parsed by the worker, where a damaged file ends ``failed`` with its reason."""
    if not files:
        raise InvalidRequest("No files were sent.", param="files")
    if len(files) > MAX_FILES_PER_UPLOAD:
        raise InvalidRequest(f"At most {MAX_FILES_PER_UPLOAD} files per upload.", param="files")
    try:
        clean_tags = list(normalise_tags(tags))
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="tags") from exc
    results: list[FileUploadResult] = []
    for upload in files:
        name = (upload.name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()[:MAX_NAME] or "upload"
        try:
            size = upload.size if upload.size is not None else len(upload.data)
            if size > parsing.DEFAULT_LIMITS.max_bytes:
                raise parsing.DocumentParseError(
                    f"The file is larger than the limit of {_size(parsing.DEFAULT_LIMITS.max_bytes)}.", code="too_large"
                )
            if not upload.data:
                raise parsing.DocumentParseError("The file is empty.", code="empty")
            kind = parsing.detect_kind(upload.data, filename=name, content_type=upload.content_type)
        except parsing.DocumentParseError as exc:
            results.append(FileUploadResult(name=name, document=None, state=None, error=exc.reason))
            continue
        values = {
            "reference": (reference or "").strip(),
            "tags": clean_tags,
            "source_kind": SourceKind.FILE,
            "file_kind": kind,
            "content_type": (upload.content_type or "")[:200],
            "size_bytes": len(upload.data),
        }
        result = _upsert(
            collection=collection,
            name=name,
            digest=content_hash(upload.data),
            values=values,
            file=(name, upload.data),
        )
        results.append(FileUploadResult(name=name, document=result.document, state=result.state))
    return results


def _size(value: int) -> str:
    return f"{value / parsing.MiB:.0f} MiB" if value >= parsing.MiB else f"{value / 1024:.1f} KiB"


@transaction.atomic
def document_delete(*, document: Document) -> None:
    """Delete a document and its chunks (a running task finds it gone and stops)."""
    _delete_files_on_commit([document.file.name] if document.file else [])
    Chunk.objects.for_org(document.organization_id).filter(document=document).delete()
    document.delete()


def document_cancel(*, document: Document) -> bool:
    """Stop a queued or processing document; its chunks (if any) are left as they were."""
    updated = (
        Document.objects.for_org(document.organization_id)
        .filter(pk=document.pk, status__in=ACTIVE_STATUSES)
        .update(status=DocumentStatus.CANCELLED, progress=0, failure_reason="Cancelled.")
    )
    return bool(updated)


@transaction.atomic
def document_retry(*, document: Document) -> bool:
    """Queue a failed or cancelled document again (attempts start over)."""
    updated = (
        Document.objects.for_org(document.organization_id)
        .filter(pk=document.pk)
        .filter(Q(status=DocumentStatus.FAILED) | Q(status=DocumentStatus.CANCELLED))
        .update(status=DocumentStatus.QUEUED, progress=0, attempts=0, failure_reason="", enqueued_at=timezone.now())
    )
    if updated:
        document.refresh_from_db()
        enqueue_indexing([document])
    return bool(updated)


# ---- search (billed)


def collection_query(
    *,
    organization_id: int,
    collection_id: uuid.UUID | str,
    term: str,
    top: int = 10,
    min_score: float = 0.0,
    mode: str = "hybrid",
    use_references: bool = True,
    api_key_id: uuid.UUID | None = None,
) -> SearchResult:
    """Search a collection and bill ``knowledge.search`` by the query's tokens (402 when the organization cannot
    pay). For the API and the console; the gateway bills its searches with the chat request instead."""
    from django.conf import settings

    from billing.services import charge, ensure_can_spend

    billed = settings.BILLING_ENABLED
    if billed:
        ensure_can_spend(organization_id=organization_id)
    result = search_collection(
        organization_id=organization_id,
        collection_id=collection_id,
        term=term,
        top=top,
        min_score=min_score,
        mode=mode,
        use_references=use_references,
    )
    if not billed:
        return result
    result.usage_lines = charge(
        organization_id=organization_id,
        request_id=f"search-{uuid.uuid4().hex}",
        lines=[search_usage_line(result.query_tokens)],
        api_key_id=api_key_id,
        model="knowledge-search",
        metadata={"collection_id": str(collection_id), "mode": mode},
    )
    return result


def search_usage_line(query_tokens: int) -> UsageLine:
    return price_platform_sku(
        sku=skus.KNOWLEDGE_SEARCH, quantity=max(1, query_tokens), description="Knowledge collection search"
    )


async def asearch_usage_line(query_tokens: int) -> UsageLine:
    return await aprice_platform_sku(
        sku=skus.KNOWLEDGE_SEARCH, quantity=max(1, query_tokens), description="Knowledge collection search"
    )
