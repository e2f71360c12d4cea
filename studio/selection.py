"""Which unrated pairs to rate first: the annotation queue's strategies.

- ``imported``: the order the pairs came in (the pairs of one query together).
- ``random``: a seeded shuffle — the baseline any smarter order must beat (Althammer et al. 2023 found that smart
  selection often does not beat random for training rankers).
- ``systems``: TREC-style multi-system pooling, highest-scoring unjudged first: BM25's and the dense models' top 1,
  then top 2, …; at the same depth, the pairs the systems agree on first. On the man-page benchmark it finds
  relevant pairs 10–17× faster than imported order (bench/queue_strategies.py).
- ``disagree``: the pairs some system puts in its top 10 and the others rank far lower come first (widest
  disagreement first): where BM25, the base model and a fine-tune contradict each other — the pairs that decide
  which one is right, not the quickest way to find relevant ones.
- ``uncertain``: pairs whose dense score sits nearest the score threshold that best separates the project's gold
  "relevant" from "irrelevant" (max F1, :mod:`studio.evaluation.calibration`); the median score without gold labels.
- ``negatives`` ("check the negatives"): not an order of the pairs there are but new pairs — the mined hard negatives
  that score closest to their query's positives, mined as the export mines (:mod:`studio.dataset.negatives`), added
  to the project and served first so the team catches false negatives before they are trained on (FlagEmbedding
  #850). Its action is :func:`studio.actions.queue.check_negatives`; :func:`order_pairs` does not order by it.

Every ordering strategy returns the untouched pairs' ids in serving order; pairs with one rating are always served first
whatever the strategy (store/ratings.py), so pairs get completed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from studio.errors import StudioError

STRATEGIES = ("imported", "random", "systems", "disagree", "uncertain", "negatives")
# Served after pooling unless an admin picks another, and ①'s preselected choice: on the man-page benchmark it found
# 10–17× more relevant pairs per 100 ratings than imported order, and a fine-tune on its first 500 ratings scored
# +0.04 (zh) / +0.03 (en) nDCG@10 over imported and random order (p ≤ 0.003; bench/RESULTS.md).
DEFAULT = "systems"
ADDS_PAIRS = ("negatives",)  # strategies that add pairs to the project instead of ordering the ones there are
DEPTH = 100  # ranks beyond this count as "not retrieved" (DEPTH + 1)
TOP = 10     # "disagree": pairs some system puts in its top 10


@dataclass
class Order:
    """Untouched pair ids in serving order, and what the strategy used (models, threshold) for the audit log."""

    ids: list[int]
    details: dict = field(default_factory=dict)


def document_text(doc: dict) -> str:
    return f"{doc['title']}\n{doc['text']}".strip()


def order_pairs(strategy: str, pairs: Sequence[dict], documents: Sequence[dict], queries: Sequence[dict], *,
                models: Sequence[str] = (), gold: Sequence[tuple[int, int, int]] = (), seed: int = 42,
                progress: Callable[[float, str], None] | None = None) -> Order:
    """The serving order of `pairs` (rows with id, query_id, document_id) under `strategy`.

    Args:
        documents, queries: the project's rows (id, title, text / id, text).
        models: dense models: every one is a system for ``systems`` (besides BM25); the first scores ``uncertain``.
        gold: (query_id, document_id, label) of the gold labels, to calibrate ``uncertain``'s threshold.
    """
    if strategy not in STRATEGIES:
        raise StudioError("bad_strategy", name=strategy, choices=", ".join(STRATEGIES))
    if strategy in ADDS_PAIRS:
        raise ValueError(f"{strategy!r} adds pairs rather than ordering them: use actions.queue.check_negatives")
    if strategy == "imported":
        return Order([])
    ids = [p["id"] for p in pairs]
    if strategy == "random":
        random.Random(seed).shuffle(ids)
        return Order(ids, {"seed": seed})
    if not pairs:
        return Order([])
    if strategy in ("systems", "disagree"):
        return _by_systems(strategy, pairs, documents, queries, models, progress)
    return _by_uncertainty(pairs, documents, queries, models[0] if models else None, gold, progress)


def _ranks(pairs: Sequence[dict], documents: Sequence[dict], queries: Sequence[dict], models: Sequence[str],
           progress) -> dict[str, np.ndarray]:
    """Per system (bm25 and each model), the rank of each pair's document for its query (DEPTH + 1: not in the top
    DEPTH)."""
    from studio.retrieval.bm25 import BM25Index
    from studio.retrieval.dense import DenseIndex

    position = {d["id"]: i for i, d in enumerate(documents)}
    texts = [document_text(d) for d in documents]
    query_ids = sorted({p["query_id"] for p in pairs})
    query_text = {q["id"]: q["text"] for q in queries}
    asked = [query_text[q] for q in query_ids]
    progress and progress(0.1, "bm25")
    rankings = {"bm25": BM25Index(texts).search_many(asked, DEPTH)}
    for i, model in enumerate(models):
        progress and progress(0.3 + 0.5 * i / max(len(models), 1), "dense")
        rankings[model] = DenseIndex(texts, model).search_many(asked, DEPTH)
    row_of = {q: i for i, q in enumerate(query_ids)}
    out = {}
    for system, ranking in rankings.items():
        rank_of = [{doc: r for r, (doc, _) in enumerate(hits, start=1)} for hits in ranking]
        out[system] = np.array([rank_of[row_of[p["query_id"]]].get(position[p["document_id"]], DEPTH + 1)
                                for p in pairs])
    return out


def _by_systems(strategy, pairs, documents, queries, models, progress) -> Order:
    if not models:
        raise StudioError("strategy_needs_model", name=strategy)
    ranks = _ranks(pairs, documents, queries, models, progress)
    stacked = np.vstack(list(ranks.values()))
    spread, best = stacked.max(axis=0) - stacked.min(axis=0), stacked.min(axis=0)
    if strategy == "systems":  # depth first, as TREC pools are judged; agreement first at the same depth
        key = [(best[i], spread[i], pairs[i]["id"]) for i in range(len(pairs))]
    else:  # some system's top 10 first, widest disagreement first among them
        key = [(best[i] > TOP, -spread[i], best[i], pairs[i]["id"]) for i in range(len(pairs))]
    order = sorted(range(len(pairs)), key=key.__getitem__)
    return Order([pairs[i]["id"] for i in order], {"systems": list(ranks), "depth": DEPTH})


def _by_uncertainty(pairs, documents, queries, model, gold, progress) -> Order:
    from studio.evaluation.calibration import max_f1
    from studio.retrieval.cache import cached_encode

    if model is None:
        raise StudioError("strategy_needs_model", name="uncertain")
    doc_at = {d["id"]: i for i, d in enumerate(documents)}
    query_at = {q["id"]: i for i, q in enumerate(queries)}
    progress and progress(0.2, "dense")
    doc_vectors = cached_encode([document_text(d) for d in documents], model)
    query_vectors = cached_encode([q["text"] for q in queries], model)

    def scores(items: Sequence[tuple[int, int]]) -> np.ndarray:
        q = query_vectors[[query_at[a] for a, _ in items]]
        d = doc_vectors[[doc_at[b] for _, b in items]]
        return np.einsum("ij,ij->i", q, d)

    open_scores = scores([(p["query_id"], p["document_id"]) for p in pairs])
    labelled = [(q, d, label) for q, d, label in gold if label in (0, 2)]
    threshold, how = float(np.median(open_scores)), "median"
    if labelled and len({label for *_, label in labelled}) == 2:
        calibrated = max_f1(scores([(q, d) for q, d, _ in labelled]), [label == 2 for *_, label in labelled])
        threshold, how = calibrated.threshold, "max_f1"
    distance = np.abs(open_scores - threshold)
    order = sorted(range(len(pairs)), key=lambda i: (distance[i], pairs[i]["id"]))
    return Order([pairs[i]["id"] for i in order], {"model": model, "threshold": round(threshold, 4),
                                                   "threshold_from": how})
