"""Search a collection: by vector (cosine), by full text, or both fused (hybrid, the default).

Every query is filtered by organization *and* collection in SQL. Vector search runs in a transaction with
``SET LOCAL hnsw.iterative_scan = relaxed_order``: an HNSW scan first finds the nearest vectors of the whole
table and only then applies the filter, so in a table shared by many collections a plain scan returns fewer rows
than asked (often none); the iterative scan keeps walking the graph until enough rows pass the filter. Rows come
back "relaxed" (nearly) in order, so they are sorted again outside a materialised CTE. ``hnsw.ef_search`` is set
from the number of rows wanted (at least ``HNSW_EF_SEARCH_MIN``). Small collections are searched exactly: the
planner then prefers the ``(collection, dimension)`` index and a sort.

Full text uses the collection's language (a PostgreSQL text search configuration, ``simple`` included) for the
query as for the chunks, and ``websearch_to_tsquery`` to match, and ranks by BM25 (Postgres'
``ts_rank_cd`` knows no term rarity: on SciFact it scored 0.41 nDCG@10 against 0.6+ for BM25). A plain question
("how do I reset my password") is matched with OR between its words (its rarer ones, see ``_fulltext_hits``),
since requiring every word finds almost nothing for natural-language queries; a query using web-search syntax
(quotes, ``or``, ``-word``) keeps the syntax's own meaning.

Scores, per mode (``score`` is what results are ranked by):

- ``vector``: cosine similarity, -1..1 (0..1 in practice);
- ``fulltext``: BM25, divided by the best score the query could reach (every term matched in a very short
  chunk), 0..1;
- ``hybrid``: a convex combination of the two lists' min-max normalised scores, 0.6 x cosine + 0.4 x BM25
  (``_fuse``), 0..1; 1.0 means first in both lists.

``min_score`` is a relevance floor on the cosine similarity in ``vector`` and ``hybrid`` modes (a fused rank is no
measure of relevance), and on the normalised rank in ``fulltext`` mode. Each hit also carries ``similarity``
(its cosine similarity, when its vector has the collection's dimension).

References: a hit whose document has a ``reference`` brings the other indexed documents with the same reference
as ``referenced_documents``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from aivax.db import run_db
from aivax.errors import InvalidRequest, NotFound
from knowledge.embeddings import Embedder, count_tokens
from knowledge.models import TEXT_SEARCH_CONFIG, Collection
from knowledge.providers import embedder_for

MODES = ("hybrid", "vector", "fulltext")
MAX_TOP = 100
MAX_TERM_CHARS = 4000
HYBRID_VECTOR_WEIGHT = 0.6  # see _fuse
HYBRID_CANDIDATES_MIN = 40  # rows taken from each list before fusing
# Candidates the HNSW scan keeps (pgvector's default is 40). 100 took recall@10 against exact search from 0.88 to
# 0.9+ on bench/search_scale.py's 100k-chunk collection, for about a millisecond.
HNSW_EF_SEARCH_MIN = 100
BM25_K1 = 1.2
BM25_B = 0.75
BM25_CANDIDATE_DF = 0.05
REFERENCED_LIMIT = 10
REFERENCED_CONTENT_CHARS = 4000
_WEBSEARCH_SYNTAX = re.compile(r'"|(^|\s)-\w|\sor\s', re.IGNORECASE)


@dataclass
class SearchHit:
    chunk_id: int
    document_id: uuid.UUID
    document_name: str
    reference: str
    content: str
    position: int
    score: float
    similarity: float | None = None
    referenced_documents: list[dict[str, Any]] = field(default_factory=list)

    def as_api(self) -> dict[str, Any]:
        """The AIVAX shape, plus our extras (chunk position, similarity, reference)."""
        return {
            "documentId": str(self.document_id),
            "documentName": self.document_name,
            "documentContent": self.content,
            "score": round(self.score, 6),
            "referencedDocuments": self.referenced_documents,
            "similarity": None if self.similarity is None else round(self.similarity, 6),
            "reference": self.reference or None,
            "chunkPosition": self.position,
        }


@dataclass
class SearchResult:
    hits: list[SearchHit]
    query_tokens: int  # what the search is billed by
    mode: str
    usage_lines: list[Any] = field(default_factory=list)  # the billed lines (UsageLine), when the caller billed it


def _vector_literal(vector: list[float]) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"


def _vector_hits(
    org_id: int, collection_id: uuid.UUID, dimension: int, vector: str, limit: int
) -> list[tuple[Any, ...]]:
    dim = int(dimension)  # a literal in the SQL: the partial index is chosen by `dimension = <literal>`
    sql = f"""
        WITH hits AS MATERIALIZED (
            SELECT c.id, c.document_id, c.position, c.text,
                   (c.embedding::vector({dim})) <=> %s::vector({dim}) AS distance
            FROM knowledge_chunk c
            WHERE c.organization_id = %s AND c.collection_id = %s AND c.dimension = {dim}
            ORDER BY (c.embedding::vector({dim})) <=> %s::vector({dim})
            LIMIT %s
        )
        SELECT h.id, h.document_id, h.position, h.text, 1 - h.distance, d.name, d.reference
        FROM hits h JOIN knowledge_document d ON d.id = h.document_id
        ORDER BY h.distance, h.id
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('hnsw.ef_search', %s, true), set_config('hnsw.iterative_scan', 'relaxed_order', true)",
            [str(max(HNSW_EF_SEARCH_MIN, min(1000, limit * 2)))],
        )
        cursor.execute(sql, [vector, org_id, collection_id, vector, limit])
        return cursor.fetchall()


def _fulltext_hits(
    org_id: int,
    collection_id: uuid.UUID,
    term: str,
    dimension: int,
    vector: str | None,
    limit: int,
    language: str = TEXT_SEARCH_CONFIG,
) -> list[tuple[Any, ...]]:
    """BM25 over the collection's chunks, in one statement.

    Term frequency is binary (a chunk is ~250 words, where repeats say little); document frequencies are counted
    in the collection at query time through the GIN index; the chunk count and average length come from the
    documents' counters. For a plain question, candidates are the chunks holding one of its rarer terms (document
    frequency up to ``BM25_CANDIDATE_DF`` of the collection, or the rarest term when all are common): a chunk
    that shares only words like "show" or "increase" with the question cannot rank high, and scoring it is most
    of the cost. A web-search-syntax query takes its own matches as candidates."""
    dim = int(dimension)
    similarity = (
        f"CASE WHEN c.dimension = {dim} THEN 1 - ((c.embedding::vector({dim})) <=> %s::vector({dim})) END"
        if vector is not None
        else "NULL::float8"
    )
    k1, b = BM25_K1, BM25_B
    if _WEBSEARCH_SYNTAX.search(term):
        candidate_query = "SELECT websearch_to_tsquery(%s::regconfig, %s) AS query"
        params: list[Any] = [language, term]
    else:
        candidate_query = f"""
            SELECT (string_agg(w.tq::text, ' | '))::tsquery AS query FROM weights w, stats
            WHERE w.df > 0
              AND w.df <= greatest({BM25_CANDIDATE_DF} * stats.n, (SELECT min(df) FROM weights WHERE df > 0))
        """
        params = []
    sql = f"""
        WITH terms AS (
            SELECT DISTINCT quote_literal(t.lexeme)::tsquery AS tq
            FROM unnest(to_tsvector(%s::regconfig, %s)) AS t
        ),
        stats AS (
            SELECT greatest(coalesce(sum(chunk_count), 0), 1)::float8 AS n,
                   greatest(coalesce(sum(token_count - 2 * chunk_count)::float8 / nullif(sum(chunk_count), 0), 1), 1)
                       AS avglen
            FROM knowledge_document
            WHERE organization_id = %s AND collection_id = %s AND status = 'indexed'
        ),
        weights AS (
            SELECT terms.tq, df.df, ln(1 + greatest(stats.n - df.df + 0.5, 0.5) / (df.df + 0.5)) AS idf
            FROM terms CROSS JOIN stats CROSS JOIN LATERAL (
                SELECT count(*)::float8 AS df FROM knowledge_chunk c
                WHERE c.organization_id = %s AND c.collection_id = %s AND c.search_vector @@ terms.tq
            ) df
        ),
        best AS (
            SELECT coalesce(sum(idf), 0) * {(k1 + 1) / (1 + k1 * (1 - b))} AS value FROM weights
        ),
        q AS ({candidate_query}),
        candidates AS MATERIALIZED (
            SELECT c.id, c.token_count, c.search_vector FROM knowledge_chunk c, q
            WHERE c.organization_id = %s AND c.collection_id = %s AND c.search_vector @@ q.query
        ),
        scored AS (
            SELECT cand.id,
                   sum(w.idf) * {k1 + 1} / (1 + {k1} * (1 - {b} + {b} * cand.token_count / stats.avglen)) AS bm25
            FROM candidates cand JOIN weights w ON cand.search_vector @@ w.tq CROSS JOIN stats
            GROUP BY cand.id, cand.token_count, stats.avglen
            ORDER BY bm25 DESC, cand.id
            LIMIT %s
        )
        SELECT c.id, c.document_id, c.position, c.text, s.bm25 / nullif(best.value, 0), d.name, d.reference,
               {similarity}
        FROM scored s CROSS JOIN best
        JOIN knowledge_chunk c ON c.id = s.id
        JOIN knowledge_document d ON d.id = c.document_id
        ORDER BY s.bm25 DESC, c.id
    """
    params = [language, term, org_id, collection_id, org_id, collection_id, *params, org_id, collection_id, limit]
    if vector is not None:
        params.append(vector)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _referenced(org_id: int, collection_id: uuid.UUID, hits: list[SearchHit]) -> None:
    references = sorted({h.reference for h in hits if h.reference})
    if not references:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT id, name, reference, left(content, %s) FROM knowledge_document
            WHERE organization_id = %s AND collection_id = %s AND reference = ANY(%s) AND status = 'indexed'
            ORDER BY reference, name
            """,
            [REFERENCED_CONTENT_CHARS, org_id, collection_id, references],
        )
        rows = cursor.fetchall()
    by_reference: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_reference.setdefault(row[2], []).append(row)
    for hit in hits:
        if not hit.reference:
            continue
        hit.referenced_documents = [
            {"documentId": str(doc_id), "documentName": name, "documentContent": content}
            for doc_id, name, _ref, content in by_reference.get(hit.reference, [])
            if doc_id != hit.document_id
        ][:REFERENCED_LIMIT]


def validate_query(term: str, top: int, min_score: float, mode: str) -> str:
    term = (term or "").strip()
    if not term:
        raise InvalidRequest("'term' must not be empty.", param="term")
    if len(term) > MAX_TERM_CHARS:
        raise InvalidRequest(f"'term' is longer than {MAX_TERM_CHARS} characters.", param="term")
    if not 1 <= int(top) <= MAX_TOP:
        raise InvalidRequest(f"'top' must be between 1 and {MAX_TOP}.", param="top")
    if not -1.0 <= float(min_score) <= 1.0:
        raise InvalidRequest("'min' must be between -1 and 1.", param="min")
    if mode not in MODES:
        raise InvalidRequest(f"'mode' must be one of {', '.join(MODES)}.", param="mode")
    return term


def search_collection(
    *,
    organization_id: int,
    collection_id: uuid.UUID | str,
    term: str,
    top: int = 10,
    min_score: float = 0.0,
    mode: str = "hybrid",
    use_references: bool = True,
    collection: Collection | None = None,
    embedder: Embedder | None = None,
) -> SearchResult:
    """Search one collection of one organization. Another organization's collection is a NotFound. Not billed:
    callers bill ``knowledge.search`` by ``result.query_tokens`` (knowledge.services.collection_query does)."""
    term = validate_query(term, top, min_score, mode)
    if collection is None:
        try:
            collection = Collection.objects.for_org(organization_id).get(pk=collection_id)
        except (Collection.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
            raise NotFound("Collection not found.", param="collection_id") from exc
    elif collection.organization_id != organization_id:
        raise NotFound("Collection not found.", param="collection_id")

    dim = collection.embedding_dimension
    vector: str | None = None
    tokens = count_tokens(term) + 2
    if mode in ("vector", "hybrid"):
        result = (embedder or embedder_for(collection)).embed([term])
        vector = _vector_literal(result.vectors[0])
        tokens = result.token_count
    candidates = top if mode != "hybrid" else max(HYBRID_CANDIDATES_MIN, top * 2)

    vector_rows = _vector_hits(organization_id, collection.pk, dim, vector, candidates) if vector else []
    text_rows = (
        _fulltext_hits(organization_id, collection.pk, term, dim, vector, candidates, collection.language)
        if mode != "vector"
        else []
    )

    if mode == "vector":
        hits = [_hit(row, score=row[4], similarity=row[4]) for row in vector_rows if row[4] >= min_score]
    elif mode == "fulltext":
        hits = [_hit(row, score=row[4], similarity=row[7]) for row in text_rows if row[4] >= min_score]
    else:
        hits = _fuse(vector_rows, text_rows, min_score)
    hits = hits[:top]
    if use_references:
        _referenced(organization_id, collection.pk, hits)
    return SearchResult(hits=hits, query_tokens=tokens, mode=mode)


def _hit(row: tuple[Any, ...], *, score: float, similarity: float | None) -> SearchHit:
    return SearchHit(
        chunk_id=row[0],
        document_id=row[1],
        position=row[2],
        content=row[3],
        document_name=row[5],
        reference=row[6] or "",
        score=float(score),
        similarity=None if similarity is None else float(similarity),
    )


def _fuse(vector_rows: list[tuple[Any, ...]], text_rows: list[tuple[Any, ...]], min_score: float) -> list[SearchHit]:
    """Convex combination of the two lists' scores, each min-max normalised over its candidates:
    ``HYBRID_VECTOR_WEIGHT * cosine' + (1 - HYBRID_VECTOR_WEIGHT) * bm25'``.

    A chunk found by full text only brings its exact cosine similarity (computed with the BM25 row), normalised
    like the vector list's; a chunk found by vector only scores 0 on the full-text side. On SciFact (train split,
    100 queries over 400 abstracts, bench/fusion.py) this gave nDCG@10 0.883 against 0.845 for reciprocal rank
    fusion (k = 60), which throws the scores' gaps away; weights 0.5-0.7 were within 0.002 of each other."""
    vector = {row[0]: float(row[4]) for row in vector_rows}
    text = {row[0]: float(row[4]) for row in text_rows}
    vlow, vhigh = (min(vector.values()), max(vector.values())) if vector else (0.0, 1.0)
    tlow, thigh = (min(text.values()), max(text.values())) if text else (0.0, 1.0)
    rows: dict[int, tuple[Any, ...]] = {row[0]: row for row in text_rows} | {row[0]: row for row in vector_rows}
    weight = HYBRID_VECTOR_WEIGHT
    hits = []
    for chunk_id, row in rows.items():
        similarity = vector.get(chunk_id)
        if similarity is None and chunk_id in text:
            similarity = None if row[7] is None else float(row[7])
        if similarity is not None and similarity < min_score:
            continue
        v = ((similarity if similarity is not None else vlow) - vlow) / ((vhigh - vlow) or 1.0)
        t = (text.get(chunk_id, tlow) - tlow) / ((thigh - tlow) or 1.0) if chunk_id in text else 0.0
        hits.append((weight * v + (1 - weight) * t, _hit(row, score=0.0, similarity=similarity)))
    hits.sort(key=lambda pair: (-pair[0], -(pair[1].similarity or 0.0), pair[1].chunk_id))
    for score, hit in hits:
        hit.score = min(1.0, max(0.0, score))  # the rank uses the raw value; the reported score stays in 0..1
    return [hit for _, hit in hits]


async def asearch_collection(**kwargs: Any) -> SearchResult:
    """``search_collection`` from async code (on the shared DB thread pool)."""
    return await run_db(lambda: search_collection(**kwargs))
