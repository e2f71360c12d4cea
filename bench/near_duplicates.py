"""The quality report's near-duplicate check: banded SimHash vs the exact prefix filter vs the quadratic scan (CPU).

Documents are real man-page text (bench/manpages.py, English and Chinese DESCRIPTION paragraphs): each is one
paragraph plus a random half of another, so documents that share a paragraph are alike (cosine about 0.3–0.8)
without being near-duplicates; then ``--near`` of them are copies of an earlier one with one word dropped or
replaced (planted near-duplicates) and ``--exact`` exact copies. All checks get the same TF-IDF matrix (the
report's :func:`studio.dataset.quality._tfidf`, timed apart):

* ``lsh``: :func:`studio.dataset.quality.near_duplicate_rows` forced onto its SimHash path at every size (the
  report uses it above ``_EXACT_BELOW`` distinct documents, the exact prefix filter below);
* ``prefix``: :func:`studio.dataset.quality.similar_pairs`, the exact all-pairs prefix filter (up to
  ``--prefix-max`` documents);
* ``reference``: the quadratic ``X · Xᵀ`` scan the prefix filter replaced, kept below (up to ``--reference-max``).

One JSON line per size: seconds of each (untraced), peak traced memory (a second, traced run: lsh always, the
prefix filter up to ``--memory-max``), ``ratio`` = prefix seconds / lsh seconds, the
flagged documents (what the report counts: a cosine >= 0.95 neighbour or the same normalised text) and the lsh
check's recall and precision against the exact flagged set, overall and on the planted near-duplicates; above
``--prefix-max``, against the exact answer for 2,000 random documents (their row of ``X · Xᵀ``).

Note on the corpus: the pool holds about 10,400 paragraphs, so at N documents each paragraph heads about
N / 10,400 of them and documents sharing a long paragraph plus a short half are real near-duplicates: the true
number of similar pairs grows about quadratically with N here (999 at 10k, 60,449 at 100k, 238,175 at 200k), and
with it the close pairs every check must verify: more than in a corpus of distinct passages.

    python bench/near_duplicates.py [--docs 10000 50000 100000 200000]
    python bench/near_duplicates.py --docs 1000000 --prefix-max 0 --reference-max 0   # lsh only, about 7 min
    python bench/near_duplicates.py --smoke        # 2,000 and 5,000 documents, under 20 s
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import random
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from studio.dataset.quality import THRESHOLDS, _normalise, _tfidf, near_duplicate_rows, similar_pairs  # noqa: E402

CACHE = ROOT / ".cache" / "bench"
MIN_PARAGRAPH = 40  # characters


def reference(doc_texts: list[str], vectors, block_cells: int = 4_000_000) -> tuple[int, set[tuple[int, int]]]:
    """The check before the prefix filter: row blocks of ``X · Xᵀ``, quadratic in the documents.

    Returns the flagged count (as the report counted it) and the similar pairs ``(i, j)``, ``i < j``.
    """
    n = len(doc_texts)
    same_text = Counter(_normalise(t) for t in doc_texts)
    flagged = np.array([same_text[_normalise(t)] > 1 for t in doc_texts], dtype=bool)
    transposed = vectors.T.tocsc()
    chunk = max(1, block_cells // max(n, 1))
    pairs: set[tuple[int, int]] = set()
    for start in range(0, n, chunk):
        block = (vectors[start:start + chunk] @ transposed).tocoo()
        hit = (block.data >= THRESHOLDS["near_duplicate_cosine"]) & (block.row + start != block.col)
        flagged[block.row[hit] + start] = True
        rows, cols = block.row[hit] + start, block.col[hit]
        pairs.update(zip(rows[rows < cols].tolist(), cols[rows < cols].tolist()))
    return int(flagged.sum()), pairs


def same_text(doc_texts: list[str]) -> np.ndarray:
    """Documents whose normalised text another document has (flagged by every check alike)."""
    counts = Counter(_normalise(t) for t in doc_texts)
    return np.array([counts[_normalise(t)] > 1 for t in doc_texts], dtype=bool)


def prefix_check(doc_texts: list[str], vectors):
    """The exact prefix filter (:func:`studio.dataset.quality.similar_pairs`): flagged documents and its pairs."""
    found = similar_pairs(vectors, THRESHOLDS["near_duplicate_cosine"])
    return same_text(doc_texts) | found.flagged, found


def lsh_check(doc_texts: list[str], vectors) -> np.ndarray:
    """The report's check forced onto banded SimHash (:func:`studio.dataset.quality.near_duplicate_rows`)."""
    return same_text(doc_texts) | near_duplicate_rows(vectors, THRESHOLDS["near_duplicate_cosine"], exact_below=0)


def timed(fn, *args):
    """``(result, seconds)`` of ``fn(*args)``."""
    start = time.perf_counter()
    out = fn(*args)
    return out, round(time.perf_counter() - start, 3)


def peak_mb(fn, *args) -> float:
    """Peak MiB traced while ``fn(*args)`` runs (numpy and scipy arrays are traced); a second run, since tracing
    slows the Python parts several times."""
    tracemalloc.start()
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return round(peak / 2**20, 1)


def paragraphs() -> list[str]:
    """DESCRIPTION paragraphs of every English and Chinese man page (built once into .cache/bench)."""
    spec = importlib.util.spec_from_file_location("manpages", ROOT / "bench" / "manpages.py")
    manpages = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(manpages)
    out: list[str] = []
    for lang in ("en", "zh"):
        folder = CACHE / f"manpages-{lang}-all"
        manpages.build(lang, folder)
        with (folder / "corpus.jsonl").open(encoding="utf-8") as f:
            for line in f:
                text = json.loads(line)["text"]
                out.extend(p.strip() for p in text.split("\n\n") if len(p.strip()) >= MIN_PARAGRAPH)
    return out


def corpus(pool: list[str], n: int, near: float, exact: float, seed: int = 0,
           planted: list[int] | None = None) -> list[str]:
    """`n` documents from `pool` (see the module docstring); deterministic for a seed. The positions of the planted
    near-duplicates are appended to `planted`."""
    rng = random.Random(seed)
    docs: list[str] = []
    for _ in range(n):
        roll = rng.random()
        if docs and roll < exact:
            docs.append(rng.choice(docs))
        elif docs and roll < exact + near:
            words = rng.choice(docs).split(" ")
            k = rng.randrange(len(words))
            if rng.random() < 0.5 and len(words) > 1:
                del words[k]
            else:
                words[k] = rng.choice(pool).split(" ")[0]
            if planted is not None:
                planted.append(len(docs))
            docs.append(" ".join(words))
        else:
            other = rng.choice(pool)
            docs.append(rng.choice(pool) + "\n\n" + other[:len(other) // 2])
    return docs


def sampled_exact(vectors, rows: np.ndarray, block: int = 200) -> np.ndarray:
    """Whether each of `rows` has another row at cosine >= 0.95, by its exact products with every row."""
    transposed = vectors.T.tocsc()
    out = np.zeros(len(rows), dtype=bool)
    for start in range(0, len(rows), block):
        part = rows[start:start + block]
        product = (vectors[part] @ transposed).tocoo()
        hit = (product.data >= THRESHOLDS["near_duplicate_cosine"]) & (part[product.row] != product.col)
        out[start + product.row[hit]] = True
    return out


def recall_precision(found: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    both = int((found & truth).sum())
    return (round(both / truth.sum(), 5) if truth.any() else 1.0,
            round(both / found.sum(), 5) if found.any() else 1.0)


def run(pool: list[str], n: int, near: float, exact: float, prefix_max: int, reference_max: int,
        memory_max: int, sample_size: int = 2_000) -> dict:
    planted: list[int] = []
    docs = corpus(pool, n, near, exact, planted=planted)
    vectors, tfidf_s = timed(_tfidf, docs, [])
    lsh, lsh_s = timed(lsh_check, docs, vectors)
    lsh_mb = peak_mb(lsh_check, docs, vectors)
    out = {
        "bench": "near_duplicates", "documents": n, "terms": vectors.shape[1], "nnz": int(vectors.nnz),
        "planted_near": len(planted), "tfidf_s": tfidf_s, "lsh_s": lsh_s, "lsh_peak_mb": lsh_mb,
        "flagged_lsh": int(lsh.sum()),
    }
    truth = None
    if n <= prefix_max:
        (prefix, found), prefix_s = timed(prefix_check, docs, vectors)
        truth = prefix
        if n <= memory_max:
            out["prefix_peak_mb"] = peak_mb(prefix_check, docs, vectors)
        out.update({"prefix_s": prefix_s, "ratio": round(prefix_s / lsh_s, 2),
                    "similar_pairs": len(found.row_pairs()), "flagged_exact": int(prefix.sum())})
    if n <= reference_max:
        (ref_count, ref_pairs), ref_s = timed(reference, docs, vectors)
        out.update({"reference_s": ref_s, "flagged_reference": ref_count})
        if truth is not None:
            out["prefix_same_as_reference"] = ref_count == out["flagged_exact"] and \
                ref_pairs == found.row_pairs()
    if truth is not None:
        out["recall"], out["precision"] = recall_precision(lsh, truth)
        mask = np.zeros(n, dtype=bool)
        mask[planted] = True
        out["planted_recall"] = recall_precision(lsh & mask, truth & mask)[0]
        out["planted_flagged_exact"] = round(float(truth[planted].mean()), 5) if planted else None
    else:
        # Without the exact check, the exact answer for a random sample of documents: their row of X · Xᵀ.
        sample = np.random.default_rng(0).choice(n, size=min(n, sample_size), replace=False)
        truth_sample = same_text(docs)[sample] | sampled_exact(vectors, sample)
        out["sample"] = len(sample)
        out["sample_recall"], out["sample_precision"] = recall_precision(lsh[sample], truth_sample)
    out["planted_flagged"] = round(float(lsh[planted].mean()), 5) if planted else None
    return {**out, "machine": f"{platform.machine()}, {platform.python_version()}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[10_000, 50_000, 100_000, 200_000])
    parser.add_argument("--near", type=float, default=0.03, help="share of planted near-duplicates")
    parser.add_argument("--exact", type=float, default=0.01, help="share of exact copies")
    parser.add_argument("--smoke", action="store_true", help="2,000 and 5,000 documents")
    parser.add_argument("--prefix-max", type=int, default=200_000,
                        help="skip the exact prefix filter above this many documents (no ratio or recall there)")
    parser.add_argument("--reference-max", type=int, default=50_000,
                        help="skip the quadratic reference above this many documents")
    parser.add_argument("--memory-max", type=int, default=100_000,
                        help="measure the prefix filter's peak memory (a second, traced run) up to this many documents")
    args = parser.parse_args()
    pool = paragraphs()
    for n in ([2_000, 5_000] if args.smoke else args.docs):
        print(json.dumps({**run(pool, n, args.near, args.exact, args.prefix_max, args.reference_max,
                              args.memory_max),
                          "paragraphs": len(pool)}), flush=True)


if __name__ == "__main__":
    main()
