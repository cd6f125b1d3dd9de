"""Indexing documents: parse -> chunk -> embed in batches -> bill -> replace their chunks -> indexed.

Run by the Celery task ``knowledge.ingest_documents([[document_id, content_hash], ...])`` (knowledge.tasks; a
bulk upload's documents come in batches whose chunks share model calls), or directly.

- **Claim**: a task starts only from ``queued`` (one conditional UPDATE for the batch sets ``processing``, stamps
  ``processing_started_at`` and counts the attempt), so a duplicate message finds nothing to do.
- **Idempotent**: the final transaction locks the document row, checks it is still ours (same content hash, still
  ``processing``), deletes the document's previous chunks and inserts the new ones, bills and marks it
  ``indexed`` together. A retried or duplicated task can never leave two sets of chunks, and a document that was
  changed, cancelled or deleted meanwhile is left alone.
- **Billing**: ``knowledge.embedding`` by the tokens embedded, request id ``embed-<document>-<hash>-<model>``:
  a retry bills nothing twice; a re-index with another model is a new bill. An organization that cannot pay
  gets the document ``failed`` with the reason. Tenants' own embedding endpoints are not billed.
- **Crashes**: a killed worker leaves the row ``processing``; the beat sweeper (knowledge/sweep.py) puts it back
  in the queue, and after ``max_attempts`` marks it ``failed`` with the reason.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from pgvector.psycopg import register_vector

from aivax import metrics
from aivax.errors import InsufficientBalance
from billing import skus
from billing.pricing import price_platform_sku
from billing.services import charge, ensure_can_spend
from knowledge.chunking import Chunk as Chunked
from knowledge.chunking import chunk_text
from knowledge.embeddings import EmbeddingError
from knowledge.models import Chunk, Collection, Document, DocumentStatus, SourceKind
from knowledge.parsing import DocumentParseError, parse_document
from knowledge.providers import embedder_for, max_chunk_tokens, token_counter

logger = logging.getLogger(__name__)

EMBED_BATCH = 64  # chunks per model call, across documents
BALANCE_REASON = "The organization's balance is exhausted: add credit, then upload the document again."


class RetryLater(Exception):
    """A transient failure (the embedding service timed out, say): the task should retry the document."""


def max_attempts() -> int:
    return int(getattr(settings, "KNOWLEDGE_MAX_ATTEMPTS", 3))


def embedding_request_id(document: Document, model: str) -> str:
    model_tag = hashlib.sha256(model.encode()).hexdigest()[:8]
    return f"embed-{document.pk}-{document.content_hash[:16]}-{model_tag}"


def _mine(document_id: uuid.UUID | str, digest: str):
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


@dataclass
class _Pending:
    """A claimed document on its way through one batch: its chunks, and their vectors as they arrive."""

    document: Document
    chunks: list[Chunked]
    extracted: str | None
    vectors: list[list[float]] = field(default_factory=list)
    tokens: int = 0
    dropped: bool = False


def document_ingest(*, document_id: uuid.UUID | str, content_hash: str) -> IngestOutcome:
    """Index one document if it is still queued with this content; see the module docstring."""
    return documents_ingest(jobs=[(str(document_id), content_hash)]).get(
        str(document_id), IngestOutcome("skipped", "not queued with this content")
    )


def _claim(jobs: list[tuple[str, str]]) -> list[str]:
    """Claim every job still ``queued`` with its content hash, in one statement; returns the claimed ids."""
    ids, digests = [j[0] for j in jobs], [j[1] for j in jobs]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE knowledge_document d
            SET status = %s, processing_started_at = %s, attempts = d.attempts + 1, progress = 1,
                failure_reason = '', updated_at = %s
            FROM unnest(%s::uuid[], %s::text[]) AS j(id, digest)
            WHERE d.id = j.id AND d.content_hash = j.digest AND d.status = %s
            RETURNING d.id
            """,
            [DocumentStatus.PROCESSING, timezone.now(), timezone.now(), ids, digests, DocumentStatus.QUEUED],
        )
        return [str(row[0]) for row in cursor.fetchall()]


def documents_ingest(*, jobs: list[tuple[str, str]]) -> dict[str, IngestOutcome]:
    """Index a batch of documents, ``(id, content hash)`` each: the ones still queued with that content.

    Documents are claimed together, chunked one by one, embedded together in batches of ``EMBED_BATCH`` chunks
    that cross document boundaries (a bulk upload of short documents fills each model call), and each document
    is written, billed and marked ``indexed`` in its own transaction as soon as its last chunk is embedded: a
    failure or a crash costs only the documents not yet written, and progress stays per document.

    Raises :class:`RetryLater` after putting back in the queue the documents a transient embedding failure
    stopped (the task retries the same jobs; the documents already indexed are skipped, not claimed again).
    """
    claimed = _claim(jobs)
    outcomes: dict[str, IngestOutcome] = {}
    documents = list(Document.unscoped.select_related("collection").filter(pk__in=claimed))
    order = {str(job[0]): index for index, job in enumerate(jobs)}
    documents.sort(key=lambda d: order.get(str(d.pk), len(order)))
    groups: dict[Any, list[Document]] = {}
    for document in documents:
        groups.setdefault(document.collection_id, []).append(document)
    retry: list[str] = []
    for group in groups.values():
        try:
            _ingest_group(group, outcomes)
        except EmbeddingError as exc:
            for document in group:
                if str(document.pk) in outcomes:
                    continue
                if exc.retryable and document.attempts < max_attempts():  # attempts counts this one
                    _mine(document.pk, document.content_hash).update(
                        status=DocumentStatus.QUEUED, progress=0, enqueued_at=timezone.now()
                    )
                    retry.append(str(exc))
                    outcomes[str(document.pk)] = IngestOutcome("retry", str(exc))
                else:
                    _fail(document.pk, document.content_hash, f"Embedding failed: {exc}")
                    outcomes[str(document.pk)] = IngestOutcome("failed", str(exc))
    if retry:
        raise RetryLater(retry[0])
    return outcomes


def _ingest_group(documents: list[Document], outcomes: dict[str, IngestOutcome]) -> None:
    """The claimed documents of one collection (one embedder)."""
    collection: Collection = documents[0].collection
    embedder = embedder_for(collection)
    # The platform's model is billed; a tenant's own endpoint is not; nothing is with BILLING_ENABLED off.
    billed = collection.is_local_embedding and settings.BILLING_ENABLED
    max_tokens = max_chunk_tokens(collection, embedder)
    pending: list[_Pending] = []
    for document in documents:
        key = str(document.pk)
        try:
            if billed:
                ensure_can_spend(organization_id=document.organization_id)
            text, extracted = _document_text(document)
            if extracted is not None:
                _progress(document.pk, document.content_hash, 10)  # a file was parsed (that can take a while)
            chunks = chunk_text(
                text,
                max_tokens=max_tokens,
                overlap_tokens=collection.chunk_overlap_tokens,
                count_tokens=token_counter(),
            )
            if not chunks:
                raise DocumentParseError("The document has no text to index.", code="empty")
        except DocumentParseError as exc:
            _fail(document.pk, document.content_hash, exc.reason)
            outcomes[key] = IngestOutcome("failed", exc.reason)
            continue
        except InsufficientBalance:
            _fail(document.pk, document.content_hash, BALANCE_REASON)
            outcomes[key] = IngestOutcome("failed", BALANCE_REASON)
            continue
        pending.append(_Pending(document, chunks, extracted))

    # (document, chunk) pairs in document order; each model call takes EMBED_BATCH of them.
    flat = [(item, chunk) for item in pending for chunk in item.chunks]
    for start in range(0, len(flat), EMBED_BATCH):
        batch = flat[start : start + EMBED_BATCH]
        # A long document is checked between its batches: changed, cancelled or deleted meanwhile -> stop it.
        for item in {id(i): i for i, _ in batch}.values():
            if item.vectors and not item.dropped and not _mine(item.document.pk, item.document.content_hash).exists():
                item.dropped = True
                outcomes[str(item.document.pk)] = IngestOutcome(
                    "skipped", "changed, cancelled or deleted while indexing"
                )
        batch = [(item, chunk) for item, chunk in batch if not item.dropped]
        if not batch:
            continue
        result = embedder.embed([chunk.text for _, chunk in batch])
        if len(result.vectors) != len(batch):
            raise EmbeddingError(f"The embedder returned {len(result.vectors)} vectors for {len(batch)} texts.")
        for (item, _chunk), vector in zip(batch, result.vectors, strict=True):
            item.vectors.append(vector)
        # Tokens are billed per document: the call's count is shared by each chunk's size (special tokens
        # included), which for the local model is exactly what each chunk consumed; the rounding goes to the last.
        sizes: dict[int, int] = {}
        for item, chunk in batch:
            sizes[id(item)] = sizes.get(id(item), 0) + chunk.token_count + 2
        total, given = sum(sizes.values()) or 1, 0
        for index, key in enumerate(sizes):
            share = result.token_count - given if index == len(sizes) - 1 else result.token_count * sizes[key] // total
            sizes[key], given = share, given + share
        for item in {id(i): i for i, _ in batch}.values():
            item.tokens += sizes[id(item)]
            if len(item.vectors) == len(item.chunks):
                try:
                    outcome = _write(item, embedder.name, billed, collection.embedding_dimension)
                except InsufficientBalance:  # the balance ran out during the batch: this one is not indexed
                    _fail(item.document.pk, item.document.content_hash, BALANCE_REASON)
                    outcome = IngestOutcome("failed", BALANCE_REASON)
                outcomes[str(item.document.pk)] = outcome
            elif len(item.chunks) > EMBED_BATCH:  # progress for documents longer than one model call
                _progress(
                    item.document.pk, item.document.content_hash, 20 + int(70 * len(item.vectors) / len(item.chunks))
                )


def _write(item: _Pending, model: str, billed: bool, dimension: int) -> IngestOutcome:
    """Replace the document's chunks with the new ones, bill, mark it indexed: one transaction."""
    document, chunks, vectors = item.document, item.chunks, item.vectors
    digest = document.content_hash
    if any(len(v) != dimension for v in vectors):
        raise EmbeddingError(f"The embedder returned vectors of another size than {dimension}.")
    with transaction.atomic():
        locked = Document.unscoped.select_for_update().filter(pk=document.pk).first()
        if locked is None or locked.content_hash != digest or locked.status != DocumentStatus.PROCESSING:
            return IngestOutcome("skipped", "changed, cancelled or deleted while indexing")
        if billed:
            line = price_platform_sku(
                sku=skus.KNOWLEDGE_EMBEDDING,
                quantity=item.tokens,
                description=f"Embedding of document '{document.name[:120]}' ({model})",
            )
            charge(
                organization_id=document.organization_id,
                request_id=embedding_request_id(document, model),
                lines=[line],
                model=model,
                metadata={"collection_id": str(document.collection_id), "document_id": str(document.pk)},
            )
        Chunk.unscoped.filter(document_id=document.pk).delete()
        _copy_chunks(document, chunks, vectors)
        update = {
            "status": DocumentStatus.INDEXED,
            "progress": 100,
            "chunk_count": len(chunks),
            "token_count": item.tokens,
            "indexed_model": model,
            "indexed_at": timezone.now(),
            "failure_reason": "",
            "updated_at": timezone.now(),
        }
        if item.extracted is not None:
            update["content"] = item.extracted
        Document.unscoped.filter(pk=document.pk).update(**update)
    metrics.record_ingested(chunks=len(chunks))
    return IngestOutcome("indexed", f"{len(chunks)} chunks")


_vector_ready: weakref.WeakSet[Any] = weakref.WeakSet()


def _copy_chunks(document: Document, chunks: list[Chunked], vectors: list[list[float]]) -> None:
    """Insert the chunks with one binary COPY (no per-row statement parsing).

    The full-text language is read here, with the collection row ``FOR SHARE``: a language change (which locks
    that row ``FOR UPDATE`` and then re-languages the chunks on commit) either waits for this transaction or has
    already committed the language read here (knowledge.services.chunks_set_language)."""
    connection.ensure_connection()
    raw = connection.connection
    if raw not in _vector_ready:  # register_vector looks the type up: once per connection, not per document
        register_vector(raw)
        _vector_ready.add(raw)
    with raw.cursor() as cursor:
        cursor.execute(
            "SELECT language::regconfig::oid FROM knowledge_collection WHERE id = %s FOR SHARE",
            [document.collection_id],
        )
        row = cursor.fetchone()
        language_oid = row[0] if row else None
        sql = (
            "COPY knowledge_chunk (organization_id, collection_id, document_id, position, text, token_count, "
            "dimension, embedding, language) FROM STDIN WITH (FORMAT BINARY)"
        )
        with cursor.copy(sql) as copy:
            # regconfig's binary form is its oid: written as one.
            copy.set_types(["int8", "uuid", "uuid", "int4", "text", "int4", "int2", "vector", "oid"])
            for chunk, vector in zip(chunks, vectors, strict=True):
                copy.write_row(
                    (
                        document.organization_id,
                        document.collection_id,
                        document.pk,
                        chunk.position,
                        chunk.text,
                        chunk.token_count,
                        len(vector),
                        np.asarray(vector, dtype=np.float32),
                        language_oid,
                    )
                )
