"""Indexing one document: parse -> chunk -> embed in batches -> bill -> replace its chunks -> indexed.

Run by the Celery task ``knowledge.ingest_document(document_id, content_hash)`` (knowledge.tasks), or directly.

- **Claim**: a task starts only from ``queued`` (one conditional UPDATE sets ``processing``, stamps
  ``processing_started_at`` and counts the attempt), so a duplicate message finds nothing to do.
- **Idempotent**: the final transaction locks the document row, checks it is still ours (same content hash, still
  ``processing``), deletes the document's previous chunks and inserts the new ones, bills and marks it
  ``indexed`` together. A retried or duplicated task can never leave two sets of chunks, and a document that was
  changed, cancelled or deleted meanwhile is left alone.
- **Billing**: ``knowledge.embedding`` by the tokens embedded, request id ``embed-<document>-<hash>-<model>``:
  a retry bills nothing twice; a re-index with another model is a new bill. An organization that cannot pay
  gets the document ``failed`` with the reason. Tenants' own embedding endpoints are not billed.
- **Crashes**: a killed worker leaves the row ``processing``; :func:`documents_requeue_stale` (on beat) puts it
  back in the queue, and after ``max_attempts`` marks it ``failed`` with the reason.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from aivax import metrics
from aivax.errors import InsufficientBalance
from billing import skus
from billing.pricing import price_platform_sku
from billing.services import charge, ensure_can_spend
from knowledge.chunking import chunk_text
from knowledge.embeddings import EmbeddingError
from knowledge.models import Chunk, Collection, Document, DocumentStatus, SourceKind
from knowledge.parsing import DocumentParseError, parse_document
from knowledge.providers import embedder_for, max_chunk_tokens, token_counter

logger = logging.getLogger(__name__)

EMBED_BATCH = 32
INSERT_BATCH = 500
BALANCE_REASON = "The organization's balance is exhausted: add credit, then upload the document again."


class RetryLater(Exception):
    """A transient failure (the embedding service timed out, say): the task should retry the document."""


def stale_after() -> timedelta:
    return timedelta(seconds=getattr(settings, "KNOWLEDGE_STALE_SECONDS", 1800))


def max_attempts() -> int:
    return int(getattr(settings, "KNOWLEDGE_MAX_ATTEMPTS", 3))


def embedding_request_id(document: Document, model: str) -> str:
    model_tag = hashlib.sha256(model.encode()).hexdigest()[:8]
    return f"embed-{document.pk}-{document.content_hash[:16]}-{model_tag}"


def _mine(document_id: uuid.UUID | str, digest: str):  # type: ignore[no-untyped-def]
    return Document.unscoped.filter(pk=document_id, content_hash=digest, status=DocumentStatus.PROCESSING)


def _progress(document_id: uuid.UUID | str, digest: str, value: int) -> None:
    _mine(document_id, digest).update(progress=max(0, min(99, value)))


def _fail(document_id: uuid.UUID | str, digest: str, reason: str) -> None:
    _mine(document_id, digest).update(status=DocumentStatus.FAILED, failure_reason=reason[:2000], progress=0)


def _document_text(document: Document) -> tuple[str, str | None]:
    """(text to chunk, extracted text to store): files are parsed; text documents are used as given."""
    if document.source_kind != SourceKind.FILE:
        return document.content, None
    if not document.file:
        raise DocumentParseError("The uploaded file is missing from storage; upload it again.")
    with document.file.open("rb") as fh:
        data = fh.read()
    parsed = parse_document(data, filename=document.name, content_type=document.content_type or None)
    text = parsed.text
    if parsed.title and not text.lstrip().startswith("#"):
        text = f"# {parsed.title}\n\n{text}"
    return text, text


@dataclass(frozen=True)
class IngestOutcome:
    status: str  # indexed, failed, retry, skipped
    detail: str = ""


def document_ingest(*, document_id: uuid.UUID | str, content_hash: str) -> IngestOutcome:
    """Index the document if it is still queued with this content; see the module docstring."""
    now = timezone.now()
    claimed = Document.unscoped.filter(pk=document_id, content_hash=content_hash, status=DocumentStatus.QUEUED).update(
        status=DocumentStatus.PROCESSING,
        processing_started_at=now,
        attempts=F("attempts") + 1,
        progress=1,
        failure_reason="",
    )
    if not claimed:
        return IngestOutcome("skipped", "not queued with this content")
    document = Document.unscoped.select_related("collection").get(pk=document_id)
    try:
        return _ingest(document)
    except DocumentParseError as exc:
        _fail(document.pk, content_hash, exc.reason)
        return IngestOutcome("failed", exc.reason)
    except InsufficientBalance:
        _fail(document.pk, content_hash, BALANCE_REASON)
        return IngestOutcome("failed", BALANCE_REASON)
    except EmbeddingError as exc:
        if exc.retryable and document.attempts < max_attempts():
            _mine(document.pk, content_hash).update(status=DocumentStatus.QUEUED, progress=0, enqueued_at=now)
            raise RetryLater(str(exc)) from exc
        _fail(document.pk, content_hash, f"Embedding failed: {exc}")
        return IngestOutcome("failed", str(exc))


def _ingest(document: Document) -> IngestOutcome:
    collection: Collection = document.collection
    digest = document.content_hash
    embedder = embedder_for(collection)
    # The platform's model is billed; a tenant's own endpoint is not; nothing is with BILLING_ENABLED off.
    billed = collection.is_local_embedding and getattr(settings, "BILLING_ENABLED", True)
    if billed:
        ensure_can_spend(organization_id=document.organization_id)

    text, extracted = _document_text(document)
    if extracted is not None:
        _progress(document.pk, digest, 10)  # a file was parsed (that can take a while); text needs no such step
    chunks = chunk_text(
        text,
        max_tokens=max_chunk_tokens(collection, embedder),
        overlap_tokens=collection.chunk_overlap_tokens,
        count_tokens=token_counter(),
    )
    if not chunks:
        raise DocumentParseError("The document has no text to index.", code="empty")
    # Progress is written per embedding batch: a one-batch document (most text documents) goes 1 -> 100 directly,
    # sparing three UPDATEs per document on bulk uploads.
    batched = len(chunks) > EMBED_BATCH
    if batched:
        _progress(document.pk, digest, 20)

    vectors: list[list[float]] = []
    tokens = 0
    for start in range(0, len(chunks), EMBED_BATCH):
        if start and not _mine(document.pk, digest).exists():
            return IngestOutcome("skipped", "changed, cancelled or deleted while indexing")
        result = embedder.embed([c.text for c in chunks[start : start + EMBED_BATCH]])
        vectors.extend(result.vectors)
        tokens += result.token_count
        if batched:
            _progress(document.pk, digest, 20 + int(70 * len(vectors) / len(chunks)))
    if any(len(v) != collection.embedding_dimension for v in vectors):
        raise EmbeddingError(f"The embedder returned vectors of another size than {collection.embedding_dimension}.")

    with transaction.atomic():
        locked = Document.unscoped.select_for_update().filter(pk=document.pk).first()
        if locked is None or locked.content_hash != digest or locked.status != DocumentStatus.PROCESSING:
            return IngestOutcome("skipped", "changed, cancelled or deleted while indexing")
        if billed:
            line = price_platform_sku(
                sku=skus.KNOWLEDGE_EMBEDDING,
                quantity=tokens,
                description=f"Embedding of document '{document.name[:120]}' ({embedder.name})",
            )
            charge(
                organization_id=document.organization_id,
                request_id=embedding_request_id(document, embedder.name),
                lines=[line],
                model=embedder.name,
                metadata={"collection_id": str(collection.pk), "document_id": str(document.pk)},
            )
        Chunk.unscoped.filter(document_id=document.pk).delete()
        Chunk.unscoped.bulk_create(
            [
                Chunk(
                    organization_id=document.organization_id,
                    collection_id=collection.pk,
                    document_id=document.pk,
                    position=chunk.position,
                    text=chunk.text,
                    token_count=chunk.token_count,
                    dimension=len(vector),
                    embedding=vector,
                )
                for chunk, vector in zip(chunks, vectors, strict=True)
            ],
            batch_size=INSERT_BATCH,
        )
        update = {
            "status": DocumentStatus.INDEXED,
            "progress": 100,
            "chunk_count": len(chunks),
            "token_count": tokens,
            "indexed_model": embedder.name,
            "indexed_at": timezone.now(),
            "failure_reason": "",
            "updated_at": timezone.now(),
        }
        if extracted is not None:
            update["content"] = extracted
        Document.unscoped.filter(pk=document.pk).update(**update)
    metrics.record_ingested(chunks=len(chunks))
    return IngestOutcome("indexed", f"{len(chunks)} chunks")


@dataclass(frozen=True)
class SweepResult:
    requeued: int
    failed: int
    resent: int


def documents_requeue_stale(*, now: timezone.datetime | None = None) -> SweepResult:
    """Beat job. A document ``processing`` for longer than ``stale_after()`` lost its worker: queue it again, or
    fail it after ``max_attempts()``. A document ``queued`` for that long lost its message: send it again."""
    from knowledge.services import enqueue_indexing

    now = now or timezone.now()
    cutoff = now - stale_after()
    limit = max_attempts()
    with transaction.atomic():
        stuck = list(
            Document.unscoped.select_for_update(skip_locked=True).filter(
                status=DocumentStatus.PROCESSING, processing_started_at__lt=cutoff
            )[:1000]
        )
        give_up = [d.pk for d in stuck if d.attempts >= limit]
        retry = [d for d in stuck if d.attempts < limit]
        if give_up:
            Document.unscoped.filter(pk__in=give_up).update(
                status=DocumentStatus.FAILED,
                progress=0,
                failure_reason=(
                    f"Indexing did not finish after {limit} attempts (the worker stopped or ran out of time). "
                    "Upload the document again to retry."
                ),
            )
        if retry:
            Document.unscoped.filter(pk__in=[d.pk for d in retry]).update(
                status=DocumentStatus.QUEUED, progress=0, enqueued_at=now
            )
        lost = list(
            Document.unscoped.select_for_update(skip_locked=True).filter(
                status=DocumentStatus.QUEUED, enqueued_at__lt=cutoff
            )[:1000]
        )
        if lost:
            Document.unscoped.filter(pk__in=[d.pk for d in lost]).update(enqueued_at=now)
        enqueue_indexing(retry + lost)
    if stuck or lost:
        logger.info("knowledge sweep: %d requeued, %d failed, %d resent", len(retry), len(give_up), len(lost))
    return SweepResult(requeued=len(retry), failed=len(give_up), resent=len(lost))
