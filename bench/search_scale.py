"""Vector search latency with 100k chunks in one collection, among many organizations' collections.

    .venv/bin/python bench/search_scale.py                  # 100k target chunks + 49 x 2k others, ~5 minutes
    .venv/bin/python bench/search_scale.py --target 20000 --others 10 --per-other 1000   # a quick look
    DATABASE_URL=postgresql://... .venv/bin/python bench/search_scale.py

Synthetic 384-dimensional vectors (the local model's size), clustered like real embeddings: 300 random unit
centroids, each vector a centroid plus noise, normalised. Rows are loaded with binary COPY, then the partial HNSW
index (m=16, ef_construction=64, as in migration 0001) is rebuilt over the whole table, as it would be after a
restore. Queries are fresh points near random centroids, run through ``knowledge.search.search_collection`` in
vector mode (the production SQL: organization + collection filter, iterative scan, ef_search from ``top``, the
join to documents), top 10. The query's embedding is fixed (synthetic), so latencies exclude the model; the
local model's own time per query is measured apart. Recall@10 is against an exact (numpy) search of the target
collection, so the filtered HNSW is shown to return full, correct pages and not only fast ones.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DIM = 384


def _setup_database() -> Path | None:
    if os.environ.get("DATABASE_URL"):
        return None
    from aivax import embedded

    tmp = Path(tempfile.mkdtemp(prefix="aivax-bench-scale-"))
    os.chmod(tmp, 0o755)
    pg = embedded.start_postgres(tmp / "data", database="bench")
    os.environ["DATABASE_URL"] = pg.url("bench")
    return tmp


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class FixedEmbedder:
    name = "synthetic"
    dimension = DIM

    def __init__(self) -> None:
        self.vector: list[float] = []

    def embed(self, texts: list[str]):  # type: ignore[no-untyped-def]
        from knowledge.embeddings import EmbeddingResult

        return EmbeddingResult(vectors=[self.vector for _ in texts], token_count=8)


def _vectors(rng: np.random.Generator, centroids: np.ndarray, n: int) -> np.ndarray:
    picks = rng.integers(0, len(centroids), size=n)
    rows = centroids[picks] + rng.normal(scale=0.6 / np.sqrt(DIM), size=(n, DIM)) * 1.0
    rows = rows.astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _load(collection, vectors: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    from django.db import connection
    from pgvector.psycopg import register_vector

    from knowledge.models import Document, DocumentStatus

    document = Document.unscoped.create(
        organization_id=collection.organization_id,
        collection=collection,
        name=f"synthetic-{collection.pk}",
        content_hash="0" * 64,
        status=DocumentStatus.INDEXED,
        chunk_count=len(vectors),
    )
    connection.ensure_connection()
    raw = connection.connection
    register_vector(raw)
    with raw.cursor() as cursor:
        sql = (
            "COPY knowledge_chunk (organization_id, collection_id, document_id, position, text, token_count, "
            "dimension, embedding) FROM STDIN WITH (FORMAT BINARY)"
        )
        with cursor.copy(sql) as copy:
            copy.set_types(["int8", "uuid", "uuid", "int4", "text", "int4", "int2", "vector"])
            for position, vector in enumerate(vectors):
                copy.write_row(
                    (
                        collection.organization_id,
                        collection.pk,
                        document.pk,
                        position,
                        f"chunk {position}",
                        3,
                        DIM,
                        vector,
                    )
                )


def build(args: argparse.Namespace) -> tuple[object, np.ndarray, list[object], np.ndarray, float]:
    from django.db import connection

    from accounts.models import Organization
    from knowledge import services

    rng = np.random.default_rng(42)
    centroids = rng.normal(size=(300, DIM)).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)

    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS chunk_embedding_hnsw_384")
    others = []
    for i in range(args.others):
        org = Organization.objects.create(name=f"Other {i}", slug=f"other-{i}-{uuid.uuid4().hex[:6]}")
        collection = services.collection_create(organization=org, name=f"other {i}")
        _load(collection, _vectors(rng, centroids, args.per_other))
        others.append(collection)
    org = Organization.objects.create(name="Big tenant", slug=f"big-{uuid.uuid4().hex[:6]}")
    target = services.collection_create(organization=org, name="big")
    target_vectors = _vectors(rng, centroids, args.target)
    _load(target, target_vectors)
    print(f"  loaded {args.target + args.others * args.per_other} chunks; building the HNSW index...", flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '2GB'")
        cursor.execute("SET max_parallel_maintenance_workers = 1")
        cursor.execute(
            "CREATE INDEX chunk_embedding_hnsw_384 ON knowledge_chunk USING hnsw "
            "((embedding::vector(384)) vector_cosine_ops) WITH (m = 16, ef_construction = 64) WHERE dimension = 384"
        )
        cursor.execute("ANALYZE knowledge_chunk")
    build_seconds = time.perf_counter() - started
    return target, target_vectors, others, centroids, build_seconds


def measure(collection, vectors: np.ndarray | None, centroids: np.ndarray, queries: int, top: int) -> dict:  # type: ignore[no-untyped-def]
    from knowledge.search import search_collection

    rng = np.random.default_rng(7)
    embedder = FixedEmbedder()
    latencies, recalls, returned = [], [], []
    ids = None
    if vectors is not None:
        from knowledge.models import Chunk

        ids = np.array(
            Chunk.unscoped.filter(collection_id=collection.pk).order_by("position").values_list("id", flat=True)
        )
    for i in range(queries + 20):
        query = _vectors(rng, centroids, 1)[0]
        embedder.vector = [float(x) for x in query]
        started = time.perf_counter()
        result = search_collection(
            organization_id=collection.organization_id,
            collection_id=collection.pk,
            collection=collection,
            term="synthetic",
            top=top,
            min_score=-1.0,
            mode="vector",
            use_references=False,
            embedder=embedder,
        )
        elapsed = (time.perf_counter() - started) * 1000
        if i < 20:
            continue  # warm-up
        latencies.append(elapsed)
        returned.append(len(result.hits))
        if ids is not None and vectors is not None:
            exact = set(ids[np.argsort(-(vectors @ query))[:top]].tolist())
            recalls.append(len(exact & {h.chunk_id for h in result.hits}) / top)
    return {
        "p50": percentile(latencies, 0.5),
        "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
        "full_pages": sum(1 for n in returned if n == top) / len(returned),
        "recall": float(np.mean(recalls)) if recalls else None,
    }


def explain(collection, centroids: np.ndarray) -> str:  # type: ignore[no-untyped-def]
    from django.db import connection, transaction

    vector = _vectors(np.random.default_rng(1), centroids, 1)[0]
    literal = "[" + ",".join(f"{x:.7g}" for x in vector) + "]"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute(
            "EXPLAIN SELECT id FROM knowledge_chunk "
            "WHERE organization_id = %s AND collection_id = %s AND dimension = 384 "
            "ORDER BY (embedding::vector(384)) <=> %s::vector(384) LIMIT 10",
            [collection.organization_id, collection.pk, literal],
        )
        plan = [row[0] for row in cursor.fetchall()]
    return "hnsw" if any("hnsw" in line for line in plan) else "exact (btree + sort)"


def query_embedding_latency(queries: int) -> tuple[float, float]:
    from knowledge.providers import local_embedder

    embedder = local_embedder()
    embedder.load()
    samples = [f"how does protein {i} affect cell growth in mice" for i in range(queries + 10)]
    times = []
    for i, text in enumerate(samples):
        started = time.perf_counter()
        embedder.embed([text])
        if i >= 10:
            times.append((time.perf_counter() - started) * 1000)
    return percentile(times, 0.5), percentile(times, 0.95)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", type=int, default=100_000, help="chunks in the searched collection")
    parser.add_argument("--others", type=int, default=49, help="other organizations, one collection each")
    parser.add_argument("--per-other", type=int, default=2_000, help="chunks in each other collection")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()

    tmp = _setup_database()
    from aivax.celery import prefer_settings

    prefer_settings("aivax.settings.dev")  # importing aivax defaulted them to production
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print("Loading synthetic chunks...", flush=True)
        target, vectors, others, centroids, build_seconds = build(args)
        print("Searching...", flush=True)
        big = measure(target, vectors, centroids, args.queries, args.top)
        small = measure(others[0], None, centroids, args.queries, args.top) if others else None
        plans = (explain(target, centroids), explain(others[0], centroids) if others else "-")
        embed_p50, embed_p95 = query_embedding_latency(100)
    finally:
        if tmp is not None:
            from django.db import connections

            connections.close_all()
            from aivax import embedded

            embedded.stop_postgres(tmp / "data")
            shutil.rmtree(tmp, ignore_errors=True)

    total = args.target + args.others * args.per_other
    print()
    print(
        f"Table: {total} chunks in {args.others + 1} organizations' collections; searched collection: "
        f"{args.target} chunks ({100 * args.target / total:.0f}% of the table). HNSW build: {build_seconds:.0f} s."
    )
    print()
    print("| collection searched | plan | p50 (ms) | p95 (ms) | p99 (ms) | full pages | recall@10 vs exact |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {args.target} chunks | {plans[0]} | {big['p50']:.1f} | {big['p95']:.1f} | {big['p99']:.1f} | "
        f"{100 * big['full_pages']:.0f}% | {big['recall']:.3f} |"
    )
    if small is not None:
        print(
            f"| {args.per_other} chunks (another tenant) | {plans[1]} | {small['p50']:.1f} | {small['p95']:.1f} | "
            f"{small['p99']:.1f} | {100 * small['full_pages']:.0f}% | exact |"
        )
    print()
    print(f"Query embedding with the local model (not included above): p50 {embed_p50:.1f} ms, p95 {embed_p95:.1f} ms.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
