"""Ingestion throughput through the production path, beside the raw embedder on the same chunks and machine.

    .venv/bin/python bench/ingestion.py                 # the whole SciFact corpus (5,183 abstracts)
    .venv/bin/python bench/ingestion.py --docs 1000     # a quicker look

1. **Pipeline**: the corpus as one AIVAX bulk JSONL file, parsed by ``knowledge.bulk.parse_bulk_jsonl`` and upserted
   by ``knowledge.services.documents_bulk_upsert`` (what ``POST /collections/{id}/documents`` runs), whose commit
   enqueues the ``knowledge.ingest_documents`` batches; the worker's task function runs them here, one after the
   other (``task_always_eager``: a worker with concurrency 1, without the broker hop). Timed from the upload to
   the last document ``indexed``: claim, chunk, embed, bill, COPY with the HNSW and GIN indexes maintained.
2. **Raw embedder**: the very chunks the pipeline stored, embedded again by the same model in calls of the same
   size (``knowledge.ingestion.EMBED_BATCH``), nothing else.

The ratio of the two is the pipeline's efficiency (target >= 90%). CPU seconds are this process's (user+system);
PostgreSQL's are read from /proc for its process tree.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_DATASET = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "scifact"


def _cpu_of_tree(pid: int) -> float:
    """user+system seconds of a process and its children (PostgreSQL's backends)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(stat[1]) == pid:
            total += (int(stat[11]) + int(stat[12])) / tick
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--docs", type=int, default=None)
    parser.add_argument("--model", default=None, help="embedding model of the collection (default: the default)")
    args = parser.parse_args()

    corpus = [json.loads(line) for line in (args.dataset / "corpus.jsonl").open()]
    if args.docs:
        corpus = corpus[: args.docs]
    lines = []
    for row in corpus:
        title = " ".join((row.get("title") or "").split())
        text = f"# {title}\n\n{row['text']}" if title else row["text"]
        lines.append(json.dumps({"docid": row["_id"], "text": text}))
    payload = ("\n".join(lines) + "\n").encode()

    tmp = Path(tempfile.mkdtemp(prefix="aivax-bench-ingest-"))
    os.chmod(tmp, 0o755)
    from aivax import embedded

    pg = embedded.start_postgres(tmp / "data", database="bench")
    os.environ["DATABASE_URL"] = pg.url("bench")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aivax.settings.dev")
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        pg_pid = int((tmp / "data" / "postmaster.pid").read_text().split()[0])
        result = run(payload, args.model, pg_pid)
    finally:
        from django.db import connections

        connections.close_all()
        embedded.stop_postgres(tmp / "data")
        shutil.rmtree(tmp, ignore_errors=True)

    docs, chunks, tokens, seconds, cpu, pg_cpu, raw_seconds, raw_cpu, model, threads = result
    print()
    print(f"Model {model}, {threads} intra-op threads; {docs} documents -> {chunks} chunks ({tokens} tokens)")
    print("| path | seconds | chunks/s | CPU s (this process) | CPU s (PostgreSQL) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| pipeline (bulk upload -> indexed) | {seconds:.1f} | {chunks / seconds:.1f} | {cpu:.1f} | {pg_cpu:.1f} |")
    print(f"| raw embedder, same chunks | {raw_seconds:.1f} | {chunks / raw_seconds:.1f} | {raw_cpu:.1f} | - |")
    print(f"Pipeline / raw: {raw_seconds / seconds:.0%}")
    return 0


def run(payload: bytes, model: str | None, pg_pid: int) -> tuple:  # type: ignore[type-arg]
    from accounts.models import Organization
    from aivax.celery import app
    from billing import skus
    from billing.models import Price
    from billing.pricing import invalidate_price_cache
    from billing.services import credit_grant
    from knowledge import ingestion, services
    from knowledge.bulk import parse_bulk_jsonl
    from knowledge.models import Chunk, Document, DocumentStatus
    from knowledge.providers import embedder_for

    app.conf.task_always_eager = True
    logging.getLogger("celery").setLevel(logging.WARNING)
    Price.objects.get_or_create(catalog_model=None, sku=skus.KNOWLEDGE_EMBEDDING, defaults={"unit_price": "0.00000002"})
    invalidate_price_cache()
    org = Organization.objects.create(name="Ingestion bench", slug=f"ingest-{int(time.time())}")
    credit_grant(organization=org, amount=Decimal("100"), reason="benchmark", staff_user=None)
    extra = {"embedding_model": model} if model else {}
    collection = services.collection_create(organization=org, name="scifact", **extra)
    embedder = embedder_for(collection)
    embedder.load()  # type: ignore[attr-defined]
    embedder.embed(["warm-up"])

    print(f"Uploading {len(payload.splitlines())} documents...", flush=True)
    cpu0, pg0, started = time.process_time(), _cpu_of_tree(pg_pid), time.perf_counter()
    services.documents_bulk_upsert(collection=collection, documents=parse_bulk_jsonl(payload))
    seconds = time.perf_counter() - started
    cpu, pg_cpu = time.process_time() - cpu0, _cpu_of_tree(pg_pid) - pg0
    documents = Document.objects.for_org(org).filter(collection=collection)
    left = documents.exclude(status=DocumentStatus.INDEXED).count()
    if left:
        raise SystemExit(f"{left} documents did not index")
    texts = list(Chunk.objects.for_org(org).filter(collection=collection).values_list("text", flat=True))
    tokens = sum(documents.values_list("token_count", flat=True))

    print(f"Pipeline: {seconds:.1f} s; embedding the same {len(texts)} chunks alone...", flush=True)
    cpu0, started = time.process_time(), time.perf_counter()
    for start in range(0, len(texts), ingestion.EMBED_BATCH):
        embedder.embed(texts[start : start + ingestion.EMBED_BATCH])
    raw_seconds, raw_cpu = time.perf_counter() - started, time.process_time() - cpu0
    threads = getattr(embedder, "threads", "-")
    return documents.count(), len(texts), tokens, seconds, cpu, pg_cpu, raw_seconds, raw_cpu, embedder.name, threads


if __name__ == "__main__":
    raise SystemExit(main())
