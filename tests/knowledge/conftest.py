"""Knowledge fixtures: platform prices for embeddings and searches, a funded organization, collections, an API
client for the knowledge API, and helpers that run the indexing task directly (for tests that are not about the
worker)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Organization
from billing import skus
from billing.models import Price
from billing.pricing import invalidate_price_cache
from billing.services import credit_grant
from knowledge import services
from knowledge.ingestion import document_ingest
from knowledge.models import Collection, Document, DocumentStatus
from tests.gateways.conftest import catalog_model, stub, upstream_model  # noqa: F401  (shared fixtures)

PRICE_EMBEDDING = Decimal("0.00000002")
PRICE_SEARCH = Decimal("0.000001")


@pytest.fixture(autouse=True)
def _fresh_price_cache() -> Iterator[None]:
    invalidate_price_cache()
    yield
    invalidate_price_cache()


@pytest.fixture
def knowledge_prices(db: None) -> None:
    since = timezone.now() - timedelta(days=1)
    Price.objects.create(
        catalog_model=None, sku=skus.KNOWLEDGE_EMBEDDING, unit_price=PRICE_EMBEDDING, effective_from=since
    )
    Price.objects.create(catalog_model=None, sku=skus.KNOWLEDGE_SEARCH, unit_price=PRICE_SEARCH, effective_from=since)
    invalidate_price_cache()


@pytest.fixture
def funded_org(org: Organization, knowledge_prices: None) -> Organization:
    credit_grant(organization=org, amount=Decimal("5"), reason="test funds", staff_user=None)
    return org


@pytest.fixture
def collection(funded_org: Organization) -> Collection:
    return services.collection_create(organization=funded_org, name="Handbook")


class Api:
    """The knowledge API through Django's test client, with a key."""

    def __init__(self, key: str) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {key}"}

    def _call(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        response = getattr(self.client, method)(f"/api/v1{path}", headers=self.headers, **kwargs)
        return response.status_code, response.json()

    def get(self, path: str, params: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        return self._call("get", path, data=params or {})

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return self._call("post", path, data=body, content_type="application/json")

    def put(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return self._call("put", path, data=body, content_type="application/json")

    def patch(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return self._call("patch", path, data=body, content_type="application/json")

    def delete(self, path: str) -> tuple[int, dict[str, Any]]:
        return self._call("delete", path)

    def upload(self, path: str, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return self._call("post", path, data=data)


@pytest.fixture
def api(api_key) -> Api:
    return Api(api_key.raw)


@pytest.fixture
def outsider_api(outsider_key) -> Api:
    return Api(outsider_key.raw)


def index_queued(collection: Collection) -> list[str]:
    """Run the indexing task body for every queued document of the collection, as a worker would."""
    outcomes = []
    queued = Document.objects.for_org(collection.organization_id).filter(
        collection=collection, status=DocumentStatus.QUEUED
    )
    for document_id, digest in list(queued.values_list("pk", "content_hash")):
        outcomes.append(document_ingest(document_id=document_id, content_hash=digest).status)
    return outcomes
