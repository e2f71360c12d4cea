"""Ranking metrics on graded relevance (0/1/2): P@k, Recall@k, MRR@k and nDCG@k, per query and averaged.

Inputs are plain dicts: ``qrels`` maps query id → {doc id → relevance}, ``run`` maps query id → {doc id →
score}, higher scores ranking first. Every value equals ``ranx.evaluate`` (0.3.21, ``make_comparable=True``)
on the same data, with ranx's metric names ``precision@k``, ``recall@k``, ``mrr@k``, ``ndcg@k``. The
conventions, all ranx's:

* The queries evaluated, and averaged over, are those of ``qrels``; run queries absent from ``qrels`` are
  ignored, and a ``qrels`` query absent from the run has an empty ranking (0 on every metric).
* A document is relevant when its relevance is > 0. Relevance-0 judgments and unjudged documents are
  alike: not relevant, gain 0.
* A query with no relevant document (only 0s, or no judgments) scores 0 on every metric and still counts
  in the mean.
* A ranking shorter than k is not padded with anything but misses: P@k still divides by k.
* Ties in score are broken by doc id ascending (see :func:`ranked_ids`).

How much of a ranking was judged at all (Buckley & Voorhees 2004; Sakai 2007) is measured beside the four metrics
by :func:`judged_at_k`, :func:`condensed_run` (condensed nDCG: :func:`coverage`) and :func:`unjudged_pairs`; those
are not in :data:`METRICS`, so comparisons and significance tests stay on the four IR metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from studio.errors import StudioError

METRICS: tuple[str, ...] = ("p", "recall", "mrr", "ndcg")
COVERAGE_METRICS: tuple[str, ...] = ("ndcg_condensed", "judged")  # :func:`coverage`'s, after the four
DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 20)


def parse_cutoffs(text: str | None) -> tuple[int, ...]:
    """"1,5,10" → (1, 5, 10); empty → DEFAULT_KS. Raises StudioError ``bad_cutoffs`` for anything but positive whole
    numbers separated by commas (the CLI's --k and ⑧'s field both read cut-offs here)."""
    if not (text or "").strip():
        return DEFAULT_KS
    try:
        cutoffs = tuple(int(k) for k in text.split(","))
    except ValueError:
        cutoffs = ()
    if not cutoffs or min(cutoffs) < 1:
        raise StudioError("bad_cutoffs", value=text)
    return cutoffs
primary_metric = "ndcg@10"


def ranked_ids(run_q: Mapping[str, float]) -> list[str]:
    """Doc ids by score descending, ties by doc id ascending.

    ranx has no tie rule of its own: a ``ranx.Run`` keeps insertion order among equal scores for up to 15
    documents (numba's quicksort finishes small arrays with a stable insertion sort) and leaves them in an
    unspecified order beyond that, and a plain dict passed to ``ranx.evaluate`` reverses insertion order.
    Doc id order makes the ranking a function of the scores alone; ranx agrees with it whenever each
    query's documents are inserted in doc id order and ties fall within rankings of at most 15 documents.

    Raises:
        ValueError: a score is NaN.
    """
    for doc, score in run_q.items():
        if score != score:
            raise ValueError(f"score of document {doc!r} is NaN")
    return sorted(run_q, key=lambda doc: (-run_q[doc], doc))


def metric_names(ks: Sequence[int] = DEFAULT_KS, metrics: Sequence[str] = METRICS) -> list[str]:
    """``"{metric}@{k}"`` for each metric, then each cut-off: ``["p@1", "p@5", ..., "ndcg@20"]``.

    Raises:
        ValueError: an unknown metric, no metric or cut-off, or a cut-off that is not a positive int.
    """
    _check(ks, metrics)
    return [f"{m}@{k}" for m in metrics for k in ks]


def per_query(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]],
              ks: Sequence[int] = DEFAULT_KS, metrics: Sequence[str] = METRICS) -> dict[str, dict[str, float]]:
    """Each metric at each cut-off for each query of `qrels`: ``{"ndcg@10": {qid: value}}``.

    With ``rel_i`` the relevance of the document at rank i (1-based; 0 if unjudged or past the ranking's
    end), ``R`` the number of documents with relevance > 0 and ``hits@k = #{i <= k : rel_i > 0}``:

    * ``p@k = hits@k / k``
    * ``recall@k = hits@k / R``
    * ``mrr@k = 1 / min{i <= k : rel_i > 0}`` (0 when there is none)
    * ``ndcg@k = DCG@k / IDCG@k``, ``DCG@k = sum_{i<=k} rel_i / log2(i + 1)`` (Järvelin & Kekäläinen,
      gain = relevance), IDCG@k the DCG@k of the judgments sorted by relevance descending.

    All four are 0 when ``R == 0``. See the module docstring for how missing queries and ties are treated.

    Raises:
        ValueError: an unknown metric, a bad cut-off, a negative relevance, or a NaN score.
    """
    _check(ks, metrics)
    depth = max(ks)
    discounts = np.log2(np.arange(2, depth + 2))
    out: dict[str, dict[str, float]] = {name: {} for name in metric_names(ks, metrics)}
    for qid, judged in qrels.items():
        for doc, rel in judged.items():
            if rel < 0:
                raise ValueError(f"query {qid!r}, document {doc!r}: relevance {rel!r} is negative")
        relevant = sorted((rel for rel in judged.values() if rel > 0), reverse=True)
        gains = np.zeros(depth)
        ideal = np.zeros(depth)
        top = ranked_ids(run.get(qid, {}))[:depth]
        gains[:len(top)] = [judged.get(doc, 0) for doc in top]
        ideal[:min(len(relevant), depth)] = relevant[:depth]
        hits = np.cumsum(gains > 0)
        dcg = np.cumsum(gains / discounts)
        idcg = np.cumsum(ideal / discounts)
        found = np.flatnonzero(gains > 0)
        first = int(found[0]) + 1 if found.size else None
        for k in ks:
            values = {"p": 0.0, "recall": 0.0, "mrr": 0.0, "ndcg": 0.0}
            if relevant:
                values["p"] = float(hits[k - 1]) / k
                values["recall"] = float(hits[k - 1]) / len(relevant)
                values["mrr"] = 1 / first if first is not None and first <= k else 0.0
                values["ndcg"] = float(dcg[k - 1] / idcg[k - 1])
            for m in metrics:
                out[f"{m}@{k}"][qid] = values[m]
    return out


def evaluate(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]],
             ks: Sequence[int] = DEFAULT_KS, metrics: Sequence[str] = METRICS) -> dict[str, float]:
    """Mean of each :func:`per_query` metric over the queries of `qrels`: ``{"ndcg@10": 0.52, ...}``.

    Raises:
        ValueError: `qrels` has no query, or as :func:`per_query`.
    """
    if not qrels:
        raise ValueError("qrels has no query to evaluate")
    return {name: float(np.mean(list(values.values())))
            for name, values in per_query(qrels, run, ks, metrics).items()}


def _check(ks: Sequence[int], metrics: Sequence[str]) -> None:
    if not ks:
        raise ValueError("no cut-off given")
    if not metrics:
        raise ValueError("no metric given")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"cut-off {k!r} is not a positive integer")
    for m in metrics:
        if m not in METRICS:
            raise ValueError(f"metric {m!r} is not one of {METRICS}")


def judged_at_k(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]],
                ks: Sequence[int] = DEFAULT_KS) -> dict[str, dict[str, float]]:
    """The share of each query's top k that has a gold label of any grade, 0 included: ``{"judged@10": {qid: v}}``.

    ``judged@k = #{i <= min(k, n) : doc_i is in qrels[q]} / k`` (Buckley & Voorhees 2004, TREC's "judged@k"), with
    n the length of the ranking. A ranking shorter than k still divides by k, as P@k does: the missing ranks are
    not judged documents, so a 3-document ranking with every document labelled has judged@10 = 0.3. The queries
    are those of `qrels` (a query absent from the run scores 0; so does one with no judgment at all); ties as
    :func:`ranked_ids`.

    Raises:
        ValueError: a bad cut-off, or a NaN score.
    """
    _check(ks, ("ndcg",))
    out: dict[str, dict[str, float]] = {f"judged@{k}": {} for k in ks}
    for qid, judged in qrels.items():
        flags = np.array([doc in judged for doc in ranked_ids(run.get(qid, {}))[:max(ks)]], dtype=bool)
        hits = np.concatenate([[0], np.cumsum(flags)])
        for k in ks:
            out[f"judged@{k}"][qid] = float(hits[min(k, flags.size)]) / k
    return out


def unjudged_pairs(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]],
                   k: int = 10) -> set[tuple[str, str]]:
    """The distinct (query, document) pairs in the top `k` of the queries of `qrels` that have no gold label: what
    an annotator would rate to make the run's metrics at `k` exact.

    Raises:
        ValueError: a bad cut-off, or a NaN score.
    """
    _check((k,), ("ndcg",))
    return {(qid, doc) for qid, judged in qrels.items()
            for doc in ranked_ids(run.get(qid, {}))[:k] if doc not in judged}


def condensed_run(qrels: Mapping[str, Mapping[str, int]],
                  run: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """The run of the queries of `qrels` with every unjudged document removed (Sakai 2007's "condensed list"): the
    judged documents keep their scores, so their order, and move up into the places the unjudged ones left."""
    return {qid: {doc: score for doc, score in run.get(qid, {}).items() if doc in judged}
            for qid, judged in qrels.items()}


def coverage(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]],
             ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """Means over the queries of `qrels` of condensed nDCG and judged@k, at each cut-off:
    ``{"ndcg_condensed@10": 0.61, ..., "judged@10": 0.74, ...}``.

    ``ndcg_condensed@k`` is :func:`per_query`'s nDCG@k of :func:`condensed_run` (Sakai 2007): unjudged documents are
    left out rather than counted as misses, so it is never below nDCG@k, and equals it when the top k is fully
    judged. nDCG@k (unjudged = not relevant) is a lower bound of what complete labels would give; the condensed
    value is what the labels that exist say. ``judged@k`` is :func:`judged_at_k`.

    Raises:
        ValueError: `qrels` has no query, or as :func:`per_query`.
    """
    if not qrels:
        raise ValueError("qrels has no query to evaluate")
    condensed = per_query(qrels, condensed_run(qrels, run), ks, ("ndcg",))
    out = {f"ndcg_condensed@{k}": float(np.mean(list(condensed[f"ndcg@{k}"].values()))) for k in ks}
    out.update({name: float(np.mean(list(values.values()))) for name, values in judged_at_k(qrels, run, ks).items()})
    return out
