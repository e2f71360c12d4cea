"""The approximate index of a large project's dense search (studio.retrieval.ann) against exact search.

Vectors with the structure of real ones: man-page passages (bench/manpages.py's English set, its DESCRIPTION texts cut
into ~60-word passages, a seeded sample of ``--passages``) encoded by the embedded all-MiniLM-L6-v2, then padded to
each size N with variants — a passage's vector plus Gaussian noise (σ 0.01–0.03 per dimension: cosine 0.86–0.98
to it, as the text variants of bench/compare_latency.py are near their passage), L2-normalised. Queries: the set's real
queries (train and test), encoded by the same model. Encoded vectors are cached under .cache/bench/.

For each N, one JSON line per method:

* ``exact``: what studio.retrieval.search.search does below the threshold — one query vector times the float32
  matrix, top 10 (numpy); p50/p95 over ``--timed`` queries; the matrix's MB.
* ``ivf-sq8`` (the studio's, studio.retrieval.ann.build): build seconds (train + add + recall measured and nprobe
  chosen), the index's MB (its saved file: what it adds to the matrix the exact search holds) and the process's
  resident growth, p50/p95 per query (probe + exact rescoring of the candidates); the recall the index measured
  (what ⑨ shows) on every other real query, as a project's labelled queries, at the nprobe it chose; recall@10
  against exact on the other half (queries it never saw); what the synthetic probe queries (a project with fewer
  than 50 labelled queries) would choose and show; an incremental update
  (1,000 documents added, 1,000 removed) against a rebuild; save and load seconds.
* ``hnsw`` (up to ``--hnsw-max``, faiss IndexHNSWFlat M=32, efConstruction 40): build seconds, MB, p50/p95 and
  recall@10 at the smallest efSearch reaching 0.99 — the alternative the studio did not choose.

    python bench/ann.py [--sizes 200000,1000000] [--passages 3000] [--hnsw-max 200000] [--smoke]

``--smoke`` (< 30 s): 20,000 vectors from 200 passages, 100 queries. MANPAGES_SET=FOLDER reads another BEIR set.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MANPAGES = Path(os.environ.get("MANPAGES_SET", ROOT / ".cache" / "bench" / "manpages-en"))
CACHE = ROOT / ".cache" / "bench"

import numpy as np  # noqa: E402

from studio.retrieval import ann  # noqa: E402
from studio.retrieval.dense import top_k  # noqa: E402


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"p50_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))], 2)}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def real_vectors(passages: int) -> tuple[np.ndarray, np.ndarray]:
    """(passage vectors, query vectors) of the man-page set, encoded once and cached."""
    path = CACHE / f"ann-vectors-{MANPAGES.name}-{passages}.npz"
    for cached in sorted(CACHE.glob(f"ann-vectors-{MANPAGES.name}-*.npz")):  # a larger sample's first rows
        if int(cached.stem.rsplit("-", 1)[1]) >= passages:
            saved = np.load(cached)
            return saved["passages"][:passages], saved["queries"]
    if not (MANPAGES / "corpus.jsonl").is_file():
        raise SystemExit(f"no man-page set at {MANPAGES}: run python bench/manpages.py --lang en --out {MANPAGES}")
    from studio.records import document_text
    from studio.retrieval.dense import encode

    texts = []
    for line in (MANPAGES / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        words = doc["text"].split()
        for start in range(0, len(words), 60):
            texts.append(document_text(doc.get("title") or "", " ".join(words[start:start + 80])))
    random.Random(0).shuffle(texts)
    queries = [json.loads(line)["text"] for line in (MANPAGES / "queries.jsonl").read_text().splitlines()]
    t0 = time.perf_counter()
    vectors = encode(texts[:passages], "default")
    print(json.dumps({"encoded_passages": len(vectors), "seconds": round(time.perf_counter() - t0, 1)}),
          file=sys.stderr)
    query_vectors = encode(queries, "default")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, passages=vectors, queries=query_vectors)
    return vectors, query_vectors


def corpus(n: int, base: np.ndarray, seed: int = 0) -> np.ndarray:
    """`n` rows: the passages first, then noisy variants of them (σ 0.01-0.03 per dimension), normalised."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    out[:min(n, len(base))] = base[:n]
    for start in range(len(base), n, 65536):
        stop = min(n, start + 65536)
        rows = base[np.arange(start, stop) % len(base)]
        sigma = rng.uniform(0.01, 0.03, size=(stop - start, 1)).astype(np.float32)
        rows = rows + rng.standard_normal(rows.shape, dtype=np.float32) * sigma
        out[start:stop] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


def timed(run, queries: np.ndarray) -> list[float]:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        run(q[None, :])
        times.append((time.perf_counter() - t0) * 1000)
    return times


def measure(n: int, base: np.ndarray, queries: np.ndarray, timed_queries: int, hnsw: bool) -> list[dict]:
    matrix = corpus(n, base)
    ids = np.arange(1, n + 1, dtype=np.int64) * 3  # document ids with gaps, as a project's after deletions
    sample = queries[:timed_queries]
    exact_times = timed(lambda q: top_k(q @ matrix.T, 10), sample)
    exact = ann.exact_top(queries, matrix, 10)
    lines = [{"bench": "ann", "size": n, "method": "exact", **percentiles(exact_times),
              "matrix_mb": round(matrix.nbytes / 2**20, 1), "recall_at_10": 1.0}]

    before = rss_mb()
    t0 = time.perf_counter()
    held_out = queries[::2]  # every other real query measures the recall the index shows, as a project's would
    index = ann.build(ids, matrix, queries=held_out[:ann.RECALL_QUERIES])
    build_s = time.perf_counter() - t0
    grown = rss_mb() - before
    found, _ = index.search(queries[1::2], matrix, 10)
    real_recall = ann.recall_at(found, exact[1::2])  # on the other half: queries the index never saw
    probe = ann.measure(index.index, ids, matrix)  # what it would show without the project's queries
    index.index.nprobe = index.quality.probes
    ann_times = timed(lambda q: index.search(q, matrix, 10), sample)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ann.save(Path(tmp), index)
        save_s = time.perf_counter() - t0
        size_mb = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file()) / 2**20
        t0 = time.perf_counter()
        ann.load(Path(tmp))
        load_s = time.perf_counter() - t0

    # an edit: 1,000 documents added (new variants, new ids), 1,000 removed
    change = min(1000, n // 10)
    gone = np.random.default_rng(1).choice(n, size=change, replace=False)
    keep = np.ones(n, dtype=bool)
    keep[gone] = False
    new_rows = corpus(len(base) + change, base, seed=1)[len(base):]
    ids2 = np.concatenate([ids[keep], ids[-1] + 3 * np.arange(1, change + 1)])
    matrix2 = np.concatenate([matrix[keep], new_rows])
    t0 = time.perf_counter()
    hashes2 = ann.row_hashes(matrix2)
    removed, added = ann._diff(index.ids, index.hashes, ids2, hashes2)
    ann.update(index, ids2, matrix2, hashes2, removed, added)
    update_s = time.perf_counter() - t0
    exact2 = ann.exact_top(queries, matrix2, 10)
    recall_after = ann.recall_at(index.search(queries[1::2], matrix2, 10)[0], exact2[1::2])
    q = index.quality
    lines.append({"bench": "ann", "size": n, "method": "ivf-sq8", "lists": q.lists, "nprobe": q.probes,
                  "candidates": ann.CANDIDATES, "build_s": round(build_s, 1), "index_mb": round(size_mb, 1),
                  "rss_growth_mb": round(grown, 1), **percentiles(ann_times),
                  "p50_ratio_vs_exact": round(statistics.median(ann_times) / statistics.median(exact_times), 3),
                  "recall_at_10": round(real_recall, 4), "recall_queries": len(queries[1::2]),
                  "recall_shown": q.recall_at_10, "recall_shown_queries": q.queries,
                  "probe_queries_nprobe": probe.probes, "probe_queries_recall": probe.recall_at_10,
                  "update_removed": int(len(removed)), "update_added": int(len(added)),
                  "update_s": round(update_s, 2), "recall_at_10_after_update": round(recall_after, 4),
                  "save_s": round(save_s, 2), "load_s": round(load_s, 2)})
    del index, matrix2
    if hnsw:
        lines.append(measure_hnsw(n, matrix, queries, exact, sample, exact_times))
    return lines


def measure_hnsw(n: int, matrix: np.ndarray, queries: np.ndarray, exact: np.ndarray, sample: np.ndarray,
                 exact_times: list[float]) -> dict:
    import faiss

    before = rss_mb()
    t0 = time.perf_counter()
    index = faiss.IndexHNSWFlat(matrix.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 40
    index.add(matrix)
    build_s = time.perf_counter() - t0
    grown = rss_mb() - before
    recall, ef = 0.0, 0
    for ef in (16, 32, 64, 128, 256):
        index.hnsw.efSearch = ef
        recall = ann.recall_at(index.search(queries, 10)[1], exact)
        if recall >= ann.RECALL_GOAL:
            break
    times = timed(lambda q: index.search(q, 10), sample)
    return {"bench": "ann", "size": n, "method": "hnsw", "M": 32, "ef_construction": 40, "ef_search": ef,
            "build_s": round(build_s, 1), "rss_growth_mb": round(grown, 1), **percentiles(times),
            "p50_ratio_vs_exact": round(statistics.median(times) / statistics.median(exact_times), 3),
            "recall_at_10": round(recall, 4), "recall_queries": len(queries), "removes_documents": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200000,1000000")
    parser.add_argument("--passages", type=int, default=3000)
    parser.add_argument("--timed", type=int, default=100, help="queries timed one at a time per method")
    parser.add_argument("--hnsw-max", type=int, default=0, help="also build faiss HNSW up to this size (slow)")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    sizes = [20_000] if args.smoke else [int(s) for s in args.sizes.split(",")]
    passages = 200 if args.smoke else args.passages
    base, queries = real_vectors(passages)
    if args.smoke:
        queries = queries[:100]
    import faiss

    print(json.dumps({"bench": "ann", "passages": len(base), "queries": len(queries), "faiss": faiss.__version__,
                      "threads": faiss.omp_get_max_threads(), "cpus": os.cpu_count()}), flush=True)
    for n in sizes:
        for line in measure(n, base, queries, min(args.timed, len(queries)), n <= args.hnsw_max):
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
