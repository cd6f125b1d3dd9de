"""The knowledge API: collections, documents (PUT upserts, JSONL bulk, files), listing, search, and tenancy."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from billing.models import LedgerEntry
from knowledge import parsing
from knowledge.models import Chunk, Document, DocumentStatus
from tests.knowledge.conftest import Api, index_queued

# Transactional: the search endpoint is async and runs its queries on the shared pool's own connections, which
# see committed data only.
pytestmark = pytest.mark.django_db(transaction=True)


def _collection(api: Api, name: str = "Docs") -> str:
    status, body = api.post("/collections", {"collectionName": name})
    assert status == 201, body
    assert body["message"] == "Collection created."
    return body["data"]["id"]


def _jsonl(*rows: dict) -> SimpleUploadedFile:
    data = "\n".join(json.dumps(r) for r in rows).encode()
    return SimpleUploadedFile("docs.jsonl", data, content_type="application/jsonl")


def test_collections_create_list_paged_get_delete(api: Api, funded_org) -> None:
    ids = [_collection(api, f"C{i}") for i in range(3)]
    status, body = api.get("/collections", {"page": 1, "pageSize": 2})
    assert status == 200
    assert [c["id"] for c in body["data"]["items"]] == ids[::-1][:2]
    assert body["data"]["pageInfo"] == {"currentPage": 1, "hasMoreItems": True}
    status, body = api.get("/collections", {"page": 2, "pageSize": 2})
    assert body["data"]["pageInfo"] == {"currentPage": 2, "hasMoreItems": False}
    assert len(body["data"]["items"]) == 1

    status, body = api.get(f"/collections/{ids[0]}")
    assert status == 200
    assert body["data"]["embeddingModel"] == "local/all-minilm-l6-v2"
    assert body["data"]["embeddingDimension"] == 384
    assert body["data"]["state"]["queuedDocuments"] == 0 and body["data"]["tags"] == []

    assert api.delete(f"/collections/{ids[0]}")[0] == 200
    status, body = api.get(f"/collections/{ids[0]}")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = api.post("/collections", {"collectionName": ""})
    assert status == 400 and body["error"]["param"] == "collectionName"


def test_another_organization_gets_404_everywhere(api: Api, outsider_api: Api, funded_org) -> None:
    cid = _collection(api)
    _, body = api.put(f"/collections/{cid}/documents", {"name": "a", "contents": "secret plans"})
    doc_id = body["data"]["documentId"]
    for path in (f"/collections/{cid}", f"/collections/{cid}/documents", f"/collections/{cid}/documents/{doc_id}"):
        status, body = outsider_api.get(path)
        assert status == 404, path
    assert outsider_api.get(f"/collections/{cid}/query", {"term": "plans"})[0] == 404
    assert outsider_api.put(f"/collections/{cid}/documents", {"name": "b", "contents": "x"})[0] == 404
    assert outsider_api.delete(f"/collections/{cid}/documents/{doc_id}")[0] == 404
    assert outsider_api.delete(f"/collections/{cid}/reset-only")[0] == 404
    assert outsider_api.delete(f"/collections/{cid}")[0] == 404
    assert api.get("/collections/not-a-uuid")[0] == 404
    assert outsider_api.get("/collections")[1]["data"]["items"] == []


def test_put_created_modified_not_modified_and_billing(api: Api, funded_org, collection) -> None:
    path = f"/collections/{collection.pk}/documents"
    status, body = api.put(path, {"name": "refunds", "contents": "Refunds take 14 days.", "tags": ["policy"]})
    assert status == 200 and body["data"]["state"] == "Created"
    assert index_queued(collection) == ["indexed"]
    billed = LedgerEntry.objects.for_org(funded_org).filter(sku="knowledge.embedding")
    assert billed.count() == 1

    status, body = api.put(path, {"name": "refunds", "contents": "Refunds take 14 days.", "tags": ["policy"]})
    assert body["data"]["state"] == "NotModified"
    assert body["data"]["status"] == "indexed"
    assert index_queued(collection) == []  # nothing queued: not re-embedded
    assert billed.count() == 1  # and not billed

    # Metadata only: Modified, but the chunks stay (no re-embedding, no bill).
    status, body = api.put(path, {"name": "refunds", "contents": "Refunds take 14 days.", "tags": ["money"]})
    assert body["data"]["state"] == "Modified" and body["data"]["status"] == "indexed"
    assert index_queued(collection) == [] and billed.count() == 1

    status, body = api.put(path, {"name": "refunds", "contents": "Refunds take 30 days now."})
    assert body["data"]["state"] == "Modified" and body["data"]["status"] == "queued"
    assert index_queued(collection) == ["indexed"]
    assert billed.count() == 2
    chunks = Chunk.objects.for_org(funded_org).filter(document_id=body["data"]["documentId"])
    assert [c.text for c in chunks] == ["Refunds take 30 days now."]

    status, body = api.put(path, {"name": "refunds", "contents": "  "})
    assert status == 400


def test_bulk_jsonl_upserts_and_reports_bad_lines(api: Api, funded_org, collection) -> None:
    path = f"/collections/{collection.pk}/documents"
    rows = [
        {"docid": "d1", "text": "Cats purr when content.", "__ref": "pets", "__tags": ["animals"]},
        {"docid": "d2", "text": "Dogs wag their tails.", "__ref": "pets", "__tags": ["animals", "dogs"]},
        {"docid": "d3", "text": "Invoices are due in 30 days.", "source": "billing-wiki"},
    ]
    status, body = api.upload(path, {"documents": _jsonl(*rows)})
    assert status == 200, body
    assert body["data"]["created"] == 3 and body["data"]["notModified"] == 0
    status, body = api.upload(path, {"documents": _jsonl(*rows)})
    assert body["data"]["notModified"] == 3
    d3 = Document.objects.for_org(funded_org).get(name="d3")
    assert d3.metadata == {"source": "billing-wiki"}

    bad = _jsonl(rows[0], {"docid": "x", "text": ""})
    status, body = api.upload(path, {"documents": bad})
    assert status == 400 and body["error"]["message"].startswith("Line 2:")
    broken = SimpleUploadedFile("d.jsonl", b'{"docid": "a", "text": "ok"}\n{not json}\n')
    status, body = api.upload(path, {"documents": broken})
    assert status == 400 and "Line 2" in body["error"]["message"] and body["error"]["code"] == "invalid_jsonl"
    too_many = SimpleUploadedFile("d.jsonl", "\n".join(json.dumps({"text": f"t{i}"}) for i in range(10_001)).encode())
    status, body = api.upload(path, {"documents": too_many})
    assert status == 400 and "10000" in body["error"]["message"]

    # Listing with filters, then one document, then delete.
    index_queued(collection)
    listing = f"/collections/{collection.pk}/documents"
    assert {d["name"] for d in api.get(listing, {"tag": "animals"})[1]["data"]["items"]} == {"d1", "d2"}
    assert {d["name"] for d in api.get(listing, {"reference": "pets"})[1]["data"]["items"]} == {"d1", "d2"}
    assert [d["name"] for d in api.get(listing, {"content": "INVOICES"})[1]["data"]["items"]] == ["d3"]
    assert [d["name"] for d in api.get(listing, {"name": "d2"})[1]["data"]["items"]] == ["d2"]
    page = api.get(listing, {"pageSize": 2})[1]["data"]
    assert len(page["items"]) == 2 and page["pageInfo"]["hasMoreItems"] is True
    status, body = api.get(f"{listing}/{d3.pk}")
    assert body["data"]["contents"] == "Invoices are due in 30 days." and body["data"]["state"] == "Indexed"
    assert api.delete(f"{listing}/{d3.pk}")[0] == 200
    assert not Chunk.objects.for_org(funded_org).filter(document_id=d3.pk).exists()
    assert api.get(f"{listing}/{d3.pk}")[0] == 404

    # References: a match brings the documents sharing its reference.
    status, body = api.get(f"/collections/{collection.pk}/query", {"term": "purring cats", "top": 1})
    hit = body["data"][0]
    assert hit["documentName"] == "d1"
    assert [r["documentName"] for r in hit["referencedDocuments"]] == ["d2"]
    assert hit["referencedDocuments"][0]["documentContent"] == "Dogs wag their tails."

    # reset-only empties the collection and keeps it.
    status, body = api.delete(f"/collections/{collection.pk}/reset-only")
    assert body["data"]["removedDocuments"] == 2
    assert api.get(f"/collections/{collection.pk}")[0] == 200
    assert not Chunk.objects.for_org(funded_org).exists()


def test_query_is_billed_per_search_and_refused_without_balance(api: Api, funded_org, collection) -> None:
    api.put(f"/collections/{collection.pk}/documents", {"name": "a", "contents": "The moon orbits the earth."})
    index_queued(collection)
    for mode in ("hybrid", "vector", "fulltext"):
        status, body = api.get(f"/collections/{collection.pk}/query", {"term": "moon orbit", "mode": mode})
        assert status == 200, body
        assert body["data"][0]["documentName"] == "a"
        assert set(body["data"][0]) >= {"documentId", "documentName", "documentContent", "score", "referencedDocuments"}
        # The response names its cost, equal to the ledger row.
        (line,) = body["generation_context"]["generated_usage"]
        assert line["sku"] == "knowledge.search"
        row = LedgerEntry.objects.for_org(funded_org).filter(sku="knowledge.search").order_by("-created_at").first()
        assert (line["quantity"], str(line["amount"])) == (row.quantity, str(float(row.amount)))
    searches = LedgerEntry.objects.for_org(funded_org).filter(sku="knowledge.search")
    assert searches.count() == 3 and all(s.quantity > 0 for s in searches)
    status, body = api.get(f"/collections/{collection.pk}/query", {"term": "moon", "mode": "sideways"})
    assert status == 400 and body["error"]["param"] == "mode"
    status, body = api.get(f"/collections/{collection.pk}/query", {"term": "moon", "min": 0.99})
    assert status == 200 and body["data"] == []


def test_query_without_balance_is_402(api: Api, org, knowledge_prices) -> None:
    cid = _collection(api)
    status, body = api.get(f"/collections/{cid}/query", {"term": "anything"})
    assert status == 402 and body["error"]["code"] == "insufficient_balance"


def test_file_upload_rejects_unsupported_and_oversized_files(api: Api, funded_org, collection, monkeypatch) -> None:
    path = f"/collections/{collection.pk}/files"
    files = [
        SimpleUploadedFile("notes.md", b"# Notes\n\nSome notes.", content_type="text/markdown"),
        SimpleUploadedFile("photo.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100, content_type="image/png"),
        SimpleUploadedFile("old.doc", b"hello", content_type="application/msword"),
    ]
    status, body = api.upload(path, {"files": files})
    assert status == 202
    assert [i["state"] for i in body["data"]] == ["Created", "Rejected", "Rejected"]
    assert "PNG" in body["data"][1]["error"] and ".docx" in body["data"][2]["error"]
    status, body = api.upload(path, {"files": [SimpleUploadedFile("empty.txt", b"")]})
    assert status == 400 and "empty" in body["error"]["message"]
    monkeypatch.setattr(parsing, "DEFAULT_LIMITS", parsing.ParseLimits(max_bytes=1000))
    status, body = api.upload(path, {"files": [SimpleUploadedFile("big.txt", b"x" * 1001)]})
    assert status == 400 and "larger than" in body["error"]["message"]
    monkeypatch.undo()
    # Same bytes again: NotModified.
    status, body = api.upload(path, {"files": [SimpleUploadedFile("notes.md", b"# Notes\n\nSome notes.")]})
    assert body["data"][0]["state"] == "NotModified"
    assert index_queued(collection) == ["indexed"]
    document = Document.objects.for_org(funded_org).get(name="notes.md")
    assert document.status == DocumentStatus.INDEXED and document.file_kind == "md"


def test_collection_language_on_create_and_patch(api: Api, funded_org) -> None:
    status, body = api.post("/collections", {"collectionName": "Ajuda", "language": "pt-BR"})
    assert status == 201 and body["data"]["language"] == "portuguese"
    collection_id = body["data"]["id"]
    status, body = api.post("/collections", {"collectionName": "Old style"})
    assert status == 201 and body["data"]["language"] == "english"
    status, body = api.post("/collections", {"collectionName": "Bad", "language": "elvish"})
    assert status == 400 and body["error"]["param"] == "language"
    status, body = api.patch(f"/collections/{collection_id}", {"language": "simple"})
    assert status == 200 and body["data"]["language"] == "simple"
    assert body["message"] == "Collection updated."  # the full text is redone in SQL: no re-embedding


def test_reindex_is_an_explicit_action_with_progress(api: Api, funded_org, collection) -> None:
    for name in ("a", "b"):
        status, _ = api.put(f"/collections/{collection.pk}/documents", {"name": name, "contents": f"Text {name}."})
        assert status == 200
    index_queued(collection)
    # Indexed by an older model than the collection's (as after an upgrade of the default).
    Document.objects.for_org(funded_org).filter(name="a").update(indexed_model="local/older-model")
    status, body = api.get(f"/collections/{collection.pk}")
    assert body["data"]["state"]["outdatedDocuments"] == 1

    status, body = api.post(f"/collections/{collection.pk}/reindex", {})
    assert status == 202 and body["data"]["queuedDocuments"] == 2
    state = body["data"]["state"]
    assert (state["queuedDocuments"], state["indexedDocuments"], state["outdatedDocuments"]) == (2, 0, 1)
    assert set(index_queued(collection)) == {"indexed"}
    status, body = api.get(f"/collections/{collection.pk}")
    state = body["data"]["state"]
    assert (state["queuedDocuments"], state["indexedDocuments"], state["outdatedDocuments"]) == (0, 2, 0)
    status, body = api.post("/collections/00000000-0000-0000-0000-000000000000/reindex", {})
    assert status == 404


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/v1", "http://[64:ff9b::a9fe:a9fe]/v1", "http://2852039166/v1", "http://[fd00::1]/v1"],
)
def test_a_collection_embedding_url_cannot_point_at_metadata(api: Api, funded_org, url: str) -> None:
    body = {"collectionName": "Remote", "embeddingModel": "m", "embeddingBaseUrl": url, "embeddingDimension": 8}
    status, response = api.post("/collections", body)
    assert status == 400, response
    assert response["error"]["param"] == "embeddingBaseUrl"
