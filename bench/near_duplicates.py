"""The quality report's near-duplicate check: the old quadratic scan vs the prefix-filtered one (CPU).

Documents are real man-page text (bench/manpages.py, English and Chinese DESCRIPTION paragraphs): each is one
paragraph plus a random half of another, so documents that share a paragraph are alike (cosine about 0.3–0.8)
without being near-duplicates; then ``--near`` of them are copies of an earlier one with one word dropped or
replaced (planted near-duplicates) and ``--exact`` exact copies. Both checks get the same TF-IDF matrix (the
report's :func:`studio.dataset.quality._tfidf`, timed apart); the old one is kept below as the reference.

One JSON line per size: seconds of each, the ratio, the exact cosines the new check computed, and its recall and
precision on the reference's pairs and flagged documents (both must be 1.0: the new check is exact).

    python bench/near_duplicates.py [--docs 10000 50000 100000]
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
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from studio.dataset.quality import THRESHOLDS, _normalise, _tfidf, similar_pairs  # noqa: E402

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


def new_check(doc_texts: list[str], vectors):
    """What the report runs now (:func:`studio.dataset.quality._near_duplicates`, keeping its pairs)."""
    same_text = Counter(_normalise(t) for t in doc_texts)
    flagged = np.array([same_text[_normalise(t)] > 1 for t in doc_texts], dtype=bool)
    found = similar_pairs(vectors, THRESHOLDS["near_duplicate_cosine"])
    return int((flagged | found.flagged).sum()), found


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


def corpus(pool: list[str], n: int, near: float, exact: float, seed: int = 0) -> list[str]:
    """`n` documents from `pool` (see the module docstring); deterministic for a seed."""
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
            docs.append(" ".join(words))
        else:
            other = rng.choice(pool)
            docs.append(rng.choice(pool) + "\n\n" + other[:len(other) // 2])
    return docs


def run(pool: list[str], n: int, near: float, exact: float, with_reference: bool = True) -> dict:
    docs = corpus(pool, n, near, exact)
    start = time.perf_counter()
    vectors = _tfidf(docs, [])
    tfidf_s = time.perf_counter() - start
    start = time.perf_counter()
    new_count, found = new_check(docs, vectors)
    new_s = time.perf_counter() - start
    new_pairs = found.row_pairs()
    out = {
        "bench": "near_duplicates", "documents": n, "terms": vectors.shape[1], "nnz": int(vectors.nnz),
        "tfidf_s": round(tfidf_s, 3), "new_s": round(new_s, 3),
        "comparisons": found.comparisons, "comparisons_per_document": round(found.comparisons / n, 2),
        "similar_pairs_new": len(new_pairs), "flagged_new": new_count,
    }
    if with_reference:
        start = time.perf_counter()
        old_count, old_pairs = reference(docs, vectors)
        old_s = time.perf_counter() - start
        both = len(old_pairs & new_pairs)
        out.update({
            "old_s": round(old_s, 3), "ratio": round(old_s / new_s, 1) if new_s else None,
            "similar_pairs": len(old_pairs), "flagged_old": old_count,
            "pair_recall": round(both / len(old_pairs), 4) if old_pairs else 1.0,
            "pair_precision": round(both / len(new_pairs), 4) if new_pairs else 1.0,
            "same_flagged": old_count == new_count,
        })
    return {
        **out,
        "machine": f"{platform.machine()}, {platform.python_version()}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--near", type=float, default=0.03, help="share of planted near-duplicates")
    parser.add_argument("--exact", type=float, default=0.01, help="share of exact copies")
    parser.add_argument("--smoke", action="store_true", help="2,000 and 5,000 documents")
    parser.add_argument("--reference-max", type=int, default=None,
                        help="skip the quadratic reference above this many documents (no ratio or recall there)")
    args = parser.parse_args()
    pool = paragraphs()
    for n in ([2_000, 5_000] if args.smoke else args.docs):
        with_reference = args.reference_max is None or n <= args.reference_max
        print(json.dumps({**run(pool, n, args.near, args.exact, with_reference), "paragraphs": len(pool)}),
              flush=True)


if __name__ == "__main__":
    main()
