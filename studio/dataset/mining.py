"""Hard-negative mining: documents the retriever ranks high for a query that the experts did not mark relevant.

Like FlagEmbedding's ``hn_mine``, candidates come from a rank window (skipping the very top, where unlabelled
relevant documents hide), and documents nearly identical to a known positive are dropped as likely false negatives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.records import GoldSet
from studio.retrieval.bm25 import BM25Index
from studio.retrieval.dense import DenseIndex
from studio.retrieval.pooling import HYBRID, RETRIEVERS, reciprocal_rank_fusion
from studio.retrieval.stages import BM25, DENSE
from studio.retrieval.tokenize import tokenize

MINING_METHODS = RETRIEVERS  # what finds the negatives: BM25, the dense model, or both fused (RRF)
QUERY_BATCH = 256  # queries scored per retriever call: bounds the queries × corpus score matrix


@dataclass
class Mined:
    """What mining found for each query.

    Attributes:
        candidates: query key → window documents that passed the filters, best first.
        avoid: query key → documents not to use as random negatives: ranked above the window (skipped as
            possibly relevant) or too similar to a positive.
        above: query key → documents ranked above the window that are not labelled 1/2 and pass the
            false-negative guard, nearest the window first: the export's last resort when nothing else is left
            (a corpus smaller than the window's start has no window at all).
    """

    candidates: dict[str, list[str]] = field(default_factory=dict)
    avoid: dict[str, set[str]] = field(default_factory=dict)
    above: dict[str, list[str]] = field(default_factory=dict)


def mine_negatives(gold: GoldSet, query_keys: Sequence[str], *, method: str, model: str | Path | None = None,
                   rank_window: tuple[int, int] = (10, 100), max_similarity: float = 0.9,
                   partial_as_positive: bool = False,
                   progress: Callable[[float, str], None] | None = None) -> dict[str, list[str]]:
    """Mining candidates for each query, best first, already filtered (see :func:`mine`)."""
    return mine(gold, query_keys, method=method, model=model, rank_window=rank_window,
                max_similarity=max_similarity, partial_as_positive=partial_as_positive, progress=progress).candidates


def mine(gold: GoldSet, query_keys: Sequence[str], *, method: str, model: str | Path | None = None,
         rank_window: tuple[int, int] = (10, 100), max_similarity: float = 0.9, partial_as_positive: bool = False,
         progress: Callable[[float, str], None] | None = None) -> Mined:
    """Mining candidates for each query, best first, already filtered, and the documents to avoid.

    The corpus is indexed once; each query's ranked list (top ``rank_window[1]``; hybrid fuses BM25 and dense with
    reciprocal rank fusion) is cut to positions ``[start, end)``. Documents labelled 1 or 2 for the query are
    removed, and so are documents whose cosine similarity to one of the query's positives is at least
    `max_similarity` (dense embeddings for dense/hybrid, TF-IDF for bm25).

    Args:
        gold: The gold set; the whole corpus is searched.
        query_keys: Queries to mine for.
        method: "bm25", "dense" or "hybrid".
        model: Dense model (None or "default" = the ★ default model); unused for bm25.
        rank_window: (start, end), 0-based positions in the ranked list, end excluded.
        max_similarity: False-negative guard threshold.
        partial_as_positive: Whether label-1 documents count as positives for the guard.
        progress: Called with (fraction of queries done, "mining").

    Returns:
        Candidates per query in rank order (may be shorter than the window, or empty), documents to avoid, and
        the guarded documents above the window (see :class:`Mined`).
    """
    if method not in MINING_METHODS:
        raise ValueError(f"unknown mining method {method!r}")
    start, end = rank_window
    doc_keys = sorted(gold.corpus)
    keys = list(query_keys)
    if not doc_keys or not keys:
        return Mined({q: [] for q in keys}, {q: set() for q in keys}, {q: [] for q in keys})
    texts = [gold.corpus[k] for k in doc_keys]
    position = {k: i for i, k in enumerate(doc_keys)}
    bm25 = dense = None
    if method in (BM25.name, HYBRID):
        bm25 = BM25Index(texts)
    if method in (DENSE.name, HYBRID):
        dense = DenseIndex(texts, model)
    vectors = dense.embeddings if dense is not None else _tfidf(texts)

    out = Mined()
    for first in range(0, len(keys), QUERY_BATCH):
        batch = keys[first:first + QUERY_BATCH]
        rankings = _rank([gold.queries[q] for q in batch], bm25, dense, end)
        for qid, ranked in zip(batch, rankings):
            labelled = {d for d, label in gold.labels.get(qid, {}).items() if label >= 1}
            window = [doc_keys[p] for p in ranked[start:end] if doc_keys[p] not in labelled]
            top = [doc_keys[p] for p in reversed(ranked[:start]) if doc_keys[p] not in labelled]
            positives = [position[d] for d in gold.positives(qid, partial_as_positive) if d in position]
            kept = _guard(window, positives, position, vectors, max_similarity)
            out.candidates[qid] = kept
            out.avoid[qid] = {doc_keys[p] for p in ranked[:start]} | (set(window) - set(kept))
            out.above[qid] = _guard(top, positives, position, vectors, max_similarity)
        if progress:
            progress(min(1.0, (first + len(batch)) / len(keys)), "mining")
    return out


def _rank(queries: list[str], bm25, dense, k: int) -> list[list[int]]:
    """Corpus positions for each query, best first: one retriever's list, or the RRF of both."""
    lists = [index.search_many(queries, k) for index in (bm25, dense) if index is not None]
    if len(lists) == 1:
        return [[p for p, _ in hits] for hits in lists[0]]
    return [reciprocal_rank_fusion(per_query, k) for per_query in zip(*lists)]


def _tfidf(texts: list[str]):
    """L2-normalised sparse TF-IDF rows over the studio tokenizer (the lexical stand-in for embeddings)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        return TfidfVectorizer(analyzer=tokenize, dtype=np.float32).fit_transform(texts)
    except ValueError:  # no document has a single term: nothing to compare, so no guard
        return None


def _guard(window: list[str], positives: list[int], position: dict[str, int], vectors,
           max_similarity: float) -> list[str]:
    """Drop candidates whose cosine to any positive is >= `max_similarity` (positives × candidates only)."""
    if not window or not positives or vectors is None:
        return window
    sims = vectors[[position[d] for d in window]] @ vectors[positives].T
    if not isinstance(sims, np.ndarray):  # sparse TF-IDF product
        sims = sims.toarray()
    best = np.asarray(sims).max(axis=1)
    # A small tolerance so that an exact copy (cosine 1 in theory, 0.9999999 in float32) meets a threshold of 1.
    return [d for d, s in zip(window, best) if s < max_similarity - 1e-6]
