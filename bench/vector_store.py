"""Dense vectors stored per document (studio/retrieval/vector_store.py): is float16 storage safe, and what does adding
documents to an encoded corpus cost?

Two measurements, one JSON line each (and a last line with versions):

* ``dtype``: a man-page BEIR set (bench/manpages.py; default the English "honest" set, 1,032 passages) encoded by
  the ★ default model; test queries ranked over float32 rows and over the same rows stored as float16 (upcast for
  search, as the store serves them). Reports the largest score change, the share of queries whose top-10 list is
  identical, the mean top-10 overlap, nDCG@10 of both and the time of one float16 vs float32 matrix-vector product.
* ``incremental``: a project database with N man-page passages (padded with numbered copies past the set's size)
  encoded into the store; then 1,000 documents are added and the next ``project_vectors`` + one search timed,
  against encoding the 1,000 alone and against re-encoding all N + 1,000 (what the studio did before the store).

    python bench/vector_store.py --smoke              # 200 + 50 documents, under a minute on 2 cores
    python bench/vector_store.py --docs 2000 --add 1000
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from studio.evaluation import runner  # noqa: E402
from studio.retrieval import cache, dense, vector_store  # noqa: E402
from studio.store import opened  # noqa: E402

SETS = [ROOT / ".cache/bench" / name for name in ("honest-manpages-en-all", "honest-manpages-zh-all", "manpages-en")]


def read_set(folder: Path) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    """(corpus, test queries, test qrels) of a BEIR folder, read as the studio reads one."""
    test = runner.from_beir(folder, "test")
    return test.corpus, test.queries, test.qrels


def ndcg_at_10(ranked: list[str], rels: dict[str, int]) -> float:
    dcg = sum((2 ** rels.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(rels.values(), reverse=True)[:10]
    idcg = sum((2 ** r - 1) / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def bench_dtype(folder: Path, limit: int | None) -> dict:
    corpus, queries, qrels = read_set(folder)
    qids = [q for q in qrels if q in queries]
    doc_ids = list(corpus)
    if limit:
        wanted = {d for q in qids[:limit] for d in qrels[q]}
        doc_ids = [d for d in doc_ids if d in wanted] + [d for d in doc_ids if d not in wanted][:limit]
        qids = [q for q in qids[:limit] if any(d in set(doc_ids) for d in qrels[q])]
    docs32 = dense.encode([corpus[d] for d in doc_ids])
    docs16 = docs32.astype(np.float16).astype(np.float32)
    q = dense.encode([queries[i] for i in qids])
    s32, s16 = q @ docs32.T, q @ docs16.T
    top32, top16 = dense.top_k(s32, 10), dense.top_k(s16, 10)
    same = float(np.mean([np.array_equal(a, b) for a, b in zip(top32, top16)]))
    overlap = float(np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(top32, top16)]))
    n32 = np.mean([ndcg_at_10([doc_ids[i] for i in row], qrels[qid]) for row, qid in zip(top32, qids)])
    n16 = np.mean([ndcg_at_10([doc_ids[i] for i in row], qrels[qid]) for row, qid in zip(top16, qids)])
    big = np.random.default_rng(0).standard_normal((100_000, docs32.shape[1])).astype(np.float32)
    timings = {}
    for name, matrix in (("float32", big), ("float16", big.astype(np.float16))):
        vec = q[0].astype(matrix.dtype)
        start = time.perf_counter()
        for _ in range(3):
            matrix @ vec
        timings[name] = round((time.perf_counter() - start) / 3 * 1000, 1)
    return {"bench": "dtype", "set": folder.name, "docs": len(doc_ids), "queries": len(qids),
            "max_score_change": float(np.abs(s32 - s16).max()), "identical_top10": round(same, 4),
            "mean_top10_overlap": round(overlap, 4), "ndcg10_float32": round(float(n32), 4),
            "ndcg10_float16": round(float(n16), 4), "ndcg10_delta": round(float(n16 - n32), 5),
            "matvec_100k_ms": timings, "disk_bytes_per_doc": {"float32": 4 * docs32.shape[1],
                                                               "float16": 2 * docs32.shape[1]}}


def passages(n: int) -> list[str]:
    """`n` distinct man-page passages: every set's corpus, then numbered copies."""
    seen: dict[str, None] = {}
    for folder in SETS:
        if (folder / "corpus.jsonl").exists():
            seen.update(dict.fromkeys(read_set(folder)[0].values()))
    base = list(seen)
    if not base:
        raise SystemExit("no man-page set under .cache/bench: run bench/manpages.py first")
    return [base[i % len(base)] + ("" if i < len(base) else f" (copy {i // len(base)})") for i in range(n)]


def insert(db, texts: list[str], start: int) -> None:
    db["documents"].insert_all([{"key": f"b{start + i}", "text": text, "source": "bench",
                                 "text_hash": hashlib.sha1(text.encode()).hexdigest()}
                                for i, text in enumerate(texts)])


def bench_incremental(n: int, add: int, work: Path) -> dict:
    texts = passages(n + add)
    db_path = work / "bench.db"
    with opened(db_path) as db:
        insert(db, texts[:n], 0)
    calls = []
    real = dense.encode
    dense.encode = lambda t, *a, **k: (calls.append(len(t)), real(t, *a, **k))[1]
    try:
        start = time.perf_counter()
        vector_store.project_vectors(db_path, None)
        first = time.perf_counter() - start
        first_encoded = sum(calls)
        calls.clear()
        with opened(db_path) as db:
            insert(db, texts[n:], n)
        start = time.perf_counter()
        ids, matrix = vector_store.project_vectors(db_path, None)
        query = real(["how do I list the files of a directory"])
        dense.top_k(query @ matrix.T, 10)
        after_add = time.perf_counter() - start
        added_encoded = sum(calls)
        start = time.perf_counter()
        vector_store.project_vectors(db_path, None)
        warm = time.perf_counter() - start
        vector_store.forget()
        start = time.perf_counter()
        vector_store.project_vectors(db_path, None)
        reload = time.perf_counter() - start
    finally:
        dense.encode = real
    start = time.perf_counter()
    real(texts[n:])
    alone = time.perf_counter() - start
    start = time.perf_counter()
    real(texts)
    everything = time.perf_counter() - start
    return {"bench": "incremental", "docs": n, "added": add, "first_build_s": round(first, 2),
            "first_build_encoded": first_encoded, "add_then_search_s": round(after_add, 2),
            "add_encoded": added_encoded, "encode_added_alone_s": round(alone, 2),
            "reencode_all_s": round(everything, 2), "add_vs_alone": round(after_add / alone, 2),
            "reencode_all_vs_add": round(everything / after_add, 2), "same_version_call_ms": round(warm * 1000, 3),
            "new_process_load_s": round(reload, 3), "rows": len(ids)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="200 documents + 50, 40 queries")
    parser.add_argument("--set", type=Path, default=SETS[0], help="BEIR folder for the dtype measurement")
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--add", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.smoke:
        args.docs, args.add = 200, 50
    with tempfile.TemporaryDirectory() as tmp:
        cache.CACHE_DIR = Path(tmp) / "cache" / "embeddings"
        print(json.dumps(bench_dtype(args.set, 40 if args.smoke else None)), flush=True)
        print(json.dumps(bench_incremental(args.docs, args.add, Path(tmp))), flush=True)
    import torch

    print(json.dumps({"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                      "date": datetime.date.today().isoformat()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
