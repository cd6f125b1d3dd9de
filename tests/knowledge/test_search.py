"""Search: filtered HNSW with many tenants (iterative scan), modes, tenant isolation, and other dimensions."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from django.db import connection

from accounts.models import Organization
from aivax.errors import NotFound
from knowledge import services
from knowledge.embeddings import EmbeddingResult
from knowledge.models import Chunk, Collection, Document, DocumentStatus
from knowledge.search import search_collection
from tests.knowledge.conftest import index_queued

pytestmark = pytest.mark.django_db
DIM = 384


class FixedEmbedder:
    """Embeds every text as the given vector (the query side of a synthetic-vector test)."""

    name = "fixed"
    dimension = DIM

    def __init__(self, vector: np.ndarray) -> None:
        self.vector = [float(x) for x in vector]

    def embed(self, texts: list[str]) -> EmbeddingResult:
        return EmbeddingResult(vectors=[self.vector for _ in texts], token_count=3)


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _fill(collection: Collection, vectors: np.ndarray, label: str) -> list[int]:
    document = Document.unscoped.create(
        organization_id=collection.organization_id,
        collection=collection,
        name=label,
        content_hash="x" * 64,
        status=DocumentStatus.INDEXED,
    )
    chunks = Chunk.unscoped.bulk_create(
        Chunk(
            organization_id=collection.organization_id,
            collection=collection,
            document=document,
            position=i,
            text=f"{label} chunk {i}",
            token_count=4,
            dimension=DIM,
            embedding=vector.tolist(),
        )
        for i, vector in enumerate(vectors)
    )
    return [c.pk for c in chunks]


@pytest.fixture
def crowded(funded_org: Organization) -> tuple[Collection, np.ndarray, list[int]]:
    """40 organizations' collections of 100 chunks each share the table with the target collection (100 chunks):
    the target's rows are 2.4% of the table."""
    rng = np.random.default_rng(7)
    for i in range(40):
        other = Organization.objects.create(name=f"Tenant {i}", slug=f"tenant-{i}-{uuid.uuid4().hex[:6]}")
        _fill(services.collection_create(organization=other, name="theirs"), _unit(rng.normal(size=(100, DIM))), "t")
    target = services.collection_create(organization=funded_org, name="mine")
    vectors = _unit(rng.normal(size=(100, DIM)))
    ids = _fill(target, vectors, "mine")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE knowledge_chunk")
    return target, vectors, ids


def _force_hnsw() -> None:
    """Make the planner take the HNSW index, as it does on a large collection: without the btree indexes (dropped
    inside this test's transaction, so they come back) and without sequential scans."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'knowledge_chunk' AND indexdef NOT LIKE '%%hnsw%%' "
            "AND indexdef NOT LIKE '%%gin%%' AND indexname NOT LIKE '%%pkey'"
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")


def test_filtered_hnsw_needs_the_iterative_scan(crowded) -> None:
    target, vectors, ids = crowded
    rng = np.random.default_rng(11)
    query = _unit(rng.normal(size=(1, DIM)))[0]
    exact = [ids[i] for i in np.argsort(-(vectors @ query))[:10]]
    _force_hnsw()
    literal = "[" + ",".join(f"{x:.7g}" for x in query) + "]"

    sql = (
        "SELECT id FROM knowledge_chunk WHERE organization_id = %s AND collection_id = %s AND dimension = 384 "
        "ORDER BY (embedding::vector(384)) <=> %s::vector(384) LIMIT 10"
    )
    params = [target.organization_id, target.pk, literal]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "chunk_embedding_hnsw_384" in plan, plan
        cursor.execute("SET LOCAL hnsw.iterative_scan = off")
        cursor.execute(sql, params)
        plain = [row[0] for row in cursor.fetchall()]
    # The index walk stops at ef_search (40) candidates from the whole table; ~2.4% of them are ours.
    assert len(plain) < 10

    result = search_collection(
        organization_id=target.organization_id,
        collection_id=target.pk,
        term="anything",
        top=10,
        mode="vector",
        embedder=FixedEmbedder(query),
    )
    found = [hit.chunk_id for hit in result.hits]
    assert len(found) == 10
    assert set(found) <= set(ids)  # never another tenant's chunk
    assert len(set(found) & set(exact)) >= 9  # approximate, but as good as exact here
    scores = [hit.score for hit in result.hits]
    assert scores == sorted(scores, reverse=True)


def test_search_never_crosses_tenants(crowded, outsider_org: Organization) -> None:
    target, _vectors, ids = crowded
    rng = np.random.default_rng(3)
    for _ in range(5):
        query = _unit(rng.normal(size=(1, DIM)))[0]
        for mode in ("vector", "hybrid", "fulltext"):
            result = search_collection(
                organization_id=target.organization_id,
                collection_id=target.pk,
                term="chunk",
                top=50,
                mode=mode,
                min_score=-1,
                embedder=FixedEmbedder(query),
            )
            assert result.hits and {hit.chunk_id for hit in result.hits} <= set(ids), mode
    with pytest.raises(NotFound):
        search_collection(organization_id=outsider_org.pk, collection_id=target.pk, term="chunk", mode="fulltext")


def test_modes_rank_the_right_passage(funded_org: Organization, collection: Collection) -> None:
    texts = {
        "tea": "Green tea is steeped at 80 degrees Celsius for two minutes.",
        "bikes": "Bicycle tyres should be inflated to the pressure printed on the sidewall.",
        "sku": "Replacement part ZX-4411 fits every model sold after 2019.",
    }
    for name, text in texts.items():
        services.document_upsert(collection=collection, name=name, contents=text)
    index_queued(collection)
    org = funded_org.pk
    semantic = search_collection(organization_id=org, collection_id=collection.pk, term="brewing temperature", top=1)
    assert semantic.hits[0].document_name == "tea"
    exact = search_collection(organization_id=org, collection_id=collection.pk, term="ZX-4411", mode="fulltext")
    assert [h.document_name for h in exact.hits] == ["sku"]
    assert 0 < exact.hits[0].score < 1
    vector = search_collection(
        organization_id=org, collection_id=collection.pk, term="how hard to pump a tire", mode="vector", top=3
    )
    assert vector.hits[0].document_name == "bikes"
    assert vector.hits[0].score == pytest.approx(vector.hits[0].similarity)
    # Web-search syntax keeps its meaning: a quoted phrase must appear as such.
    phrase = search_collection(organization_id=org, collection_id=collection.pk, term='"two minutes"', mode="fulltext")
    assert [h.document_name for h in phrase.hits] == ["tea"]
    none = search_collection(organization_id=org, collection_id=collection.pk, term='"minutes two"', mode="fulltext")
    assert none.hits == []
    # A relevance floor drops weak matches in hybrid mode too.
    floor = search_collection(
        organization_id=org, collection_id=collection.pk, term="brewing temperature", min_score=0.3
    )
    assert [h.document_name for h in floor.hits] == ["tea"]


def test_fulltext_ranks_rare_terms_higher_and_honours_negation(
    funded_org: Organization, collection: Collection
) -> None:
    texts = {f"filler-{i}": f"Tea is a popular drink number {i}." for i in range(30)}
    texts |= {"green": "Green tea is steeped at 80 degrees.", "black": "Black tea takes boiling water."}
    for name, text in texts.items():
        services.document_upsert(collection=collection, name=name, contents=text)
    index_queued(collection)
    org = funded_org.pk

    def names(term: str) -> list[str]:
        hits = search_collection(organization_id=org, collection_id=collection.pk, term=term, mode="fulltext", top=5)
        return [h.document_name for h in hits.hits]

    # "tea" is everywhere (low weight); "boiling" is rare: the black-tea chunk wins although it is not the only match.
    assert names("tea with boiling water")[0] == "black"
    assert names("green tea")[0] == "green"
    assert "green" not in names("tea -green") and names("tea -green")
    assert names('"boiling water"') == ["black"]
