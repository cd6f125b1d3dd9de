"""Fusion of the vector and full-text lists on SciFact, offline: both lists are fetched once per query (the
production SQL, 100 candidates each), then fusion functions are scored on them in Python.

    DATABASE_URL=... .venv/bin/python bench/fusion.py --docs 1500 --queries 300   # after bench/scifact.py with
                                                                                  # the same DATABASE_URL and --docs
Prints nDCG@10 per fusion (document = its best chunk), for: reciprocal rank fusion (k = 60, the current default;
other k; weighted), and a convex combination of min-max-normalised scores (cosine and BM25) at several weights.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scifact import DEFAULT_DATASET, _previous, load, ndcg_at_10

CANDIDATES = 100


def ranked_docs(scores: dict[int, float], doc_of: dict[int, str]) -> list[str]:
    order = sorted(scores, key=lambda cid: -scores[cid])
    return list(dict.fromkeys(doc_of[cid] for cid in order))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--docs", type=int, default=None)
    parser.add_argument("--queries", type=int, default=None)
    args = parser.parse_args()
    corpus, queries, qrels = load(args.dataset, args.docs, args.queries)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aivax.settings.dev")
    import django

    django.setup()
    from knowledge import search
    from knowledge.providers import embedder_for

    collection = _previous(len(corpus))
    if collection is None:
        raise SystemExit("run bench/scifact.py with the same DATABASE_URL and --docs first")
    embedder = embedder_for(collection)
    lists = []
    for query in queries:
        vector = search._vector_literal(embedder.embed([query["text"]]).vectors[0])
        org, cid, dim = collection.organization_id, collection.pk, collection.embedding_dimension
        vrows = search._vector_hits(org, cid, dim, vector, CANDIDATES)
        trows = search._fulltext_hits(org, cid, query["text"], dim, vector, CANDIDATES, collection.language)
        lists.append((query, vrows, trows))

    def evaluate(fuse) -> float:  # type: ignore[no-untyped-def]
        scores = []
        for query, vrows, trows in lists:
            doc_of = {r[0]: r[5] for r in vrows} | {r[0]: r[5] for r in trows}
            scores.append(ndcg_at_10(ranked_docs(fuse(vrows, trows), doc_of), qrels[query["_id"]]))
        return statistics.fmean(scores)

    def rrf(k: float, wv: float = 1.0, wt: float = 1.0, depth: int = 40):  # type: ignore[no-untyped-def]
        def fuse(vrows, trows):  # type: ignore[no-untyped-def]
            out: dict[int, float] = {}
            for rank, r in enumerate(vrows[:depth], 1):
                out[r[0]] = out.get(r[0], 0) + wv / (k + rank)
            for rank, r in enumerate(trows[:depth], 1):
                out[r[0]] = out.get(r[0], 0) + wt / (k + rank)
            return out

        return fuse

    def convex(alpha: float, depth: int = 40):  # type: ignore[no-untyped-def]
        def fuse(vrows, trows):  # type: ignore[no-untyped-def]
            v = {r[0]: float(r[4]) for r in vrows[:depth]}
            t = {r[0]: float(r[4]) for r in trows[:depth]}
            # a chunk missing from one list gets that list's floor (its lowest candidate's score)
            vmin, vmax = (min(v.values()), max(v.values())) if v else (0.0, 1.0)
            tmin, tmax = (min(t.values()), max(t.values())) if t else (0.0, 1.0)
            sims = {r[0]: r[7] for r in trows[:depth]}
            out = {}
            for cid in set(v) | set(t):
                vs = v.get(cid, sims.get(cid) if sims.get(cid) is not None else vmin)
                nv = (vs - vmin) / ((vmax - vmin) or 1)
                nt = (t.get(cid, tmin) - tmin) / ((tmax - tmin) or 1)
                out[cid] = alpha * nv + (1 - alpha) * nt
            return out

        return fuse

    print(f"{len(lists)} queries, {len(corpus)} documents")
    print(f"vector only: {evaluate(lambda v, t: {r[0]: float(r[4]) for r in v}):.4f}")
    print(f"fulltext only: {evaluate(lambda v, t: {r[0]: float(r[4]) for r in t}):.4f}")
    for k in (60, 20, 10, 100):
        print(f"rrf k={k}: {evaluate(rrf(k)):.4f}")
    for wv in (1.2, 1.5, 2.0):
        print(f"rrf k=60 wv={wv}: {evaluate(rrf(60, wv)):.4f}")
    for depth in (20, 100):
        print(f"rrf k=60 depth={depth}: {evaluate(rrf(60, depth=depth)):.4f}")
    for alpha in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        print(f"convex alpha={alpha}: {evaluate(convex(alpha)):.4f}")
    for alpha in (0.5, 0.6, 0.7):
        print(f"convex alpha={alpha} depth=100: {evaluate(convex(alpha, 100)):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
