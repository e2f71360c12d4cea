"""⑨ Compare's whole response over SQLite at N documents, against the same search on prebuilt indexes.

For each size N (10k and 100k by default; 1M with ``--sizes 1000000``) a project is built: man-page passages (the
DESCRIPTION texts of .cache/bench/manpages-en, built by bench/manpages.py, cut into ~60-word passages) padded to N
with variations (each copy keeps a random 70-100 % of its passage's sentences, in a shuffled order, and carries a
variant tag); without that set, synthetic Zipf text. Documents are written straight into the studio's schema
(triggers keep the corpus version). Dense vectors are NOT encoded (hours at 100k on 2 cores): random
L2-normalised vectors are planted in the vector store (studio.retrieval.vector_store.save, at the corpus version and
inode it checks), so only search is timed; the query itself is encoded by the real ★ default model, as in the page.

Each side runs in a process of its own (spawned), so its peak resident memory is its own:

* ``studio``: ``studio.actions.search.compare(Project(db), Actor("bench", "admin"), query, LEFT, RIGHT)`` — the
  whole call, as the user waits for it — for bm25 vs bm25 and bm25 vs default, warm (the first query, which builds
  or loads the indexes, is reported apart); then ``--add`` documents imported with ``studio import pairs`` (another
  process) and the next compare for an added document's unique word (its time, and whether it ranks first);
  with ``--dense-add`` also the next dense compare (it encodes the added documents) against encoding them alone;
* ``reference``: the same searches on prebuilt in-memory indexes, no SQLite: bm25s (the studio's BM25Index, built
  once) and numpy cosine over the same vectors (the query encoded once per side, as a separate service would);
  skipped above ``--reference-max`` documents.

Prints one JSON line per (size, pair): p50/p95 of each and their ratio, peak memory; and one for the import step.

    python bench/compare_latency.py [--sizes 10000,100000,1000000] [--queries 31] [--add 1000] [--smoke]
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

import numpy as np

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
    """Random L2-normalised vectors for every document, in the ★ default model's vector store at the corpus
    version and inode it checks (:func:`studio.retrieval.vector_store.save`). Returns the float32 matrix (id
    order)."""
    from studio.retrieval import vector_store
    from studio.retrieval.dense import resolve_model
    from studio.store import opened
    from studio.store.corpus import corpus_version, document_ids_and_hashes

    name = resolve_model("default")
    with opened(db_path) as db:
        ids, _, hashes = document_ids_and_hashes(db)
        version = corpus_version(db)
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((len(ids), DIM), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    vector_store.save(vector_store.store_dir(db_path, name), version=version, db_inode=os.stat(db_path).st_ino,
                      ids=np.asarray(ids, dtype=np.int64),
                      hashes=np.asarray([h.encode("ascii") for h in hashes], dtype=np.bytes_),
                      rows=[(0, matrix)])
    return matrix


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (MB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def studio_side(db_path: Path, queries: list[str], pairs: list[tuple[str, str]], add: int, dense_add: bool,
                out: Path) -> None:
    """The studio's side, in a process of its own (its peak memory is the project's, not the bench's): the whole
    ``compare`` call per query, warm, for each pair; then `add` documents imported by ``studio import pairs`` (a
    separate process, as a user would) and the next compare for one added document's unique word; with
    `dense_add`, then the next dense compare (which encodes the added documents into the vector store) against
    encoding those documents alone."""
    import subprocess

    from studio.actions import Actor, Project
    from studio.actions.search import compare
    from studio.retrieval import dense

    real_encode = dense.encode

    def guarded(texts, *args, **kwargs):  # a planted store that was not read would re-encode the corpus: say so
        if len(texts) > 64:
            raise SystemExit(f"the action encoded {len(texts)} documents: the planted vectors were not read")
        return real_encode(texts, *args, **kwargs)

    dense.encode = guarded
    project, actor = Project(db_path), Actor("bench", "admin")
    real_encode(["warm up"], dense.resolve_model("default"))
    result: dict = {"pairs": {}}
    for left, right in pairs:
        t0 = time.perf_counter()
        compare(project, actor, queries[0], left, right)
        first_ms = (time.perf_counter() - t0) * 1000
        studio, shown = [], []
        for query in queries[1:]:
            t0 = time.perf_counter()
            answer = compare(project, actor, query, left, right)
            studio.append((time.perf_counter() - t0) * 1000)
            shown.append(answer.ms)
        result["pairs"][f"{left}|{right}"] = {"first_query_ms": round(first_ms), "studio_ms": percentiles(studio),
                                              "shown_ms": percentiles(shown)}
    result["peak_rss_mb"] = peak_rss_mb()
    if add:
        csv_path = db_path.with_suffix(".added.csv")
        with open(csv_path, "w", encoding="utf-8") as f:
            f.write("query,document,doc_id\n")
            for i in range(add):
                f.write(f"added query {i},an added passage about quaggaword{i} and its manual page,added{i}\n")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "studio", "--db", str(db_path), "import", "pairs", str(csv_path)],
                       check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        import_s = time.perf_counter() - t0
        word = f"quaggaword{add // 2}"
        t0 = time.perf_counter()
        answer = compare(project, actor, word, "bm25", "bm25")
        after_ms = (time.perf_counter() - t0) * 1000
        later = []
        for query in queries[1:6]:
            t0 = time.perf_counter()
            compare(project, actor, query, "bm25", "bm25")
            later.append((time.perf_counter() - t0) * 1000)
        result["added"] = {"documents": add, "import_s": round(import_s, 1), "next_compare_ms": round(after_ms),
                           "top1": answer.left.hits[0].doc_key if answer.left.hits else None,
                           "expected_top1": f"added{add // 2}", "then_ms": percentiles(later)}
        result["peak_rss_mb_after_add"] = peak_rss_mb()
        if dense_add:  # the corpus was encoded (planted); the added documents are encoded by the next dense compare
            dense.encode = real_encode
            t0 = time.perf_counter()
            compare(project, actor, word, "bm25", "default")
            next_dense_s = time.perf_counter() - t0
            from studio.store import opened
            from studio.store.corpus import iter_documents
            from studio.records import document_text

            with opened(db_path) as db:
                added = [document_text(r["title"], r["text"]) for r in iter_documents(db) if r["key"].startswith("added")]
            t0 = time.perf_counter()
            real_encode(added, dense.resolve_model("default"))
            alone_s = time.perf_counter() - t0
            result["added"].update({"next_dense_compare_s": round(next_dense_s, 1), "encode_added_alone_s":
                                    round(alone_s, 1), "ratio_dense": round(next_dense_s / alone_s, 2)})
    dense.encode = real_encode
    out.write_text(json.dumps(result), encoding="utf-8")


def reference_side(db_path: Path, queries: list[str], pairs: list[tuple[str, str]], matrix, out: Path) -> None:
    """The reference: the same searches on prebuilt in-memory indexes, no SQLite — bm25s (the studio's
    BM25Index, built once) and numpy cosine over the same vectors, the query encoded once per side."""
    from studio.records import document_text
    from studio.retrieval import dense
    from studio.retrieval.bm25 import BM25Index
    from studio.store import opened
    from studio.store.corpus import iter_documents

    matrix = np.load(matrix)
    with opened(db_path) as db:
        texts = [document_text(r["title"], r["text"]) for r in iter_documents(db)]
    t0 = time.perf_counter()
    bm25 = BM25Index(texts)
    build_s = time.perf_counter() - t0
    del texts
    model = dense.resolve_model("default")
    dense.encode(["warm up"], model)
    result: dict = {"bm25_build_s": round(build_s, 1), "pairs": {}}
    for left, right in pairs:
        times = []
        for query in queries[1:]:
            t0 = time.perf_counter()
            for side in (left, right):
                if side == "bm25":
                    bm25.search(query, 10)
                else:
                    dense.top_k(dense.encode([query], model) @ matrix.T, 10)
            times.append((time.perf_counter() - t0) * 1000)
        result["pairs"][f"{left}|{right}"] = {"reference_ms": percentiles(times)}
    result["peak_rss_mb"] = peak_rss_mb()
    out.write_text(json.dumps(result), encoding="utf-8")


def _in_child(target, *args) -> dict:
    """Run `target(*args, out)` in a fresh process (spawned: nothing of this one's memory), return its JSON."""
    import multiprocessing

    out = Path(tempfile.mkstemp(suffix=".json")[1])
    child = multiprocessing.get_context("spawn").Process(target=target, args=(*args, out))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"{target.__name__} failed (exit {child.exitcode})")
    return json.loads(out.read_text(encoding="utf-8"))


def measure(n: int, queries: list[str], passages, tmp: Path, *, add: int, reference_max: int,
            dense_add: bool = False) -> list[dict]:
    db_path = tmp / f"bench-{n}.db"
    t0 = time.perf_counter()
    build(db_path, n, passages)
    build_s = time.perf_counter() - t0
    matrix = plant_vectors(db_path)
    np_save = tmp / f"matrix-{n}.npy"
    np.save(np_save, matrix)
    del matrix
    pairs = list(PAIRS)
    reference = _in_child(reference_side, db_path, queries, pairs, str(np_save)) if n <= reference_max else None
    studio = _in_child(studio_side, db_path, queries, pairs, add, dense_add)
    out = []
    for left, right in pairs:
        key = f"{left}|{right}"
        line = {"bench": "compare_latency", "docs": n, "left": left, "right": right, "queries": len(queries) - 1,
                "build_db_s": round(build_s, 1), **studio["pairs"][key], "studio_peak_rss_mb": studio["peak_rss_mb"]}
        if reference is not None:
            r, s = reference["pairs"][key]["reference_ms"], studio["pairs"][key]["studio_ms"]
            line.update({"reference_ms": r, "ratio_p50": round(s["p50"] / r["p50"], 2),
                         "ratio_p95": round(s["p95"] / r["p95"], 2), "reference_bm25_build_s":
                         reference["bm25_build_s"], "reference_peak_rss_mb": reference["peak_rss_mb"]})
        out.append(line)
        print(json.dumps(out[-1]), flush=True)
    if "added" in studio:
        line = {"bench": "compare_latency", "docs": n, "step": "import_then_compare", **studio["added"],
                "peak_rss_mb_after_add": studio["peak_rss_mb_after_add"]}
        out.append(line)
        print(json.dumps(line), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated corpus sizes")
    parser.add_argument("--queries", type=int, default=31, help="queries per pair (the first one is not counted)")
    parser.add_argument("--add", type=int, default=1000, help="documents imported after the timed queries (0: none)")
    parser.add_argument("--reference-max", type=int, default=1_000_000,
                        help="largest size at which the in-memory bm25s reference is built")
    parser.add_argument("--dense-add", action="store_true",
                        help="after the import, time the next dense compare against encoding the added documents alone")
    parser.add_argument("--smoke", action="store_true", help="10k documents, 6 queries (< 60 s)")
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
            measure(n, chosen, passages, Path(tmp), add=args.add if not args.smoke else 100,
                    reference_max=args.reference_max, dense_add=args.dense_add)


if __name__ == "__main__":
    main()
