"""Judge the holes: the (query, document) pairs in systems' top K that have no gold label.

An evaluation counts an unjudged document as not relevant, so a system that finds documents the team never rated
(a fine-tune, a production system's run file) is scored low for want of labels, not for its ranking. TREC's answer
is pooling: judge the union of every system's top K (depth-K pooling, Spärck Jones & van Rijsbergen 1975; Voorhees
& Harman 2005). This module finds those holes; :func:`studio.actions.collect.pool_unjudged` queues them, and once
they are double-rated (or imported with ``studio import ratings``) a re-evaluation sees them as gold.

Pure functions over plain inputs: ``runs`` maps a system's spec to its run (query key → {document key: score}),
``qrels`` the evaluated queries' gold labels (query key → {document key: label}, label 0 included: a document
labelled "not relevant" is judged). A query's top K is ranked as the metrics rank it
(:func:`studio.evaluation.metrics.ranked_ids`: score descending, ties by document key), so the unjudged pairs
counted here are exactly those of :func:`studio.evaluation.metrics.unjudged_pairs` that an evaluation reports.
"""

from __future__ import annotations

from collections.abc import Mapping

from studio.evaluation.metrics import ranked_ids, unjudged_pairs
from studio.errors import StudioError

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]
MAX_DEPTH = 1000


def check_depth(depth: int) -> int:
    """`depth` as an int from 1 to :data:`MAX_DEPTH`.

    Raises:
        StudioError: ``bad_pool_depth``.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise StudioError("bad_pool_depth", value=depth, max=MAX_DEPTH)
    return depth


def count_unjudged(runs: Mapping[str, Run], qrels: Qrels, depth: int = 10) -> dict[str, dict]:
    """Per system, its top-`depth` pairs over the queries of `qrels` and how many have no gold label.

    Returns:
        spec → ``{"pairs": top-depth pairs ranked, "judged": with a gold label, "unjudged": without one,
        "judged_share": judged / (queries × depth) (TREC's judged@depth; a ranking shorter than depth counts its
        empty places as not judged), "queries": queries of qrels, "missing_queries": those the run has no
        ranking for}``.

    Raises:
        StudioError: ``bad_pool_depth``.
    """
    depth = check_depth(depth)
    out = {}
    for spec, run in runs.items():
        pairs = sum(min(len(run.get(q, {})), depth) for q in qrels)
        unjudged = len(unjudged_pairs(qrels, run, depth))
        out[spec] = {"pairs": pairs, "judged": pairs - unjudged, "unjudged": unjudged,
                     "judged_share": round((pairs - unjudged) / max(len(qrels) * depth, 1), 4),
                     "queries": len(qrels), "missing_queries": sum(1 for q in qrels if not run.get(q))}
    return out


def holes(runs: Mapping[str, Run], qrels: Qrels, depth: int = 10) -> list[tuple[str, str]]:
    """The distinct unjudged (query key, document key) pairs in the top `depth` of any of `runs`, over the queries
    of `qrels`, in pooling order: every system's rank 1 first, then rank 2, …; at the same rank, the pairs more
    systems share first, then by query and document key. The order the team is served them in.

    Raises:
        StudioError: ``bad_pool_depth``.
    """
    depth = check_depth(depth)
    best: dict[tuple[str, str], int] = {}
    votes: dict[tuple[str, str], int] = {}
    for run in runs.values():
        for q, judged in qrels.items():
            for rank, doc in enumerate(ranked_ids(run.get(q, {}))[:depth], start=1):
                if doc in judged:
                    continue
                pair = (q, doc)
                best[pair] = min(best.get(pair, rank), rank)
                votes[pair] = votes.get(pair, 0) + 1
    return sorted(best, key=lambda pair: (best[pair], -votes[pair], pair))
