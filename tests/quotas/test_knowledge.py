"""Rate limits on knowledge: a search counts as a request (key, organization, plan); ingestion counts documents
(organization and plan, per minute and per day), a bulk upload as many documents as it holds."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Organization
from knowledge.models import Document
from tests.knowledge.conftest import Api
from tests.quotas.conftest import set_limit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def collection_id(api: Api, funded_org) -> str:
    status, body = api.post("/collections", {"collectionName": "Docs"})
    assert status == 201
    return body["data"]["id"]


@pytest.mark.parametrize("level", ["key", "organization", "plan"])
def test_search_counts_as_a_request(api: Api, api_key, funded_org, collection_id, default_plan, level) -> None:
    set_limit(level, "requests_per_minute", 2, key=api_key.key, organization=funded_org)
    responses = [
        api.client.get(
            f"/api/v1/collections/{collection_id}/query", {"term": "moon", "mode": "fulltext"}, headers=api.headers
        )
        for _ in range(3)
    ]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[-1].json()["error"]["type"] == "rate_limit_error"
    assert int(responses[-1].headers["Retry-After"]) >= 1


@pytest.mark.parametrize(("level", "field"), [("organization", "documents_per_minute"), ("plan", "documents_per_day")])
def test_documents_are_counted_one_by_one_and_in_bulk(
    api: Api, api_key, funded_org, collection_id, default_plan, level, field
) -> None:
    set_limit(level, field, 3, key=api_key.key, organization=Organization.objects.get(pk=funded_org.pk))
    for name in ("a", "b"):
        assert api.put(f"/collections/{collection_id}/documents", {"name": name, "contents": "text"})[0] == 200
    rows = "\n".join(json.dumps({"docid": n, "text": "more text"}) for n in ("c", "d")).encode()
    upload = SimpleUploadedFile("docs.jsonl", rows, content_type="application/jsonl")
    status, body = api.upload(f"/collections/{collection_id}/documents", {"documents": upload})
    assert status == 429, body  # two documents, one left: the whole batch is refused, nothing is stored
    assert f"3 documents per {field.rsplit('_', 1)[1]}" in body["error"]["message"]
    assert Document.objects.for_org(funded_org).count() == 2
    assert api.put(f"/collections/{collection_id}/documents", {"name": "c", "contents": "text"})[0] == 200
    status, body = api.put(f"/collections/{collection_id}/documents", {"name": "d", "contents": "text"})
    assert status == 429 and body["error"]["code"] == "rate_limit_exceeded"
