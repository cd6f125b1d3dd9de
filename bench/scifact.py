"""Retrieval quality on BEIR SciFact through the real pipeline: nDCG@10 and recall@10 per search mode, ingestion
throughput, and search latency.

    .venv/bin/python bench/scifact.py                        # whole corpus (5,183 abstracts), ~5 minutes on 2 cores
    .venv/bin/python bench/scifact.py --docs 800 --queries 100   # a quick look
    DATABASE_URL=postgresql://... .venv/bin/python bench/scifact.py   # a scratch database of yours

Ingestion is the production path: each abstract is upserted with ``knowledge.services.document_upsert`` (title as a
``#`` heading, then the text) and indexed by the Celery task ``knowledge.ingest_document``, run in this process
(``task_always_eager``: the same function a worker runs, without a broker). Chunks are the collection defaults
(254 word-pieces, 32 overlap), embedded by the local MiniLM model and billed like any ingestion.

Searches call ``knowledge.search.search_collection`` (query embedding + SQL) with top=30 chunks; a document's rank
is that of its best chunk, and the first 10 distinct documents are scored against the qrels. Latency is that call,
per mode. The dataset holds the train split's relevance judgements only (809 queries): nothing here is tuned on
anything else.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_DATASET = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "scifact"
MODES = ("vector", "fulltext", "hybrid")


def _setup_database() -> Path | None:
    if os.environ.get("DATABASE_URL"):
        return None
    from aivax import embedded

    tmp = Path(tempfile.mkdtemp(prefix="aivax-bench-scifact-"))
    os.chmod(tmp, 0o755)
    pg = embedded.start_postgres(tmp / "data", database="bench")
    os.environ["DATABASE_URL"] = pg.url("bench")
    return tmp


def load(dataset: Path, docs: int | None, queries: int | None) -> tuple[list[dict], list[dict], dict[str, dict]]:
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with (dataset / "qrels" / "train.tsv").open() as fh:
        next(fh)
        for line in fh:
            qid, did, score = line.rstrip("\n").split("\t")
            qrels[qid][did] = int(score)
    corpus = [json.loads(line) for line in (dataset / "corpus.jsonl").open()]
    query_rows = [json.loads(line) for line in (dataset / "queries.jsonl").open()]
    query_rows = [q for q in query_rows if q["_id"] in qrels]
    if queries:
        query_rows = query_rows[:queries]
    if docs:
        # A subset keeps every judged document of the chosen queries, so scores stay comparable.
        wanted = {did for q in query_rows for did in qrels[q["_id"]]}
        chosen = [d for d in corpus if d["_id"] in wanted]
        chosen += [d for d in corpus if d["_id"] not in wanted][: max(0, docs - len(chosen))]
        corpus = chosen
    return corpus, query_rows, qrels


def ndcg_at_10(ranked: list[str], relevant: dict[str, int]) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:10]))
    ideal = sorted(relevant.values(), reverse=True)[:10]
    idcg = sum(rel / math.log2(i + 2) for i, rel in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_10(ranked: list[str], relevant: dict[str, int]) -> float:
    hits = sum(1 for doc in ranked[:10] if relevant.get(doc, 0) > 0)
    return hits / sum(1 for v in relevant.values() if v > 0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ingest(corpus: list[dict]) -> tuple[object, float, int]:

    from accounts.models import Organization
    from aivax.celery import app
    from billing import skus
    from billing.models import Price
    from billing.pricing import invalidate_price_cache
    from billing.services import credit_grant
    from knowledge import services
    from knowledge.models import Document, DocumentStatus
    from knowledge.providers import local_embedder

    app.conf.task_always_eager = True  # the worker's task function, run here on each commit
    logging.getLogger("celery").setLevel(logging.WARNING)
    Price.objects.get_or_create(catalog_model=None, sku=skus.KNOWLEDGE_EMBEDDING, defaults={"unit_price": "0.00000002"})
    Price.objects.get_or_create(catalog_model=None, sku=skus.KNOWLEDGE_SEARCH, defaults={"unit_price": "0.000001"})
    invalidate_price_cache()
    org = Organization.objects.create(name="SciFact bench", slug=f"scifact-{int(time.time())}-{len(corpus)}")
    credit_grant(organization=org, amount=Decimal("100"), reason="benchmark", staff_user=None)
    collection = services.collection_create(organization=org, name="scifact")
    local_embedder().load()

    from knowledge.bulk import BulkDocument

    items = []
    for index, row in enumerate(corpus, start=1):
        title = " ".join((row.get("title") or "").split())
        text = f"# {title}\n\n{row['text']}" if title else row["text"]
        items.append(BulkDocument(line=index, name=row["_id"], text=text))
    started = time.perf_counter()
    # What POST /collections/{id}/documents (a bulk JSONL upload) runs; its commit enqueues the indexing batches,
    # which run here (eager) one after the other.
    services.documents_bulk_upsert(collection=collection, documents=items)
    elapsed = time.perf_counter() - started
    documents = Document.objects.for_org(org).filter(collection=collection)
    failed = documents.exclude(status=DocumentStatus.INDEXED).count()
    if failed:
        raise SystemExit(f"{failed} documents did not index")
    chunks = sum(documents.values_list("chunk_count", flat=True))
    return collection, elapsed, chunks


def _previous(documents: int) -> object | None:
    from knowledge.models import Collection

    return (
        Collection.unscoped.filter(name="scifact", organization__slug__endswith=f"-{documents}")
        .order_by("-created_at")
        .first()
    )


def evaluate(collection: object, queries: list[dict], qrels: dict[str, dict]) -> dict[str, dict[str, float]]:
    from knowledge.search import search_collection

    results: dict[str, dict[str, float]] = {}
    for mode in MODES:
        ndcgs, recalls, latencies = [], [], []
        for query in queries:
            started = time.perf_counter()
            result = search_collection(
                organization_id=collection.organization_id,  # type: ignore[attr-defined]
                collection_id=collection.pk,  # type: ignore[attr-defined]
                collection=collection,  # type: ignore[arg-type]
                term=query["text"],
                top=30,
                min_score=-1.0,
                mode=mode,
                use_references=False,
            )
            latencies.append((time.perf_counter() - started) * 1000)
            ranked = list(dict.fromkeys(hit.document_name for hit in result.hits))
            ndcgs.append(ndcg_at_10(ranked, qrels[query["_id"]]))
            recalls.append(recall_at_10(ranked, qrels[query["_id"]]))
        results[mode] = {
            "ndcg@10": statistics.fmean(ndcgs),
            "recall@10": statistics.fmean(recalls),
            "p50_ms": percentile(latencies, 0.50),
            "p95_ms": percentile(latencies, 0.95),
        }
        print(f"  {mode}: nDCG@10 {results[mode]['ndcg@10']:.3f}", flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--docs", type=int, default=None, help="corpus subset (keeps the judged documents)")
    parser.add_argument("--queries", type=int, default=None)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with DATABASE_URL: search the corpus a previous run ingested there (same --docs) instead of ingesting",
    )
    args = parser.parse_args()

    corpus, queries, qrels = load(args.dataset, args.docs, args.queries)
    tmp = _setup_database()
    from aivax.celery import prefer_settings

    prefer_settings("aivax.settings.dev")  # importing aivax defaulted them to production
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        collection = _previous(len(corpus)) if args.reuse else None
        if collection is None:
            print(f"Ingesting {len(corpus)} documents...", flush=True)
            collection, seconds, chunks = ingest(corpus)
        else:
            seconds, chunks = 0.0, 0
        print(f"Evaluating {len(queries)} queries...", flush=True)
        results = evaluate(collection, queries, qrels)
    finally:
        if tmp is not None:
            from django.db import connections

            connections.close_all()
            from aivax import embedded

            embedded.stop_postgres(tmp / "data")
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"Corpus: {len(corpus)} documents -> {chunks} chunks; queries: {len(queries)} (train qrels)")
    if seconds:
        print(f"Ingestion: {seconds:.1f} s, {chunks / seconds:.1f} chunks/s, {len(corpus) / seconds:.1f} documents/s")
    print()
    print("| mode | nDCG@10 | recall@10 | search p50 (ms) | search p95 (ms) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for mode in MODES:
        r = results[mode]
        print(f"| {mode} | {r['ndcg@10']:.3f} | {r['recall@10']:.3f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
