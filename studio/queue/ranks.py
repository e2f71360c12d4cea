"""Where each system (BM25 and each dense model) ranks each pair's document for its query: what ``systems`` and
``disagree`` order by."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from studio.errors import StudioError
from studio.queue.base import DEPTH, Inputs, Order, Progress, document_text
from studio.retrieval.bm25 import BM25Index
from studio.retrieval.exact import dense_top_k
from studio.retrieval.systems import BM25


def system_ranks(pairs: Sequence[dict], documents: Sequence[dict], queries: Sequence[dict], models: Sequence[str],
                 progress: Progress | None, db_path: Path | None = None) -> dict[str, np.ndarray]:
    """Per system (bm25 and each model), the rank of each pair's document for its query (DEPTH + 1: not in the top
    DEPTH). With `db_path` (whose documents `documents` are), each model reads the project's stored vectors."""
    position = {d["id"]: i for i, d in enumerate(documents)}
    texts = [document_text(d) for d in documents]
    query_ids = sorted({p["query_id"] for p in pairs})
    query_text = {q["id"]: q["text"] for q in queries}
    asked = [query_text[q] for q in query_ids]
    progress and progress(0.1, BM25)
    rankings = {BM25: BM25Index(texts).search_many(asked, DEPTH)}
    for i, model in enumerate(models):
        progress and progress(0.3 + 0.5 * i / max(len(models), 1), "dense")
        rankings[model] = dense_top_k(asked, model, DEPTH, [d["id"] for d in documents], texts, db_path)
    row_of = {q: i for i, q in enumerate(query_ids)}
    out = {}
    for system, ranking in rankings.items():
        rank_of = [{doc: r for r, (doc, _) in enumerate(hits, start=1)} for hits in ranking]
        out[system] = np.array([rank_of[row_of[p["query_id"]]].get(position[p["document_id"]], DEPTH + 1)
                                for p in pairs])
    return out


def order_by(pairs: Sequence[dict], ranks: dict[str, np.ndarray], key) -> Order:
    """Sort the pairs by ``key(i, best, spread)`` (best rank over the systems, and their spread)."""
    stacked = np.vstack(list(ranks.values()))
    spread, best = stacked.max(axis=0) - stacked.min(axis=0), stacked.min(axis=0)
    order = sorted(range(len(pairs)), key=lambda i: key(i, best, spread))
    return Order([pairs[i]["id"] for i in order], {"systems": list(ranks), "depth": DEPTH})


def ranked_order(name: str, inputs: Inputs, key) -> Order:
    """The untouched pairs of `inputs` in ``key(i, best, spread)`` order over where BM25 and each model rank them
    (:func:`system_ranks`); the strategy `name` needs at least one model."""
    if not inputs.pairs:
        return Order([])
    if not inputs.models:
        raise StudioError("strategy_needs_model", name=name)
    ranks = system_ranks(inputs.pairs, inputs.documents, inputs.queries, inputs.models, inputs.progress,
                         inputs.db_path)
    return order_by(inputs.pairs, ranks, key)
