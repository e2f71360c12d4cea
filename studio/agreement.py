"""Inter-annotator agreement on 3-level relevance ratings (2 relevant, 1 partial, 0 irrelevant).

Pure functions over label sequences: confusion matrix, percent agreement, Cohen's kappa (unweighted,
linear, quadratic), Gwet's AC1, the Landis & Koch interpretation band, the kappa gate, and
:func:`agreement_report`, which turns the stored ratings into pooled and per-annotator-pair statistics.
Metrics that are undefined for the input (empty, or no expected disagreement) are ``None``, never NaN.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from studio.config import KAPPA_GATE

LABELS: tuple[int, ...] = (0, 1, 2)
_WEIGHTS = (None, "linear", "quadratic")


def confusion_matrix(a: Sequence[int], b: Sequence[int],
                     labels: Sequence[int] = LABELS) -> list[list[int]]:
    """Counts of label pairs: ``m[i][j]`` = items rater `a` labelled ``labels[i]`` and `b` ``labels[j]``.

    Raises:
        ValueError: `a` and `b` differ in length, or a label is not in `labels`.
    """
    if len(a) != len(b):
        raise ValueError(f"rating sequences differ in length: {len(a)} != {len(b)}")
    index = {label: i for i, label in enumerate(labels)}
    m = [[0] * len(labels) for _ in labels]
    for x, y in zip(a, b):
        for v in (x, y):
            if v not in index:
                raise ValueError(f"label {v!r} is not one of {tuple(labels)}")
        m[index[x]][index[y]] += 1
    return m


def percent_agreement(a: Sequence[int], b: Sequence[int]) -> float | None:
    """Observed agreement ``p_o = #{i : a_i == b_i} / n``; ``None`` for empty input.

    Raises:
        ValueError: `a` and `b` differ in length.
    """
    if len(a) != len(b):
        raise ValueError(f"rating sequences differ in length: {len(a)} != {len(b)}")
    if not a:
        return None
    return sum(x == y for x, y in zip(a, b)) / len(a)


def cohen_kappa(a: Sequence[int], b: Sequence[int], weights: str | None = None,
                labels: Sequence[int] = LABELS) -> float | None:
    """Cohen's kappa ``1 - sum(W * O) / sum(W * E)``, O the confusion matrix, E = outer(rowsums, colsums) / n.

    The disagreement weights are ``W_ij = [i != j]`` (unweighted), ``|i - j|`` (linear) or ``(i - j)^2``
    (quadratic), i and j being indices into `labels`; this equals
    ``sklearn.metrics.cohen_kappa_score(a, b, labels=list(labels), weights=weights)`` where that is defined.

    Returns:
        Kappa, or ``None`` when undefined: empty input, or ``sum(W * E) == 0`` (e.g. both raters used the
        same single category).

    Raises:
        ValueError: lengths differ, a label is not in `labels`, or `weights` is not None/linear/quadratic.
    """
    if weights not in _WEIGHTS:
        raise ValueError(f"weights must be one of {_WEIGHTS}, not {weights!r}")
    observed = np.array(confusion_matrix(a, b, labels), dtype=float)
    if not a:
        return None
    rows, cols = observed.sum(axis=1), observed.sum(axis=0)
    # outer(cols, rows) is E transposed; W is symmetric so the sums agree, and it is scikit-learn's
    # operation order, so results match it bit for bit rather than merely to rounding.
    expected = np.outer(cols, rows) / np.sum(cols)
    k = len(labels)
    if weights is None:
        w = np.ones((k, k)) - np.eye(k)
    else:
        w = np.abs(np.subtract.outer(np.arange(k), np.arange(k))).astype(float)
        if weights == "quadratic":
            w = w**2
    expected_disagreement = np.sum(w * expected)
    if expected_disagreement == 0:
        return None
    return float(1 - np.sum(w * observed) / expected_disagreement)


def gwet_ac1(a: Sequence[int], b: Sequence[int], labels: Sequence[int] = LABELS) -> float | None:
    """Gwet's AC1 (unweighted): ``(p_a - p_e) / (1 - p_e)``.

    ``p_a`` is the percent agreement, ``p_e = 1/(q-1) * sum_k pi_k (1 - pi_k)`` with q = len(labels) and
    ``pi_k`` the mean of the two raters' proportions of label k.

    Returns:
        AC1, or ``None`` for empty input, fewer than two labels, or ``p_e == 1``.

    Raises:
        ValueError: lengths differ or a label is not in `labels`.
    """
    m = np.array(confusion_matrix(a, b, labels), dtype=float)
    q = len(labels)
    if not a or q < 2:
        return None
    n = len(a)
    pi = (m.sum(axis=1) + m.sum(axis=0)) / (2 * n)
    pe = float(np.sum(pi * (1 - pi)) / (q - 1))
    if pe == 1:
        return None
    pa = float(np.trace(m)) / n
    return (pa - pe) / (1 - pe)


def landis_koch_band(kappa: float | None) -> str:
    """Landis & Koch (1977) band, as a catalogue key suffix.

    ``undefined`` (None), ``poor`` (< 0), ``slight`` (<= 0.20), ``fair`` (<= 0.40), ``moderate`` (<= 0.60),
    ``substantial`` (<= 0.80), otherwise ``almost_perfect``.
    """
    if kappa is None:
        return "undefined"
    if kappa < 0:
        return "poor"
    for upper, band in ((0.20, "slight"), (0.40, "fair"), (0.60, "moderate"), (0.80, "substantial")):
        if kappa <= upper:
            return band
    return "almost_perfect"


def passes_gate(kappa: float | None) -> bool:
    """Whether `kappa` reaches the quality gate: ``kappa >= KAPPA_GATE`` (0.6); ``None`` fails."""
    return kappa is not None and kappa >= KAPPA_GATE


@dataclass(frozen=True)
class RatingRow:
    """One stored rating: `annotator` gave `rating` to query/document pair `pair_id`."""

    pair_id: int
    annotator: str
    rating: int


@dataclass
class PairStats:
    """Agreement between two raters over the `n` pairs both rated.

    `annotators` is the sorted name pair, or ``("*", "*")`` for the pooled first-vs-second statistics;
    confusion rows are the first rater's labels, columns the second's.
    """

    annotators: tuple[str, str]
    n: int
    observed: float | None
    kappa: float | None
    kappa_linear: float | None
    kappa_quadratic: float | None
    ac1: float | None
    band: str
    confusion: list[list[int]]
    passes_gate: bool


@dataclass
class AgreementReport:
    """Pooled and per-annotator-pair agreement over the double-rated pairs."""

    pooled: PairStats
    by_pair: list[PairStats]
    disagreements: list[int]
    double_rated: int
    single_rated: int


def pair_stats(annotators: tuple[str, str], a: Sequence[int], b: Sequence[int]) -> PairStats:
    """All metrics for rater `a` vs rater `b` (see :class:`PairStats`)."""
    kappa = cohen_kappa(a, b)
    return PairStats(
        annotators=annotators, n=len(a), observed=percent_agreement(a, b), kappa=kappa,
        kappa_linear=cohen_kappa(a, b, "linear"), kappa_quadratic=cohen_kappa(a, b, "quadratic"),
        ac1=gwet_ac1(a, b), band=landis_koch_band(kappa), confusion=confusion_matrix(a, b),
        passes_gate=passes_gate(kappa))


def agreement_report(rows: Iterable[RatingRow]) -> AgreementReport:
    """Agreement statistics from ratings ordered by rating time.

    Pooled: every double-rated pair, first row's rating vs second row's. By pair: for each unordered
    annotator pair that shares at least one pair, sorted names as rater order; listed by n descending,
    then names.

    Raises:
        ValueError: a pair has more than two ratings, or two ratings by the same annotator (names the
            pair_id), or a rating is not in :data:`LABELS`.
    """
    by_item: dict[int, list[RatingRow]] = {}
    for row in rows:
        by_item.setdefault(row.pair_id, []).append(row)

    first: list[int] = []
    second: list[int] = []
    shared: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
    disagreements: list[int] = []
    single = 0
    for pair_id, ratings in by_item.items():
        if len(ratings) > 2:
            raise ValueError(f"pair {pair_id} has {len(ratings)} ratings; at most 2 are allowed")
        if len(ratings) == 1:
            single += 1
            continue
        r1, r2 = ratings
        if r1.annotator == r2.annotator:
            raise ValueError(f"pair {pair_id} was rated twice by annotator {r1.annotator!r}")
        first.append(r1.rating)
        second.append(r2.rating)
        if r1.rating != r2.rating:
            disagreements.append(pair_id)
        lo, hi = sorted((r1, r2), key=lambda r: r.annotator)
        xs, ys = shared.setdefault((lo.annotator, hi.annotator), ([], []))
        xs.append(lo.rating)
        ys.append(hi.rating)

    by_pair = [pair_stats(names, xs, ys) for names, (xs, ys) in shared.items()]
    by_pair.sort(key=lambda s: (-s.n, s.annotators))
    return AgreementReport(pooled=pair_stats(("*", "*"), first, second), by_pair=by_pair,
                           disagreements=sorted(disagreements), double_rated=len(first),
                           single_rated=single)
