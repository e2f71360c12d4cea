"""Baseline vs candidate run: per-metric change, paired significance tests and the Holm correction.

:func:`compare_models` scores both runs per query (:func:`studio.evaluation.metrics.per_query`), tests each
metric@k with :func:`paired_randomization` and corrects the p-values with :func:`holm` across all the
metric@k rows of the comparison.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from studio.config import TIE_TOLERANCE
from studio.evaluation.metrics import DEFAULT_KS, METRICS, metric_names, per_query, primary_metric

_CHUNK_CELLS = 1 << 22


def _pair(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"paired scores must be two flat sequences of one length, not {x.shape} and {y.shape}")
    if x.size == 0:
        raise ValueError("no paired scores")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("paired scores must be finite")
    return y - x


def paired_randomization(a: Sequence[float], b: Sequence[float], n_resamples: int = 10000,
                         seed: int = 42) -> float:
    """Two-sided p-value of Fisher's paired randomization test on ``mean(b - a)``.

    Under the null the two systems are exchangeable per query, so each difference ``d_i = b_i - a_i`` keeps
    or flips its sign with probability 1/2 (ranx's ``"fisher"`` test swaps the pair the same way). With
    ``D* = |mean(s * d)|`` for random signs s and ``D = |mean(d)|``:
    ``p = (#{D* >= D} + 1) / (n_resamples + 1)``. Deterministic for a given `seed`; identical inputs give
    ``p = 1.0``.

    Raises:
        ValueError: lengths differ, inputs are empty or not finite, or ``n_resamples < 1``.
    """
    d = _pair(a, b)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, not {n_resamples}")
    n = d.size
    observed = abs(d.mean())
    # Resampled means are summed in another order than `observed`; without the slack, sign patterns whose
    # mean equals the observed one exactly (common with discrete metrics) could be missed by rounding.
    threshold = observed - 1e-9 * float(np.abs(d).max())
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // n)
    count = 0
    for start in range(0, n_resamples, chunk):
        rows = min(chunk, n_resamples - start)
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(rows, n), dtype=np.int8)
        count += int(np.count_nonzero(np.abs(signs @ d) / n >= threshold))
    return (count + 1) / (n_resamples + 1)


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided paired Student's t-test p-value (``scipy.stats.ttest_rel``); 1.0 when every ``b_i == a_i``.

    Raises:
        ValueError: lengths differ, inputs are empty or not finite, or fewer than two pairs.
    """
    from scipy.stats import ttest_rel  # scipy.stats: ~1 s to import

    d = _pair(a, b)
    if not np.any(d):
        return 1.0
    if d.size < 2:
        raise ValueError("the t-test needs at least two pairs")
    return float(ttest_rel(b, a).pvalue)


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm–Bonferroni adjusted p-values, same keys.

    With the m p-values sorted ascending, ``p_(1) <= ... <= p_(m)``:
    ``adj_(i) = min(1, max_{j <= i} (m - j + 1) * p_(j))``.

    Raises:
        ValueError: a p-value outside [0, 1].
    """
    for name, p in p_values.items():
        if not 0 <= p <= 1:
            raise ValueError(f"p-value {name!r} = {p!r} is not in [0, 1]")
    m = len(p_values)
    adjusted: dict[str, float] = {}
    running = 0.0
    for i, (name, p) in enumerate(sorted(p_values.items(), key=lambda item: item[1])):
        running = max(running, min(1.0, (m - i) * p))
        adjusted[name] = running
    return {name: adjusted[name] for name in p_values}


def min_queries_for_significance(n_tests: int, alpha: float = 0.05) -> int:
    """The fewest queries with which any of `n_tests` Holm-corrected randomisation tests can be significant.

    With n queries the smallest two-sided p-value of :func:`paired_randomization` is about ``2 / 2**n`` (every
    query changes the same way), and :func:`holm` multiplies the smallest p-value by `n_tests`; below the
    returned n no difference, however large, can reach `alpha`.
    """
    n = 1
    while n_tests * 2.0 ** (1 - n) >= alpha:
        n += 1
    return n


@dataclass
class MetricComparison:
    """One metric@k: means of `a` (baseline) and `b`, their change and its significance.

    `relative` is ``(b - a) / a``, None when ``a == 0``; `significant` is ``p_holm < alpha``; wins, ties and
    losses count queries where b beats, matches (``|b - a| < 1e-12``) or trails a.
    """

    metric: str
    a: float
    b: float
    delta: float
    relative: float | None
    p_value: float
    p_holm: float
    significant: bool
    wins: int
    ties: int
    losses: int


@dataclass
class Comparison:
    """Rows in metric, then cut-off order; `per_query_delta` is the primary metric's b - a per query."""

    rows: list[MetricComparison]
    n_queries: int
    alpha: float
    per_query_delta: dict[str, float]

    def as_dict(self) -> dict:
        """Plain JSON-ready dict: ``n_queries``, ``alpha``, ``primary_metric``, ``rows``, ``per_query_delta``."""
        return {"n_queries": self.n_queries, "alpha": self.alpha, "primary_metric": primary_metric,
                "rows": [asdict(row) for row in self.rows], "per_query_delta": dict(self.per_query_delta)}


def compare_models(qrels: Mapping[str, Mapping[str, int]], run_a: Mapping[str, Mapping[str, float]],
                   run_b: Mapping[str, Mapping[str, float]], ks: Sequence[int] = DEFAULT_KS,
                   metrics: Sequence[str] = METRICS, alpha: float = 0.05, n_resamples: int = 10000,
                   seed: int = 42) -> Comparison:
    """Baseline `run_a` vs `run_b` on every metric@k over the queries of `qrels`.

    Each row's `p_value` is :func:`paired_randomization` on the per-query values (same `seed` for every
    row); `p_holm` corrects it with :func:`holm` across all the rows of this comparison. ranx and most IR
    toolkits leave the many metric@k tests uncorrected, so they flag more "significant" rows than this.
    `per_query_delta` is :data:`~studio.evaluation.metrics.primary_metric` (ndcg@10) whether or not it is
    among the rows.

    Raises:
        ValueError: `qrels` has no query, alpha is not in (0, 1), or as the metric and test functions.
    """
    if not qrels:
        raise ValueError("qrels has no query to compare on")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), not {alpha!r}")
    names = metric_names(ks, metrics)
    scores_a = per_query(qrels, run_a, ks, metrics)
    scores_b = per_query(qrels, run_b, ks, metrics)
    qids = list(qrels)
    raw: dict[str, float] = {}
    partial: list[dict] = []
    for name in names:
        a = np.array([scores_a[name][q] for q in qids])
        b = np.array([scores_b[name][q] for q in qids])
        diff = b - a
        mean_a, mean_b = float(a.mean()), float(b.mean())
        raw[name] = paired_randomization(a, b, n_resamples, seed)
        partial.append(dict(
            metric=name, a=mean_a, b=mean_b, delta=mean_b - mean_a,
            relative=None if mean_a == 0 else (mean_b - mean_a) / mean_a, p_value=raw[name],
            wins=int(np.sum(diff >= TIE_TOLERANCE)), ties=int(np.sum(np.abs(diff) < TIE_TOLERANCE)),
            losses=int(np.sum(diff <= -TIE_TOLERANCE))))
    adjusted = holm(raw)
    rows = [MetricComparison(**row, p_holm=adjusted[row["metric"]], significant=adjusted[row["metric"]] < alpha)
            for row in partial]
    primary_name, k = primary_metric.split("@")
    primary_a = per_query(qrels, run_a, (int(k),), (primary_name,))[primary_metric]
    primary_b = per_query(qrels, run_b, (int(k),), (primary_name,))[primary_metric]
    return Comparison(rows=rows, n_queries=len(qids), alpha=alpha,
                      per_query_delta={q: primary_b[q] - primary_a[q] for q in qids})
