"""The indexing task: idempotent retries, crashes and the stale sweeper, billing, re-indexing, other dimensions."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from accounts.models import Organization
from billing.models import LedgerEntry
from knowledge import ingestion, providers, services
from knowledge.ingestion import BALANCE_REASON, document_ingest
from knowledge.models import Chunk, Collection, Document, DocumentStatus
from knowledge.search import search_collection
from knowledge.sweep import documents_requeue_stale
from tests.knowledge.conftest import index_queued

pytestmark = pytest.mark.django_db

LONG_TEXT = "\n\n".join(
    f"## Section {i}\n\n" + " ".join(f"Paragraph {i} sentence {j} about topic {i}." for j in range(40))
    for i in range(6)
)


def _doc(collection: Collection, name: str = "guide", text: str = LONG_TEXT) -> Document:
    return services.document_upsert(collection=collection, name=name, contents=text).document


def _chunks(document: Document) -> list[tuple[int, str]]:
    return list(
        Chunk.objects.for_org(document.organization_id).filter(document=document).values_list("position", "text")
    )


def test_a_retried_task_never_duplicates_chunks_or_bills(funded_org: Organization, collection: Collection) -> None:
    document = _doc(collection)
    assert document_ingest(document_id=document.pk, content_hash=document.content_hash).status == "indexed"
    first = _chunks(document)
    assert len(first) > 3 and [p for p, _ in first] == list(range(len(first)))
    # The same message delivered again: nothing to do.
    assert document_ingest(document_id=document.pk, content_hash=document.content_hash).status == "skipped"
    # A redelivery after the row was put back in the queue (the sweeper, an operator): same chunks, one bill.
    Document.unscoped.filter(pk=document.pk).update(status=DocumentStatus.QUEUED)
    assert document_ingest(document_id=document.pk, content_hash=document.content_hash).status == "indexed"
    assert _chunks(document) == first
    billed = LedgerEntry.objects.for_org(funded_org).filter(sku="knowledge.embedding")
    assert billed.count() == 1
    document.refresh_from_db()
    assert (document.status, document.progress, document.chunk_count) == ("indexed", 100, len(first))
    assert document.attempts == 2 and billed.get().quantity == document.token_count
    # A message for content that has since changed is ignored.
    services.document_upsert(collection=collection, name="guide", contents="New text.")
    assert document_ingest(document_id=document.pk, content_hash=document.content_hash).status == "skipped"


def test_a_crashed_task_is_requeued_by_the_sweeper_then_failed(
    funded_org: Organization,
    collection: Collection,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks,
) -> None:
    document = _doc(collection)
    real = providers.local_embedder()

    class Dies:
        name, dimension, max_input_tokens = real.name, real.dimension, real.max_input_tokens
        calls = 0

        def embed(self, texts: list[str]):
            Dies.calls += 1
            if Dies.calls == 2:
                raise SystemExit("worker killed")  # a kill mid-way: nothing is caught, nothing committed
            return real.embed(texts)

    monkeypatch.setattr(ingestion, "embedder_for", lambda collection: Dies())
    monkeypatch.setattr(ingestion, "EMBED_BATCH", 2)
    with pytest.raises(SystemExit):
        document_ingest(document_id=document.pk, content_hash=document.content_hash)
    document.refresh_from_db()
    assert document.status == DocumentStatus.PROCESSING and 20 <= document.progress < 90
    assert _chunks(document) == []

    # Not stale yet: left alone.
    assert documents_requeue_stale().requeued == 0
    later = timezone.now() + timedelta(hours=1)
    with django_capture_on_commit_callbacks() as callbacks:
        result = documents_requeue_stale(now=later)
    assert result.requeued == 1 and len(callbacks) == 1  # the task is sent again on commit
    document.refresh_from_db()
    assert document.status == DocumentStatus.QUEUED

    monkeypatch.setattr(ingestion, "embedder_for", lambda collection: real)
    assert document_ingest(document_id=document.pk, content_hash=document.content_hash).status == "indexed"
    assert len(_chunks(document)) == Document.unscoped.get(pk=document.pk).chunk_count

    # A document that keeps dying is failed after the last attempt, with the reason.
    Document.unscoped.filter(pk=document.pk).update(
        status=DocumentStatus.PROCESSING, attempts=3, processing_started_at=timezone.now() - timedelta(hours=2)
    )
    assert documents_requeue_stale().failed == 1
    document.refresh_from_db()
    assert document.status == DocumentStatus.FAILED and "after 3 attempts" in document.failure_reason


def test_queued_documents_whose_message_was_lost_are_sent_again(
    collection: Collection, django_capture_on_commit_callbacks
) -> None:
    document = _doc(collection)
    Document.unscoped.filter(pk=document.pk).update(enqueued_at=timezone.now() - timedelta(hours=2))
    with django_capture_on_commit_callbacks() as callbacks:
        assert documents_requeue_stale().resent == 1
    assert len(callbacks) == 1


def test_an_organization_that_cannot_pay_gets_a_failed_document(org: Organization, knowledge_prices: None) -> None:
    collection = services.collection_create(organization=org, name="Unfunded")
    document = _doc(collection, text="Short text.")
    assert document_ingest(document_id=document.pk, content_hash=document.content_hash).status == "failed"
    document.refresh_from_db()
    assert document.status == DocumentStatus.FAILED and document.failure_reason == BALANCE_REASON
    assert not LedgerEntry.objects.for_org(org).exists()


def test_cancelled_or_deleted_while_indexing_is_left_alone(funded_org: Organization, collection: Collection) -> None:
    document = _doc(collection, text="Hello there.")
    assert services.document_cancel(document=document)
    assert document_ingest(document_id=document.pk, content_hash=document.content_hash).status == "skipped"
    assert services.document_retry(document=document)
    services.document_delete(document=Document.unscoped.get(pk=document.pk))
    assert document_ingest(document_id=document.pk, content_hash=document.content_hash).status == "skipped"


def test_changing_chunking_reindexes(funded_org: Organization, collection: Collection) -> None:
    document = _doc(collection)
    index_queued(collection)
    before = len(_chunks(document))
    _, reindexing = services.collection_update(collection=collection, chunk_max_tokens=64)
    assert reindexing
    assert Document.unscoped.get(pk=document.pk).status == DocumentStatus.QUEUED
    assert index_queued(collection) == ["indexed"]
    assert len(_chunks(document)) > before
    _, reindexing = services.collection_update(collection=collection, name="Renamed")
    assert not reindexing


# ---- an OpenAI-compatible embedder of another dimension (8: no HNSW index, searched exactly)


class _EmbeddingServer(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        data = []
        for index, text in enumerate(body["input"]):
            words = text.lower().split()
            vector = [1.0 + sum(w.startswith(c) for w in words) for c in "abcdefgh"]
            data.append({"index": index, "embedding": vector})
        payload = json.dumps({"data": data, "usage": {"prompt_tokens": 7 * len(data)}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def embedding_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EmbeddingServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_switching_to_a_remote_model_of_another_dimension(
    funded_org: Organization, collection: Collection, embedding_server: str
) -> None:
    services.document_upsert(collection=collection, name="apples", contents="apples and avocados")
    services.document_upsert(collection=collection, name="hats", contents="hats hold heads high")
    index_queued(collection)
    with pytest.raises(Exception, match="embeddingBaseUrl"):
        services.collection_update(collection=collection, embedding_model="toy-embedder")
    collection, reindexing = services.collection_update(
        collection=collection,
        embedding_model="toy-embedder",
        embedding_base_url=embedding_server,
        embedding_dimension=8,
    )
    assert reindexing and collection.embedding_dimension == 8
    assert index_queued(collection) == ["indexed", "indexed"]
    assert set(Chunk.objects.for_org(funded_org).values_list("dimension", flat=True)) == {8}
    result = search_collection(
        organization_id=funded_org.pk, collection_id=collection.pk, term="happy hippos", mode="vector", top=1
    )
    assert result.hits[0].document_name == "hats"
    # A tenant's own embedding endpoint is not billed by the platform.
    billed = LedgerEntry.objects.for_org(funded_org).filter(sku="knowledge.embedding")
    assert billed.count() == 2


def test_nothing_is_billed_with_billing_off(org: Organization, knowledge_prices: None, settings) -> None:
    settings.BILLING_ENABLED = False
    collection = services.collection_create(organization=org, name="Free")  # an unfunded organization
    document = _doc(collection, text="Short text.")
    assert document_ingest(document_id=document.pk, content_hash=document.content_hash).status == "indexed"
    result = services.collection_query(organization_id=org.pk, collection_id=collection.pk, term="short")
    assert result.hits and not LedgerEntry.objects.for_org(org).exists()
