"""Knowledge pages: collections, uploads of several files, live status partial, failures, search, scoping."""

from __future__ import annotations

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from knowledge.models import Collection, Document, DocumentStatus
from knowledge.services import collection_create


@pytest.fixture
def collection(org) -> Collection:
    return collection_create(organization=org, name="Handbook")


@pytest.fixture
def foreign_collection(outsider_org) -> Collection:
    return collection_create(organization=outsider_org, name="Globex secrets")


def _files(*names_and_bytes: tuple[str, bytes]) -> list[SimpleUploadedFile]:
    return [SimpleUploadedFile(name, data, content_type="application/octet-stream") for name, data in names_and_bytes]


def test_create_and_list(as_dev: Client, org) -> None:
    response = as_dev.post("/console/knowledge/", {"name": "Product docs"})
    created = Collection.objects.for_org(org).get()
    assert response.status_code == 302 and response["Location"] == f"/console/knowledge/{created.pk}/"
    html = as_dev.get("/console/knowledge/").content.decode()
    assert "Product docs" in html and "empty" in html


def test_create_needs_a_name(as_dev: Client, org) -> None:
    response = as_dev.post("/console/knowledge/", {"name": ""})
    assert response.status_code == 400 and 'id="id_name_error"' in response.content.decode()


def test_upload_several_files(as_dev: Client, org, collection) -> None:
    files = _files(("faq.md", b"# FAQ\n\nRefunds take 30 days."), ("notes.txt", b"Shipping is free over $50."))
    response = as_dev.post(f"/console/knowledge/{collection.pk}/upload", {"files": files}, headers={"HX-Request": "1"})
    assert response.status_code == 200
    documents = Document.objects.for_org(org).filter(collection=collection)
    assert sorted(d.name for d in documents) == ["faq.md", "notes.txt"]
    assert {d.status for d in documents} == {DocumentStatus.QUEUED}
    html = response.content.decode()
    assert 'hx-trigger="every 1s"' in html  # polls while anything is queued or processing
    assert "Queued" in html and "faq.md" in html


def test_refused_files_say_why(as_dev: Client, org, collection) -> None:
    files = _files(("empty.txt", b""), ("good.txt", b"hello there"))
    response = as_dev.post(f"/console/knowledge/{collection.pk}/upload", {"files": files}, headers={"HX-Request": "1"})
    html = response.content.decode()
    assert response.status_code == 200 and "empty.txt: The file is empty." in html
    assert list(Document.objects.for_org(org).values_list("name", flat=True)) == ["good.txt"]
    nothing = as_dev.post(f"/console/knowledge/{collection.pk}/upload", {}, headers={"HX-Request": "1"})
    assert nothing.status_code == 400 and "No files were sent." in nothing.content.decode()


def test_upload_without_htmx_redirects_with_messages(as_dev: Client, collection) -> None:
    response = as_dev.post(
        f"/console/knowledge/{collection.pk}/upload", {"files": _files(("a.txt", b"abc"))}, follow=True
    )
    assert "Uploaded 1 file." in response.content.decode()


def test_status_partial_stops_polling_when_done_and_shows_failures(as_dev: Client, org, collection) -> None:
    as_dev.post(
        f"/console/knowledge/{collection.pk}/upload",
        {"files": _files(("ok.txt", b"fine"), ("bad.pdf", b"%PDF-1.4 broken"))},
    )
    docs = Document.objects.for_org(org)
    docs.filter(name="ok.txt").update(status=DocumentStatus.PROCESSING, progress=40)
    html = as_dev.get(f"/console/knowledge/{collection.pk}/documents").content.decode()
    assert "Processing 40%" in html and 'aria-valuenow="40"' in html and "every 1s" in html
    docs.filter(name="ok.txt").update(status=DocumentStatus.INDEXED, progress=100, chunk_count=1)
    docs.filter(name="bad.pdf").update(status=DocumentStatus.FAILED, failure_reason="The PDF is damaged.")
    html = as_dev.get(f"/console/knowledge/{collection.pk}/documents").content.decode()
    assert "every 1s" not in html and "hx-get" not in html.split(">")[0]
    assert "Indexed" in html and "The PDF is damaged." in html and "Retry" in html


def test_retry_and_delete(as_dev: Client, org, collection) -> None:
    as_dev.post(f"/console/knowledge/{collection.pk}/upload", {"files": _files(("x.txt", b"x"))})
    doc = Document.objects.for_org(org).get()
    Document.objects.for_org(org).update(status=DocumentStatus.FAILED, failure_reason="boom")
    as_dev.post(f"/console/knowledge/{collection.pk}/documents/{doc.pk}/retry", headers={"HX-Request": "1"})
    doc.refresh_from_db()
    assert doc.status == DocumentStatus.QUEUED and doc.failure_reason == ""
    response = as_dev.post(f"/console/knowledge/{collection.pk}/documents/{doc.pk}/delete", headers={"HX-Request": "1"})
    assert response.status_code == 200 and not Document.objects.for_org(org).exists()


def test_delete_collection(as_owner: Client, org, collection) -> None:
    assert collection.name in as_owner.get(f"/console/knowledge/{collection.pk}/delete").content.decode()
    assert as_owner.post(f"/console/knowledge/{collection.pk}/delete").status_code == 302
    assert not Collection.objects.for_org(org).exists()


class _Hit:
    def __init__(self, name: str, content: str, score: float) -> None:
        self.document_name, self.content, self.score, self.reference = name, content, score, ""


def test_search_shows_scores(as_dev: Client, org, collection, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_query(**kwargs):
        calls.append(kwargs)
        return type("R", (), {"hits": [_Hit("faq.md", "Refunds take 30 days.", 0.8123)]})()

    monkeypatch.setattr("knowledge.services.collection_query", fake_query)
    html = as_dev.get(f"/console/knowledge/{collection.pk}/search", {"q": "refunds", "mode": "vector"}).content.decode()
    assert "0.812" in html and "faq.md" in html and "Refunds take 30 days." in html
    assert calls[0]["organization_id"] == org.pk and calls[0]["collection_id"] == collection.pk
    assert calls[0]["mode"] == "vector" and calls[0]["term"] == "refunds"
    empty = as_dev.get(f"/console/knowledge/{collection.pk}/search", {"q": ""}).content.decode()
    assert "Type a question" in empty


def test_search_errors_are_shown(as_dev: Client, collection, monkeypatch: pytest.MonkeyPatch) -> None:
    from aivax.errors import InsufficientBalance

    def broke(**kwargs):
        raise InsufficientBalance("Your balance is exhausted.")

    monkeypatch.setattr("knowledge.services.collection_query", broke)
    html = as_dev.get(f"/console/knowledge/{collection.pk}/search", {"q": "x"}).content.decode()
    assert "Your balance is exhausted." in html


def test_who_may(as_billing: Client, as_outsider: Client, collection, foreign_collection) -> None:
    assert as_billing.get("/console/knowledge/").status_code == 403
    assert as_billing.get(f"/console/knowledge/{collection.pk}/").status_code == 403
    for url in ("/", "/documents", "/search?q=x", "/delete"):
        assert as_outsider.get(f"/console/knowledge/{collection.pk}{url}").status_code == 404, url
    upload = as_outsider.post(f"/console/knowledge/{collection.pk}/upload", {"files": _files(("a.txt", b"a"))})
    assert upload.status_code == 404
    assert as_outsider.post(f"/console/knowledge/{collection.pk}/delete").status_code == 404
    assert Collection.objects.for_org(collection.organization_id).exists()
    html = as_outsider.get("/console/knowledge/").content.decode()
    assert "Globex secrets" in html and "Handbook" not in html


def test_another_collections_document_is_404(as_dev: Client, org, collection) -> None:
    other = collection_create(organization=org, name="Other")
    as_dev.post(f"/console/knowledge/{other.pk}/upload", {"files": _files(("o.txt", b"o"))})
    doc = Document.objects.for_org(org).get()
    assert as_dev.post(f"/console/knowledge/{collection.pk}/documents/{doc.pk}/delete").status_code == 404
    assert as_dev.post(f"/console/knowledge/{collection.pk}/documents/{uuid.uuid4()}/retry").status_code == 404


def test_gateway_form_links_a_collection(as_owner: Client, org, gateway, collection, foreign_collection) -> None:
    page = as_owner.get(f"/console/gateways/{gateway.pk}/edit").content.decode()
    assert "Handbook" in page and "Globex secrets" not in page
    from tests.console.test_gateways_pages import FULL

    data = {**FULL, "model": f"catalog:{gateway.catalog_model_id}", "knowledge_collection": str(collection.pk)}
    assert as_owner.post(f"/console/gateways/{gateway.pk}/edit", data).status_code == 302
    gateway.refresh_from_db()
    assert gateway.knowledge_collection_id == collection.pk
    assert "Grounds" in as_owner.get(f"/console/knowledge/{collection.pk}/").content.decode()
    foreign = {**data, "knowledge_collection": str(foreign_collection.pk)}
    response = as_owner.post(f"/console/gateways/{gateway.pk}/edit", foreign)
    assert response.status_code == 400 and "knowledge_collection" in response.context["form"].errors


def test_uploads_count_against_the_documents_limits(as_dev: Client, org, collection) -> None:
    org.documents_per_minute = 2
    org.save()
    files = _files(("a.txt", b"one"), ("b.txt", b"two"), ("c.txt", b"three"))
    response = as_dev.post(f"/console/knowledge/{collection.pk}/upload", {"files": files}, headers={"HX-Request": "1"})
    assert response.status_code == 400 and "2 documents per minute" in response.content.decode()
    assert not Document.objects.for_org(org).exists()
    response = as_dev.post(
        f"/console/knowledge/{collection.pk}/upload", {"files": _files(("a.txt", b"one"))}, headers={"HX-Request": "1"}
    )
    assert response.status_code == 200
