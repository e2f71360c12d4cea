"""Side-by-side search latency after the first query, on a synthetic corpus of N documents (CPU).

Reference: encoding the corpus for every query (what a view without the embedding cache would do), timed on a
slice and scaled to N. Prints JSON lines.

    python bench/compare_latency.py [--docs 10000] [--queries 20]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = ("blood pressure insulin glucose kidney retina stroke warfarin vitamin statin cholesterol asthma inhaler "
         "fever child vaccine influenza antibiotic pregnancy pain migraine sleep thyroid dose tablet diet").split()


def synthetic_corpus(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 90))) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10000)
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args()
    from studio.retrieval import cache
    from studio.retrieval.dense import encode, resolve_model
    from studio.retrieval.search import search

    texts = synthetic_corpus(args.docs)
    keys = [f"d{i}" for i in range(args.docs)]
    model = resolve_model("default")
    with tempfile.TemporaryDirectory() as tmp:
        cache.CACHE_DIR = cache.Path(tmp)
        t0 = time.perf_counter()
        search(model, "warm-up query", keys, texts, 10)
        first = time.perf_counter() - t0
        rng = random.Random(1)
        latencies = [search(model, " ".join(rng.sample(WORDS, 4)), keys, texts, 10)[1] for _ in range(args.queries)]
    sample = texts[:500]
    t0 = time.perf_counter()
    encode(sample, model)
    reencode_ms = (time.perf_counter() - t0) / len(sample) * args.docs * 1000
    p50 = statistics.median(latencies)
    print(json.dumps({"bench": "compare_latency", "docs": args.docs, "first_query_s": round(first, 1),
                      "p50_ms": round(p50, 1), "max_ms": round(max(latencies), 1),
                      "reference_reencode_ms": round(reencode_ms), "ratio_reference_over_studio":
                      round(reencode_ms / p50)}))


if __name__ == "__main__":
    main()
