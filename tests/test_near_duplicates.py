"""The quality report's near-duplicate check above its exact size: banded SimHash with exact verification."""

from __future__ import annotations

import random

import numpy as np
import pytest

from studio.dataset import quality
from studio.dataset.quality import THRESHOLDS, _tfidf, near_duplicate_rows, similar_pairs

THRESHOLD = THRESHOLDS["near_duplicate_cosine"]


def distinct_docs(n: int, seed: int = 0, words: int = 40) -> list[str]:
    """`n` documents of `words` random words from a 20,000-word vocabulary: pairwise cosine near 0."""
    rng = random.Random(seed)
    return [" ".join(f"w{rng.randrange(20_000)}" for _ in range(words)) for _ in range(n)]


def one_word_changed(text: str, rng: random.Random) -> str:
    words = text.split()
    words[rng.randrange(len(words))] = f"changed{rng.randrange(10**6)}"
    return " ".join(words)


def planted_corpus() -> tuple[list[str], set[int], set[int]]:
    """600 distinct documents, then 30 copies with one word changed and 10 exact copies of earlier ones.

    Returns the texts, the planted near-duplicates with their sources, and the exact copies with theirs."""
    rng = random.Random(1)
    docs = distinct_docs(600)
    near, exact = set(), set()
    for source in rng.sample(range(600), 30):
        near |= {source, len(docs)}
        docs.append(one_word_changed(docs[source], rng))
    for source in rng.sample(range(600), 10):
        exact |= {source, len(docs)}
        docs.append(docs[source])
    return docs, near, exact


def cosine(vectors, i: int, j: int) -> float:
    return float(vectors[i].multiply(vectors[j]).sum())


def test_finds_planted_near_duplicates_and_exact_copies():
    docs, near, exact = planted_corpus()
    vectors = _tfidf(docs, [])
    flagged = near_duplicate_rows(vectors, THRESHOLD, exact_below=0)
    assert set(np.flatnonzero(flagged).tolist()) == near | exact
    # The same answer as the exact check the report runs on small sets.
    assert flagged.tolist() == similar_pairs(vectors, THRESHOLD).flagged.tolist()


def test_merely_similar_documents_are_not_flagged():
    """Copies with four of their forty words changed (cosine about 0.8) are alike, not near-duplicates."""
    rng = random.Random(2)
    docs = distinct_docs(300)
    for source in range(100):
        words = docs[source].split()
        for k in rng.sample(range(len(words)), 4):
            words[k] = f"other{rng.randrange(10**6)}"
        docs.append(" ".join(words))
    vectors = _tfidf(docs, [])
    similar = [cosine(vectors, source, 300 + source) for source in range(100)]
    assert 0.75 < np.mean(similar) < 0.92 and max(similar) < THRESHOLD
    assert not near_duplicate_rows(vectors, THRESHOLD, exact_below=0).any()


def test_seeded_and_deterministic():
    docs, near, exact = planted_corpus()
    vectors = _tfidf(docs, [])
    first = near_duplicate_rows(vectors, THRESHOLD, exact_below=0)
    assert near_duplicate_rows(vectors, THRESHOLD, exact_below=0).tolist() == first.tolist()
    # Another seed draws other projections and bands, and still finds the same documents.
    assert near_duplicate_rows(vectors, THRESHOLD, exact_below=0, seed=7).tolist() == first.tolist()


def test_a_big_cluster_of_near_duplicates_in_one_bucket(monkeypatch):
    """Three hundred variants of one text (each without one of its 300 words) share buckets: the huge-bucket path
    (blocks of unflagged rows) flags them all and nothing else."""
    monkeypatch.setattr(quality, "_PAIR_BATCH", 500)  # a bucket of 300 rows (44,850 pairs) is "huge"
    words = distinct_docs(1, seed=3, words=300)[0].split()
    docs = [" ".join(words[:k] + words[k + 1:]) for k in range(300)] + distinct_docs(200, seed=4)
    flagged = near_duplicate_rows(_tfidf(docs, []), THRESHOLD, exact_below=0)
    assert flagged.tolist() == [True] * 300 + [False] * 200


def test_report_uses_the_exact_check_below_its_size():
    docs, near, exact = planted_corpus()
    vectors = _tfidf(docs, [])
    assert len(docs) < quality._EXACT_BELOW
    assert near_duplicate_rows(vectors, THRESHOLD).tolist() == similar_pairs(vectors, THRESHOLD).flagged.tolist()


@pytest.mark.parametrize("docs", [[], ["one document only"], ["", ""], ["same text", "same text"]])
def test_empty_single_and_identical_documents(docs):
    flagged = near_duplicate_rows(_tfidf(docs, []), THRESHOLD, exact_below=0)
    assert flagged.tolist() == [len(docs) == 2 and docs[0] != ""] * len(docs)


def test_progress_rises_to_one():
    docs, _, _ = planted_corpus()
    steps: list[float] = []
    near_duplicate_rows(_tfidf(docs, []), THRESHOLD, steps.append, exact_below=0)
    assert steps == sorted(steps) and steps[-1] == 1.0 and len(steps) > 10


def test_a_bucket_over_the_cap_is_split_by_the_next_bands(monkeypatch):
    monkeypatch.setattr(quality, "_BUCKET_CAP", 40)
    keys = np.zeros((quality._BANDS, 500), dtype=np.uint32)  # band 0: one bucket of 500 rows
    keys[1] = np.arange(500) % 10  # band 1 tells them apart into tens
    keys[2] = np.arange(500) // 10 % 2  # and band 2 halves each ten
    order, starts, sizes = quality._buckets(keys, 0)
    assert sorted(sizes.tolist()) == [25] * 20 and sorted(order.tolist()) == list(range(500))
    # Rows alike in every band cannot be split: the split stops after three more bands instead of looping.
    assert quality._buckets(np.zeros((quality._BANDS, 500), dtype=np.uint32), 0)[2].tolist() == [500]


def test_alike_short_texts_still_get_the_exact_answer(monkeypatch):
    """Short texts sharing frequent terms fill big buckets without being near-duplicates."""
    monkeypatch.setattr(quality, "_BUCKET_CAP", 20)
    docs = [f"error code{k % 50} w{k % 7}" for k in range(400)] + distinct_docs(100, seed=5)
    docs += [docs[3] + " again", docs[450] + " again"]
    vectors = _tfidf(docs, [])
    flagged = near_duplicate_rows(vectors, THRESHOLD, exact_below=0)
    assert flagged.tolist() == similar_pairs(vectors, THRESHOLD).flagged.tolist()
    assert flagged[:400].sum() == 100  # texts k and k + 350 are the same: identical rows, cosine 1
