"""Rating latency with a team annotating at once, through the real server and Gradio's queue.

Each simulated annotator is its own browser session (gradio_client.Client): it starts, then rates pairs as fast
as the server answers. The studio's setting (rating events run concurrently) is compared in the same run with
Gradio's default (one event at a time), the reference. Prints one JSON line per setting and a ratio line.

    python bench/annotate_load.py [--annotators 20] [--ratings 10]
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


def run(concurrency: int, annotators: int, ratings: int, port: int) -> dict:
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
            for i in range(ratings):
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
    return {"bench": "annotate_load", "setting": "studio" if concurrency > 1 else "gradio_default",
            "concurrency_limit": concurrency, "annotators": annotators, "ratings_each": ratings,
            "ratings_saved": saved, "p50_ms": round(1000 * statistics.median(latencies), 1),
            "p95_ms": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1),
            "ratings_per_s": round(len(latencies) / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--ratings", type=int, default=10)
    args = parser.parse_args()
    from studio.ui.tabs import annotate

    ours = run(annotate.CONCURRENCY_LIMIT, args.annotators, args.ratings, 7871)
    print(json.dumps(ours), flush=True)
    reference = run(1, args.annotators, args.ratings, 7872)
    print(json.dumps(reference), flush=True)
    print(json.dumps({"bench": "annotate_load", "ratio_p95_reference_over_studio":
                      round(reference["p95_ms"] / ours["p95_ms"], 2),
                      "ratio_throughput_studio_over_reference":
                      round(ours["ratings_per_s"] / reference["ratings_per_s"], 2)}))


if __name__ == "__main__":
    main()
