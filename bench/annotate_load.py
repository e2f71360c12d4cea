"""Rating latency with a team annotating at once, through the real server and Gradio's queue.

Each simulated annotator is its own browser session (gradio_client.Client): it starts, then rates pairs, first
paced like a fast expert (--think seconds of reading per pair), then as fast as the server answers (capacity).
The studio's setting (annotate.CONCURRENCY_LIMIT) is compared in the same run with 16 events at a time, the
setting DESIGN.md first proposed (the reference). The clients share the machine with the server, so saturated figures are a
lower bound. Prints one JSON line per setting and a ratio line.

    python bench/annotate_load.py [--annotators 20] [--ratings 6] [--think 2.0]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def run(concurrency: int, annotators: int, ratings: int, port: int, think: float = 0.0) -> dict:
    from gradio_client import Client

    from studio.demo import load_demo
    from studio.store import connect
    from studio.store.annotators import ensure_annotator
    from studio.ui import app as app_module
    from studio.ui.tabs import annotate

    annotate.CONCURRENCY_LIMIT = concurrency
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "load.db"
        db = connect(db_path)
        load_demo(db)
        names = [f"annotator-{i:02d}" for i in range(annotators)]
        for name in names:
            ensure_annotator(db, name)
        db.close()
        demo = app_module.launch(db_path=db_path, port=port, prevent_thread_lock=True)
        url = f"http://127.0.0.1:{port}/"
        latencies: list[float] = []

        def annotator(name: str) -> list[float]:
            client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
            client.predict(name, "en", api_name="/annotate_start")
            own = []
            rng = __import__("random").Random(name)
            for i in range(ratings):
                if think:
                    time.sleep(rng.uniform(0.5, 1.5) * think)  # reading the document
                t0 = time.perf_counter()
                client.predict(name, None, "", "en", api_name=f"/annotate_rate_{i % 3}")
                own.append(time.perf_counter() - t0)
            return own

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=annotators) as pool:
            for own in pool.map(annotator, names):
                latencies.extend(own)
        wall = time.perf_counter() - start
        demo.close()
        saved = connect(db_path).execute("SELECT count(*) FROM ratings WHERE annotator_id > 4").fetchone()[0]
    latencies.sort()
    return {"bench": "annotate_load", "setting": f"concurrency_{concurrency}",
            "concurrency_limit": concurrency, "think_s": think, "annotators": annotators, "ratings_each": ratings,
            "ratings_saved": saved, "p50_ms": round(1000 * statistics.median(latencies), 1),
            "p95_ms": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1),
            "ratings_per_s": round(len(latencies) / wall, 1)}


def library_latency(pairs: int = 20000, calls: int = 20) -> dict:
    """Milliseconds per store call on a project of `pairs` pairs, half of them rated once (no server, no client)."""
    import random

    from studio.ingest.records import Document, ImportBatch, PairRecord, Query
    from studio.store import connect
    from studio.store import ratings as store_ratings
    from studio.store.annotators import ensure_annotator
    from studio.store.imports import import_batch

    with tempfile.TemporaryDirectory() as tmp:
        db = connect(Path(tmp) / "big.db")
        import_batch(db, ImportBatch("import", "bench", [
            PairRecord(Query(f"query {i // 10}", f"q{i // 10}"), Document(f"document {i}", f"d{i}"), line=i)
            for i in range(pairs)]))
        for name in ("a", "b", "c"):
            ensure_annotator(db, name)
        rng = random.Random(0)
        db.conn.executemany("INSERT INTO ratings (pair_id, annotator_id, rating) VALUES (?, ?, ?)",
                            [(p, 1 + p % 2, rng.choice([0, 1, 2])) for p in range(1, pairs // 2 + 1)])
        db.conn.commit()

        def ms(fn) -> float:
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            return round(1000 * (time.perf_counter() - t0) / calls, 2)

        view = store_ratings.next_pair(db, "c")
        return {"bench": "annotate_store", "pairs": pairs, "next_pair_ms": ms(lambda: store_ratings.next_pair(db, "c")),
                "submit_ms": ms(lambda: store_ratings.submit_rating(db, "c", view.pair_id, 1)),
                "progress_ms": ms(lambda: store_ratings.progress(db, "c"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--ratings", type=int, default=6, help="per annotator (the demo has 160 open slots)")
    parser.add_argument("--think", type=float, default=2.0, help="mean seconds an expert reads before rating")
    args = parser.parse_args()
    from studio.ui.tabs import annotate

    print(json.dumps(library_latency()), flush=True)

    studio_limit, port = annotate.CONCURRENCY_LIMIT, 7871
    for think in (args.think, 0.0):  # a paced team (what a person feels), then saturation (capacity)
        ours = run(studio_limit, args.annotators, args.ratings, port, think)
        reference = run(16, args.annotators, args.ratings, port + 1, think)
        port += 2
        print(json.dumps(ours), flush=True)
        print(json.dumps(reference), flush=True)
        print(json.dumps({"bench": "annotate_load", "think_s": think,
                          "ratio_p95_reference_over_studio": round(reference["p95_ms"] / ours["p95_ms"], 2),
                          "ratio_throughput_studio_over_reference":
                          round(ours["ratings_per_s"] / reference["ratings_per_s"], 2)}), flush=True)


if __name__ == "__main__":
    main()
