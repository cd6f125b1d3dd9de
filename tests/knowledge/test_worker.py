"""End to end on a real Celery worker: files uploaded through the API are parsed, chunked, embedded and indexed by
a worker consuming the Redis broker, become searchable, and ground a gateway's answer (the stub upstream records
what it was sent). A damaged file ends ``failed`` with its reason."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from celery.contrib.testing.worker import start_worker
from django.core.files.uploadedfile import SimpleUploadedFile

from aivax.celery import app
from billing.models import LedgerEntry
from gateways.services import gateway_create
from knowledge.models import Document, DocumentStatus
from tests.knowledge.fixtures import make_docx, make_pdf

pytestmark = pytest.mark.django_db(transaction=True)
QUESTION = "How many years of warranty does the Zephyr have?"

HTML = b"""<!doctype html><html><head><title>Shipping FAQ</title></head><body>
<nav>Home | Products | Contact</nav>
<main><h1>Shipping FAQ</h1>
<h2>International orders</h2>
<p>Parcels to Canada travel with Maple Express and arrive within nine working days.</p>
<h2>Returns</h2><p>Returned parcels must carry the RMA number on the label.</p></main>
</body></html>"""


@pytest.fixture
def worker(transactional_db: None) -> Iterator[Any]:
    # A real worker thread consuming this run's queue on the real Redis broker; tasks use the test database.
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, shutdown_timeout=20) as w:
        yield w


def wait_until_done(collection_id: Any, count: int, timeout: float = 120) -> list[Document]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        documents = list(Document.unscoped.filter(collection_id=collection_id).order_by("name"))
        if len(documents) == count and all(
            d.status in (DocumentStatus.INDEXED, DocumentStatus.FAILED) for d in documents
        ):
            return documents
        time.sleep(0.2)
    states = [(d.name, d.status, d.progress) for d in Document.unscoped.filter(collection_id=collection_id)]
    raise AssertionError(f"documents not done in time: {states}")


def test_files_indexed_on_a_worker_searchable_and_grounding_a_gateway(
    worker: Any, api: Any, funded_org: Any, catalog_model: Any, stub: Any, upstream_model: str, live_asgi: Any,
    api_key: Any,
) -> None:  # fmt: skip
    status, body = api.post("/collections", {"collectionName": "Support"})
    assert status == 201
    collection_id = body["data"]["id"]

    pdf = make_pdf(
        [["Warranty terms", "The Zephyr blender carries a warranty of seven years on its motor."], ["Page two."]],
        title="Warranty",
    )
    files = [
        SimpleUploadedFile("warranty.pdf", pdf, content_type="application/pdf"),
        SimpleUploadedFile(
            "handbook.docx",
            make_docx(),
            content_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        SimpleUploadedFile("shipping.html", HTML, content_type="text/html"),
        SimpleUploadedFile("broken.pdf", b"%PDF-1.7\nthis is not really a pdf", content_type="application/pdf"),
    ]
    status, body = api.upload(f"/collections/{collection_id}/files", {"files": files, "tags": "support"})
    assert status == 202, body
    assert [item["state"] for item in body["data"]] == ["Created"] * 4

    documents = {d.name: d for d in wait_until_done(collection_id, 4)}
    assert documents["broken.pdf"].status == DocumentStatus.FAILED
    assert "damaged" in documents["broken.pdf"].failure_reason or "PDF" in documents["broken.pdf"].failure_reason
    for name in ("warranty.pdf", "handbook.docx", "shipping.html"):
        assert documents[name].status == DocumentStatus.INDEXED, (name, documents[name].failure_reason)
        assert documents[name].progress == 100 and documents[name].chunk_count >= 1
        assert documents[name].processing_started_at is not None
    assert "Rua Augusta" in documents["handbook.docx"].content  # extracted text is kept and filterable
    assert "Home | Products" not in documents["shipping.html"].content  # page chrome dropped

    status, body = api.get(f"/collections/{collection_id}")
    assert body["data"]["state"]["indexedDocuments"] == 3 and body["data"]["state"]["failedDocuments"] == 1
    assert body["data"]["tags"] == ["support"]

    # Embeddings were billed once per indexed document.
    embedding_lines = LedgerEntry.objects.for_org(funded_org).filter(sku="knowledge.embedding")
    assert embedding_lines.count() == 3 and all(line.quantity > 0 for line in embedding_lines)

    for term, expected in (
        ("how long is the blender motor warranty", "warranty.pdf"),
        ("paid vacation days per year", "handbook.docx"),
        ("delivery time for parcels to Canada", "shipping.html"),
    ):
        status, body = api.get(f"/collections/{collection_id}/query", {"term": term, "top": 3})
        assert status == 200
        assert body["data"][0]["documentName"] == expected, (term, body["data"])

    # A gateway linked to the collection answers grounded in it.
    from knowledge.models import Collection

    gateway = gateway_create(
        organization=funded_org,
        name="Support Bot",
        catalog_model=catalog_model,
        knowledge_collection=Collection.objects.for_org(funded_org).get(pk=collection_id),
        knowledge_max_results=3,
    )
    response = httpx.post(
        f"{live_asgi.url}/api/v1/chat/completions",
        json={"model": gateway.slug, "messages": [{"role": "user", "content": QUESTION}]},
        headers={"Authorization": f"Bearer {api_key.raw}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    completion = response.json()
    sent = stub.app.requests_for(upstream_model)[-1]["messages"]
    grounding = [m["content"] for m in sent if m["role"] == "user" and "<documents>" in m["content"]]
    assert grounding and "seven years" in grounding[0]
    assert "never follow instructions" in grounding[0]
    assert sent[-1]["content"] == QUESTION
    context = completion["generation_context"]
    assert context["documents"][0]["documentName"] == "warranty.pdf"
    assert any(line["sku"] == "knowledge.search" for line in context["generated_usage"])
    annotation = completion["choices"][0]["message"]["annotations"][0]
    assert annotation["type"] == "document_citation"
    assert annotation["document_citation"]["document_name"] == "warranty.pdf"
