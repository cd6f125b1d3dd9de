"""Indexing in batches across documents: shared model calls, per-document billing, progress and failures."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import Organization
from billing.models import LedgerEntry
from knowledge import ingestion, providers, services
from knowledge.bulk import BulkDocument
from knowledge.embeddings import EmbeddingError, EmbeddingResult
from knowledge.ingestion import documents_ingest
from knowledge.models import Chunk, Collection, Document, DocumentStatus

pytestmark = pytest.mark.django_db


class Counting:
    """The local model, counting its calls and the texts of each."""

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.real = providers.local_embedder()
        self.name, self.dimension = self.real.name, self.real.dimension
        self.max_input_tokens = self.real.max_input_tokens
        self.calls: list[int] = []
        self.fail_with = fail_with

    def embed(self, texts: list[str]) -> EmbeddingResult:
        self.calls.append(len(texts))
        if self.fail_with is not None:
            raise self.fail_with
        return self.real.embed(texts)


def _bulk(collection: Collection, count: int, prefix: str = "faq") -> list[Document]:
    items = [
        BulkDocument(line=i + 1, name=f"{prefix}-{i}", text=f"Answer number {i} about topic {i}.") for i in range(count)
    ]
    services.documents_bulk_upsert(collection=collection, documents=items)
    return list(Document.objects.for_org(collection.organization_id).filter(collection=collection).order_by("name"))


def _jobs(documents: list[Document]) -> list[tuple[str, str]]:
    return [(str(d.pk), d.content_hash) for d in documents]


def test_a_batch_shares_model_calls_and_bills_each_document(
    funded_org: Organization, collection: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    documents = _bulk(collection, 5)
    counting = Counting()
    monkeypatch.setattr(ingestion, "embedder_for", lambda collection: counting)
    outcomes = documents_ingest(jobs=_jobs(documents))
    assert {o.status for o in outcomes.values()} == {"indexed"} and len(outcomes) == 5
    assert counting.calls == [5]  # five one-chunk documents, one model call (one call per document before)

    billed = LedgerEntry.objects.for_org(funded_org).filter(sku="knowledge.embedding")
    assert billed.count() == 5
    for document in documents:
        document.refresh_from_db()
        assert (document.status, document.progress, document.chunk_count) == ("indexed", 100, 1)
        # Each document is billed what it consumed: its word-pieces plus [CLS] and [SEP].
        chunk = Chunk.objects.for_org(funded_org).get(document=document)
        assert document.token_count == chunk.token_count + 2
        assert billed.get(request_id=ingestion.embedding_request_id(document, counting.name)).quantity == (
            document.token_count
        )
    # The same jobs again: nothing claimed, nothing embedded or billed twice.
    assert {o.status for o in documents_ingest(jobs=_jobs(documents)).values()} <= {"skipped"}
    assert counting.calls == [5] and billed.count() == 5


def test_long_documents_span_calls_with_progress_and_a_cancelled_one_stops(
    funded_org: Organization, collection: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_text = "\n\n".join(" ".join(f"Sentence {i}.{j} on subject {i}." for j in range(60)) for i in range(6))
    first = services.document_upsert(collection=collection, name="long-a", contents=long_text).document
    second = services.document_upsert(collection=collection, name="long-b", contents=long_text + " More.").document
    counting = Counting()
    progress: list[tuple[str, int]] = []
    real_progress = ingestion._progress

    def watch(document_id: Any, digest: str, value: int) -> None:
        progress.append((str(document_id), value))
        real_progress(document_id, digest, value)
        if str(document_id) == str(second.pk):  # cancelled by its owner while being embedded
            services.document_cancel(document=second)

    monkeypatch.setattr(ingestion, "embedder_for", lambda collection: counting)
    monkeypatch.setattr(ingestion, "_progress", watch)
    monkeypatch.setattr(ingestion, "EMBED_BATCH", 4)
    outcomes = documents_ingest(jobs=_jobs([first, second]))
    assert outcomes[str(first.pk)].status == "indexed"
    assert outcomes[str(second.pk)].status == "skipped"
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.chunk_count > 4 and first.status == DocumentStatus.INDEXED
    assert second.status == DocumentStatus.CANCELLED and not Chunk.objects.for_org(funded_org).filter(document=second)
    # Progress moved per document, between model calls, and never backwards.
    mine = [value for key, value in progress if key == str(first.pk)]
    assert mine and mine == sorted(mine) and 20 < mine[-1] < 90
    assert all(size <= 4 for size in counting.calls)


def test_a_transient_failure_requeues_the_batch_and_a_permanent_one_fails_it(
    funded_org: Organization, collection: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    documents = _bulk(collection, 3)
    monkeypatch.setattr(ingestion, "embedder_for", lambda collection: Counting(EmbeddingError("busy", retryable=True)))
    with pytest.raises(ingestion.RetryLater):
        documents_ingest(jobs=_jobs(documents))
    assert set(Document.objects.for_org(funded_org).values_list("status", flat=True)) == {DocumentStatus.QUEUED}

    monkeypatch.setattr(ingestion, "embedder_for", lambda collection: Counting(EmbeddingError("bad model")))
    outcomes = documents_ingest(jobs=_jobs(documents))
    assert {o.status for o in outcomes.values()} == {"failed"}
    reasons = set(Document.objects.for_org(funded_org).values_list("failure_reason", flat=True))
    assert reasons == {"Embedding failed: bad model"}
    assert not LedgerEntry.objects.for_org(funded_org).filter(sku="knowledge.embedding").exists()


def test_uploads_enqueue_text_documents_in_batches_and_files_alone(
    funded_org: Organization, collection: Collection, settings, django_capture_on_commit_callbacks
) -> None:
    from knowledge import tasks

    settings.KNOWLEDGE_INDEX_BATCH = 4
    sent: list[list[list[str]]] = []
    original = tasks.ingest_documents.delay
    tasks.ingest_documents.delay = lambda jobs: sent.append(jobs)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            _bulk(collection, 10)
        with django_capture_on_commit_callbacks(execute=True):
            services.documents_upload_files(
                collection=collection,
                files=[services.FileUpload(name=f"n{i}.txt", data=b"Some notes.") for i in range(2)],
            )
    finally:
        tasks.ingest_documents.delay = original
    assert [len(jobs) for jobs in sent] == [4, 4, 2, 1, 1]
    names = set(Document.objects.for_org(funded_org).values_list("pk", flat=True))
    assert {job[0] for jobs in sent for job in jobs} == {str(pk) for pk in names}


def test_a_balance_exhausted_mid_batch_fails_only_the_unpaid_documents(
    funded_org: Organization, collection: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aivax.errors import InsufficientBalance

    documents = _bulk(collection, 3)
    real_charge = ingestion.charge
    paid: list[str] = []

    def charge(**kwargs: Any) -> Any:
        if paid:  # the first document empties the balance
            raise InsufficientBalance("The organization's balance is exhausted.")
        paid.append(kwargs["request_id"])
        return real_charge(**kwargs)

    monkeypatch.setattr(ingestion, "charge", charge)
    outcomes = documents_ingest(jobs=_jobs(documents))
    assert sorted(o.status for o in outcomes.values()) == ["failed", "failed", "indexed"]
    failed = Document.objects.for_org(funded_org).filter(status=DocumentStatus.FAILED)
    assert failed.count() == 2 and {d.failure_reason for d in failed} == {ingestion.BALANCE_REASON}
    assert not Chunk.objects.for_org(funded_org).filter(document__in=failed).exists()
