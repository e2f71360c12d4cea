"""Error analysis over the top of each ranking: which queries fail, how, and what changed between two runs.

Buckets, for a query with at least one relevant (relevance > 0) document, looking at the top k (1-based
ranks, ties as :func:`studio.evaluation.metrics.ranked_ids`), first match wins:

* ``complete_failure``: no relevant document in the top k;
* ``partial_failure``: fewer than half of the query's relevant documents in the top k;
* ``ranking_issue``: the first relevant document is at rank 4..k;
* None: fine. Queries without relevant documents are always None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from studio.evaluation.metrics import per_query, ranked_ids

BUCKETS: tuple[str, ...] = ("complete_failure", "partial_failure", "ranking_issue")
RANKING_ISSUE_BELOW = 3
N_WORST = 10
N_TOP = 5


def classify(qrels_q: Mapping[str, int], ranked: list[str], k: int = 10) -> str | None:
    """The bucket of one query: its judgments and its ranked doc ids (best first); see the module docstring.

    ``found`` = relevant documents among ``ranked[:k]``, ``R`` = all relevant documents: complete failure
    when ``found == 0``, partial failure when ``found < R / 2``, ranking issue when the first relevant
    rank is > 3.

    Raises:
        ValueError: ``k < 1``.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    relevant = {doc for doc, rel in qrels_q.items() if rel > 0}
    if not relevant:
        return None
    ranks = [i for i, doc in enumerate(ranked[:k], start=1) if doc in relevant]
    if not ranks:
        return "complete_failure"
    if 2 * len(ranks) < len(relevant):
        return "partial_failure"
    if ranks[0] > RANKING_ISSUE_BELOW:
        return "ranking_issue"
    return None


@dataclass
class ErrorReport:
    """Bucket counts (every bucket present), each query's bucket, and the worst queries by nDCG."""

    counts: dict[str, int]
    by_query: dict[str, str | None]
    worst: list[dict]


def analyse(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]],
            k: int = 10) -> ErrorReport:
    """Buckets of every query of `qrels`, and up to 10 worst queries.

    `worst` holds queries with at least one relevant document, by ``ndcg@k`` ascending then query id:
    ``{"query_id", "bucket", "ndcg@k", "first_relevant_rank", "top"}``, where the rank is over the whole
    ranking (None if no relevant document was retrieved) and `top` the first 5 doc ids.

    Raises:
        ValueError: ``k < 1``, or as :func:`studio.evaluation.metrics.per_query`.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    ndcg_name = f"ndcg@{k}"
    ndcg = per_query(qrels, run, (k,), ("ndcg",))[ndcg_name]
    counts = dict.fromkeys(BUCKETS, 0)
    by_query: dict[str, str | None] = {}
    candidates: list[dict] = []
    for qid, judged in qrels.items():
        ranked = ranked_ids(run.get(qid, {}))
        bucket = classify(judged, ranked, k)
        by_query[qid] = bucket
        if bucket is not None:
            counts[bucket] += 1
        if not any(rel > 0 for rel in judged.values()):
            continue
        first = next((i for i, doc in enumerate(ranked, start=1) if judged.get(doc, 0) > 0), None)
        candidates.append({"query_id": qid, "bucket": bucket, ndcg_name: ndcg[qid],
                           "first_relevant_rank": first, "top": ranked[:N_TOP]})
    candidates.sort(key=lambda row: (row[ndcg_name], row["query_id"]))
    return ErrorReport(counts=counts, by_query=by_query, worst=candidates[:N_WORST])


def changes(report_a: ErrorReport, report_b: ErrorReport) -> dict[str, list[str]]:
    """How buckets moved from `report_a` to `report_b`, over the queries both reports hold.

    ``fixed``: a bucket → None; ``broken``: None → a bucket; ``moved``: one bucket → another. Sorted ids.
    """
    out: dict[str, list[str]] = {"fixed": [], "broken": [], "moved": []}
    for qid in sorted(report_a.by_query.keys() & report_b.by_query.keys()):
        before, after = report_a.by_query[qid], report_b.by_query[qid]
        if before == after:
            continue
        if after is None:
            out["fixed"].append(qid)
        elif before is None:
            out["broken"].append(qid)
        else:
            out["moved"].append(qid)
    return out
