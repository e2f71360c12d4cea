"""⑨ Compare's whole response over SQLite at N documents, against the same search on prebuilt indexes.

For each size N (10k and 100k by default) a project is built: man-page passages (the DESCRIPTION texts of
.cache/bench/manpages-en, built by bench/manpages.py, cut into ~60-word passages) padded to N with variations (each
copy keeps a random 70-100 % of its passage's sentences, in a shuffled order, and carries a variant tag); without
that set, synthetic Zipf text. Documents are written straight into the studio's schema (triggers keep the corpus
version). Dense vectors are NOT encoded (hours at 100k on 2 cores): random L2-normalised vectors are planted where
the action reads them — the vector store (studio.retrieval.vector_store.save, at the corpus version and inode it
checks) when this tree has one, and the older embedding cache file (studio.retrieval.cache.cache_path, keyed by the
corpus texts) for a tree without it — so only search is timed; the query itself is encoded by the real ★ default
model, as in the page.

Measured, warm (the first query, which builds or loads the indexes, is reported apart):

* ``studio``: ``studio.actions.search.compare(Project(db), Actor("bench", "admin"), query, LEFT, RIGHT)`` — the
  whole call, as the user waits for it — for bm25 vs bm25 and bm25 vs default;
* ``reference``: the same searches on prebuilt in-memory indexes, no SQLite: bm25s (the studio's BM25Index, built
  once) and numpy cosine over the same vectors (the query encoded once per side, as a separate service would).

Prints one JSON line per (size, pair): p50/p95 of each and their ratio.

    python bench/compare_latency.py [--sizes 10000,100000,1000000] [--queries 31] [--smoke]

``shown_ms`` is what ⑨ displays (:attr:`studio.actions.search.Comparison.ms`; in a tree without it, the sum of the
two sides' own times, what the page showed then). MANPAGES_SET=FOLDER reads another BEIR man-page set.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
MANPAGES = Path(os.environ.get("MANPAGES_SET", ROOT / ".cache" / "bench" / "manpages-en"))
PAIRS = (("bm25", "bm25"), ("bm25", "default"))
DIM = 384  # the ★ default model's (all-MiniLM-L6-v2)


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    return {"p50": round(statistics.median(ordered), 1), "p95": round(rank(0.95), 1)}


def passages_and_queries(seed: int = 0) -> tuple[list[tuple[str, str]], list[str]]:
    """(title, text) passages and queries: the man-page set cut into ~60-word passages, else synthetic text."""
    rng = random.Random(seed)
    if (MANPAGES / "corpus.jsonl").is_file():
        passages = []
        for line in (MANPAGES / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
            doc = json.loads(line)
            words = doc["text"].split()
            for start in range(0, len(words), 60):
                passages.append((doc.get("title") or "", " ".join(words[start:start + 80])))
        queries = [json.loads(line)["text"] for line in
                   (MANPAGES / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
        return passages, queries
    vocab = [f"w{i}" for i in range(30_000)]
    weights = [1 / (i + 1) for i in range(len(vocab))]
    passages = [("", " ".join(rng.choices(vocab, weights, k=rng.randint(40, 90)))) for _ in range(5000)]
    return passages, [" ".join(rng.choices(vocab[:3000], k=4)) for _ in range(300)]


def corpus(n: int, passages: list[tuple[str, str]], seed: int = 0):
    """`n` documents (key, title, text): the passages first, then variations of them."""
    rng = random.Random(seed)
    for i in range(n):
        title, text = passages[i % len(passages)]
        if i >= len(passages):
            sentences = [s for s in re.split(r"(?<=[.;:])\s+", text) if s]
            keep = max(1, round(len(sentences) * rng.uniform(0.7, 1.0)))
            chosen = rng.sample(sentences, keep)
            text = " ".join(chosen) + f" variant{i // len(passages)}"
        yield f"d{i + 1}", title, text


def build(db_path: Path, n: int, passages) -> None:
    """The project: `n` documents written into the studio's schema (its triggers keep the corpus version)."""
    from studio.store import connect
    from studio.store.imports import text_hash

    db = connect(db_path)
    with db.conn:
        db.conn.executemany(
            "INSERT INTO documents (id, key, title, text, text_hash, source) VALUES (?, ?, ?, ?, ?, 'bench')",
            ((i + 1, key, title, text, text_hash(text)) for i, (key, title, text) in enumerate(corpus(n, passages))))
    db.close()


def plant_vectors(db_path: Path, seed: int = 0):
    """Random L2-normalised vectors for every document, where this tree's action reads the ★ default model's:
    the vector store (when there is one) and the older text-keyed cache. Returns the float32 matrix (id order)."""
    import numpy as np

    from studio.records import document_text
    from studio.retrieval import cache
    from studio.retrieval.dense import resolve_model
    from studio.store import opened
    from studio.store.corpus import corpus_version, document_ids_and_hashes, iter_documents

    name = resolve_model("default")
    with opened(db_path) as db:
        ids, _, hashes = document_ids_and_hashes(db)
        version = corpus_version(db)
        texts = [document_text(r["title"], r["text"]) for r in iter_documents(db)]
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((len(ids), DIM), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    path = cache.cache_path(name, texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, matrix)
    try:
        from studio.retrieval import vector_store
    except ImportError:
        return matrix
    vector_store.save(vector_store.store_dir(db_path, name), version=version, db_inode=os.stat(db_path).st_ino,
                      ids=np.asarray(ids, dtype=np.int64),
                      hashes=np.asarray([h.encode("ascii") for h in hashes], dtype=np.bytes_),
                      rows=[(0, matrix)])
    return matrix


def measure(n: int, queries: list[str], passages, tmp: Path) -> list[dict]:
    import numpy as np

    from studio.actions import Actor, Project
    from studio.actions.search import compare
    from studio.records import document_text
    from studio.retrieval import dense
    from studio.retrieval.bm25 import BM25Index
    from studio.store import opened
    from studio.store.corpus import iter_documents

    db_path = tmp / f"bench-{n}.db"
    t0 = time.perf_counter()
    build(db_path, n, passages)
    build_s = time.perf_counter() - t0
    matrix = plant_vectors(db_path)
    real_encode = dense.encode

    def guarded(texts, *args, **kwargs):  # a planted store that was not read would re-encode the corpus: say so
        if len(texts) > 64:
            raise SystemExit(f"the action encoded {len(texts)} documents: the planted vectors were not read")
        return real_encode(texts, *args, **kwargs)

    dense.encode = guarded
    project, actor = Project(db_path), Actor("bench", "admin")
    with opened(db_path) as db:
        texts = [document_text(r["title"], r["text"]) for r in iter_documents(db)]
    reference_bm25 = BM25Index(texts)
    del texts
    model = dense.resolve_model("default")
    real_encode(["warm up"], model)
    out = []
    for left, right in PAIRS:
        t0 = time.perf_counter()
        compare(project, actor, queries[0], left, right)
        first_ms = (time.perf_counter() - t0) * 1000
        studio, shown, reference = [], [], []
        for query in queries[1:]:
            t0 = time.perf_counter()
            result = compare(project, actor, query, left, right)
            studio.append((time.perf_counter() - t0) * 1000)
            shown.append(getattr(result, "ms", result.left.ms + result.right.ms))  # older trees: the sides' sum
            t0 = time.perf_counter()
            for side in (left, right):
                if side == "bm25":
                    reference_bm25.search(query, 10)
                else:
                    scores = real_encode([query], model) @ matrix.T
                    dense.top_k(scores, 10)
            reference.append((time.perf_counter() - t0) * 1000)
        s, r = percentiles(studio), percentiles(reference)
        out.append({"bench": "compare_latency", "docs": n, "left": left, "right": right, "queries": len(studio),
                    "build_db_s": round(build_s, 1), "first_query_ms": round(first_ms),
                    "studio_ms": s, "shown_ms": percentiles(shown), "reference_ms": r,
                    "ratio_p50": round(s["p50"] / r["p50"], 2), "ratio_p95": round(s["p95"] / r["p95"], 2)})
        print(json.dumps(out[-1]), flush=True)
    dense.encode = real_encode
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated corpus sizes")
    parser.add_argument("--queries", type=int, default=31, help="queries per pair (the first one is not counted)")
    parser.add_argument("--smoke", action="store_true", help="10k documents, 6 queries (< 30 s)")
    args = parser.parse_args()
    sizes = [10_000] if args.smoke else [int(s) for s in args.sizes.split(",")]
    count = 6 if args.smoke else args.queries
    with tempfile.TemporaryDirectory(prefix="compare-latency-") as tmp:
        os.environ["STUDIO_CACHE"] = tmp  # before the studio is imported: its caches live in the temporary folder
        sys.path.insert(0, str(ROOT))
        passages, queries = passages_and_queries()
        rng = random.Random(1)
        chosen = rng.sample(queries, min(count, len(queries)))
        for n in sizes:
            measure(n, chosen, passages, Path(tmp))


if __name__ == "__main__":
    main()
