"""Fusing two first-stage runs into one ranking, as ranx's ``fuse`` does: reciprocal rank (``rrf``, k = 60) and a
weighted sum of ``min-max``-normalised scores (``wsum``); tests/test_systems.py checks both against ranx.

A run maps query id → {document id → score}; higher scores rank first.
"""

from __future__ import annotations

from collections.abc import Mapping

Run = dict[str, dict[str, float]]
RRF_K = 60  # Cormack et al. 2009, and ranx's default


def min_max(ranked: Mapping[str, float]) -> dict[str, float]:
    """Scores mapped onto [0, 1] per query (ranx's ``min-max`` norm: a flat list gets 0 everywhere)."""
    if not ranked:
        return {}
    low, high = min(ranked.values()), max(ranked.values())
    span = max(high - low, 1e-9)
    return {doc: (score - low) / span for doc, score in ranked.items()}


def fuse_weighted(a: Run, b: Run, weight: float, depth: int | None = None) -> Run:
    """``weight × minmax(a) + (1 − weight) × minmax(b)`` per query; a document one run did not retrieve gets 0
    from it. Queries of either run; the best `depth` documents of each (all when None)."""
    out: Run = {}
    for qid in dict.fromkeys([*a, *b]):
        na, nb = min_max(a.get(qid, {})), min_max(b.get(qid, {}))
        fused = {d: weight * na.get(d, 0.0) + (1 - weight) * nb.get(d, 0.0) for d in dict.fromkeys([*na, *nb])}
        out[qid] = _top(fused, depth)
    return out


def fuse_rrf(a: Run, b: Run, k: int = RRF_K, depth: int | None = None) -> Run:
    """Reciprocal-rank fusion: ``Σ 1 / (k + rank)`` over the runs that retrieved a document (ranks from 1, ties
    by document id)."""
    out: Run = {}
    for qid in dict.fromkeys([*a, *b]):
        fused: dict[str, float] = {}
        for run in (a.get(qid, {}), b.get(qid, {})):
            for rank, doc in enumerate(sorted(run, key=lambda d: (-run[d], d)), start=1):
                fused[doc] = fused.get(doc, 0.0) + 1.0 / (k + rank)
        out[qid] = _top(fused, depth)
    return out


def _top(scores: dict[str, float], depth: int | None) -> dict[str, float]:
    if depth is None or len(scores) <= depth:
        return scores
    return dict(sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:depth])
