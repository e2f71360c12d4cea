"""A saved BM25 index for the project's corpus: bm25s's saved, memory-mapped arrays, the studio's segments of raw
postings (what the project's index now is) and SQLite FTS5 over the studio's pre-tokenised text, at 10k and 100k
documents (CPU). Prints JSON lines, one per (backend, documents).

Each backend is built, loaded and queried in its own fresh process, so the peak resident memory it reports is its
own (``ru_maxrss``, minus the process's size once the synthetic corpus is generated):

* ``bm25s``: :class:`studio.retrieval.bm25.BM25Index` built, saved (:meth:`~BM25Index.save`), loaded with
  ``mmap=True`` in a second process and queried; ``same_as_studio`` checks the loaded index's top 10 (documents
  and scores) against the in-memory one's for every query.
* ``segments``: :class:`studio.retrieval.bm25_segments.Segment` built streaming and saved, loaded memory-mapped in
  a second process and queried; ``same_as_studio`` against bm25s in memory (scores to float32 rounding); then 1,000
  documents added as a second segment (``add_1000_s``) against rebuilding bm25s over all (``bm25s_rebuild_s``), and
  ``same_after_add`` checks the grown index against the rebuilt one.
* ``fts5``: the same tokens (:func:`studio.retrieval.tokenize.tokenize`) joined by spaces into an FTS5 table
  (``unicode61``, ``_`` a token character so a token stays one), queried with its ``bm25()`` ranking (k1 1.2,
  b 0.75, idf without bm25s' ``1 +``); ``overlap_at_10`` is the mean share of the studio's top 10 it finds.

Corpus: seeded synthetic documents, 20–120 words drawn from a Zipf-like vocabulary of 30k words, plus a Chinese
bigram run in one document of ten; queries: 2–5 words drawn the same way.

    python bench/bm25_store.py [--docs 10000 100000] [--queries 50] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from studio.retrieval.bm25 import BM25Index  # noqa: E402
from studio.retrieval.bm25_segments import Segment, SegmentedBM25  # noqa: E402
from studio.retrieval.tokenize import tokenize  # noqa: E402

VOCAB = 30_000
CJK = "糖尿病高血压症状治疗药物肾脏眼睛视网膜中风维生素胆固醇哮喘发烧儿童疫苗流感抗生素怀孕疼痛偏头痛睡眠甲状腺剂量"


def _words(rng: np.random.Generator, n: int) -> list[str]:
    ranks = np.minimum(rng.zipf(1.15, n), VOCAB)
    return [f"w{r}x" for r in ranks]


def synthetic_corpus(n: int, seed: int = 0) -> list[str]:
    """`n` seeded synthetic documents (see the module docstring)."""
    rng = np.random.default_rng(seed)
    texts = []
    for i in range(n):
        text = " ".join(_words(rng, int(rng.integers(20, 121))))
        if i % 10 == 0:
            start = int(rng.integers(0, len(CJK) - 6))
            text += " " + CJK[start:start + int(rng.integers(2, 7))]
        texts.append(text)
    return texts


def synthetic_queries(n: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(_words(rng, int(rng.integers(2, 6)))) for _ in range(n)]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return round(sum(p.stat().st_size for p in files) / 2**20, 1)


def _latency(search, queries: list[str]) -> dict:
    search(queries[0])  # warm
    times = []
    for q in queries:
        t0 = time.perf_counter()
        search(q)
        times.append(1000 * (time.perf_counter() - t0))
    times.sort()
    return {"query_p50_ms": round(statistics.median(times), 2),
            "query_p95_ms": round(times[max(0, int(0.95 * len(times)) - 1)], 2)}


# ------------------------------------------------------------------------------------------------------ workers

def build_bm25s(docs: int, folder: Path) -> dict:
    import bm25s  # noqa: F401  (its import, ~75 MB with scipy, is not the index's)

    texts = synthetic_corpus(docs)
    base = _rss_mb()
    t0 = time.perf_counter()
    index = BM25Index(texts)
    index.save(folder)
    build_s = time.perf_counter() - t0
    return {"build_s": round(build_s, 2), "build_peak_mb": round(_peak_mb() - base, 1), "disk_mb": _size_mb(folder)}


def query_bm25s(docs: int, folder: Path, queries: list[str]) -> dict:
    import bm25s  # noqa: F401

    base = _rss_mb()
    t0 = time.perf_counter()
    index = BM25Index.load(folder, docs, mmap=True)
    load_s = time.perf_counter() - t0
    loaded_mb = _rss_mb() - base
    out = {"load_s": round(load_s, 3), "loaded_rss_mb": round(loaded_mb, 1),
           **_latency(lambda q: index.search(q, 10), queries)}
    out["rss_after_queries_mb"] = round(_rss_mb() - base, 1)
    reference = BM25Index(synthetic_corpus(docs)).search_many(queries, 10)
    out["same_as_studio"] = index.search_many(queries, 10) == reference
    return out


def build_segments(docs: int, folder: Path) -> dict:
    """The studio's segmented index (studio.retrieval.bm25_segments): one segment over the corpus, saved."""
    texts = synthetic_corpus(docs)
    base = _rss_mb()
    t0 = time.perf_counter()
    segment = Segment.build((i, f"h{i}", t) for i, t in enumerate(texts))
    del texts
    segment.save(folder / "s0")
    build_s = time.perf_counter() - t0
    return {"build_s": round(build_s, 2), "build_peak_mb": round(_peak_mb() - base, 1), "disk_mb": _size_mb(folder)}


def query_segments(docs: int, folder: Path, queries: list[str]) -> dict:
    """Load memory-mapped, query; then 1,000 more documents as a second segment (what an import costs), queried
    over both with the whole corpus's statistics, against bm25s rebuilt over all of them."""
    texts = synthetic_corpus(docs)
    ids = np.arange(docs, dtype=np.int64)
    hashes = np.asarray([f"h{i}" for i in range(docs)], dtype="S")
    base = _rss_mb()
    t0 = time.perf_counter()
    index = SegmentedBM25([Segment.load(folder / "s0")], ids, hashes)
    load_s = time.perf_counter() - t0
    out = {"load_s": round(load_s, 3), "loaded_rss_mb": round(_rss_mb() - base, 1),
           **_latency(lambda q: index.search(q, 10), queries)}
    out["rss_after_queries_mb"] = round(_rss_mb() - base, 1)
    reference = BM25Index(texts)
    out["same_as_studio"] = _same(index.search_many(queries, 10), reference.search_many(queries, 10))
    added = synthetic_corpus(1000, seed=7)
    t0 = time.perf_counter()
    extra = Segment.build((docs + i, f"h{docs + i}", t) for i, t in enumerate(added))
    all_ids = np.arange(docs + 1000, dtype=np.int64)
    grown = SegmentedBM25([index.parts[0].segment, extra], all_ids,
                          np.asarray([f"h{i}" for i in range(docs + 1000)], dtype="S"))
    out["add_1000_s"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    rebuilt = BM25Index(texts + added)
    out["bm25s_rebuild_s"] = round(time.perf_counter() - t0, 2)
    out["same_after_add"] = _same(grown.search_many(queries, 10), rebuilt.search_many(queries, 10))
    return out


def _same(got: list, want: list) -> bool:
    """The same top 10 (documents, scores to float32 rounding; ties compared as sets)."""
    for row, ref in zip(got, want):
        if len(row) != len(ref) or not np.allclose([s for _, s in row], [s for _, s in ref], rtol=1e-5):
            return False
        cut = ref[-1][1] if ref else 0
        if {d for d, s in row if s > cut + 1e-5} != {d for d, s in ref if s > cut + 1e-5}:
            return False
    return True


def build_fts5(docs: int, path: Path) -> dict:
    texts = synthetic_corpus(docs)
    base = _rss_mb()
    t0 = time.perf_counter()
    con = sqlite3.connect(path)
    con.execute("CREATE VIRTUAL TABLE bm25 USING fts5(body, tokenize = \"unicode61 remove_diacritics 0 "
                "tokenchars '_'\")")
    con.executemany("INSERT INTO bm25 (rowid, body) VALUES (?, ?)",
                    ((i, " ".join(tokenize(t))) for i, t in enumerate(texts)))
    con.commit()
    con.execute("INSERT INTO bm25 (bm25) VALUES ('optimize')")
    con.commit()
    con.close()
    build_s = time.perf_counter() - t0
    return {"build_s": round(build_s, 2), "build_peak_mb": round(_peak_mb() - base, 1), "disk_mb": _size_mb(path)}


def query_fts5(docs: int, path: Path, queries: list[str]) -> dict:
    base = _rss_mb()
    t0 = time.perf_counter()
    con = sqlite3.connect(path)
    con.execute("SELECT count(*) FROM bm25 WHERE bm25 MATCH 'w1x'").fetchone()
    load_s = time.perf_counter() - t0

    def search(query: str) -> list[int]:
        terms = sorted(set(tokenize(query)))
        if not terms:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        return [r[0] for r in con.execute("SELECT rowid FROM bm25 WHERE bm25 MATCH ? ORDER BY bm25(bm25) LIMIT 10",
                                          [match])]

    out = {"load_s": round(load_s, 3), "loaded_rss_mb": round(_rss_mb() - base, 1), **_latency(search, queries)}
    out["rss_after_queries_mb"] = round(_rss_mb() - base, 1)
    reference = BM25Index(synthetic_corpus(docs)).search_many(queries, 10)
    overlaps = [len({d for d, _ in ref} & set(search(q))) / max(len(ref), 1) for q, ref in zip(queries, reference)]
    out["overlap_at_10"] = round(float(np.mean(overlaps)), 3)
    out["same_as_studio"] = all(o == 1.0 for o in overlaps)
    return out


def worker(argv: list[str]) -> None:
    phase, backend, docs, path, n_queries = argv[0], argv[1], int(argv[2]), Path(argv[3]), int(argv[4])
    queries = synthetic_queries(n_queries)
    if backend == "bm25s":
        out = build_bm25s(docs, path) if phase == "build" else query_bm25s(docs, path, queries)
    elif backend == "segments":
        out = build_segments(docs, path) if phase == "build" else query_segments(docs, path, queries)
    else:
        out = build_fts5(docs, path) if phase == "build" else query_fts5(docs, path, queries)
    print(json.dumps(out))


def _run(phase: str, backend: str, docs: int, path: Path, queries: int) -> dict:
    result = subprocess.run([sys.executable, __file__, "--worker", phase, backend, str(docs), str(path), str(queries)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--worker"]:
        worker(args[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--backends", nargs="+", default=["bm25s", "segments", "fts5"],
                        choices=["bm25s", "segments", "fts5"])
    parser.add_argument("--smoke", action="store_true", help="1,000 documents and 10 queries: checks it runs")
    opts = parser.parse_args(args)
    if opts.smoke:
        opts.docs, opts.queries = [1000], 10
    work = Path(tempfile.mkdtemp(prefix="bm25-store-"))
    try:
        for docs in opts.docs:
            for backend in opts.backends:
                path = work / (f"{backend}-{docs}" + (".db" if backend == "fts5" else ""))
                row = {"bench": "bm25_store", "backend": backend, "docs": docs, "queries": opts.queries,
                       "cpus": os.cpu_count()}
                row.update(_run("build", backend, docs, path, opts.queries))
                row.update(_run("query", backend, docs, path, opts.queries))
                print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
