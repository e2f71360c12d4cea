"""Evaluation: metrics against ranx, hand examples, significance tests, Holm, comparisons and error buckets."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from ranx import Qrels, Run, compare, evaluate as ranx_evaluate
from scipy.stats import ttest_rel

from studio.evaluation.compare import (
    Comparison, compare_models, holm, paired_randomization, paired_t_test,
)
from studio.evaluation.errors import BUCKETS, ErrorReport, analyse, changes, classify
from studio.evaluation.metrics import (
    DEFAULT_KS, METRICS, evaluate, metric_names, per_query, primary_metric, ranked_ids,
)

RANX_NAMES = {"p": "precision", "recall": "recall", "mrr": "mrr", "ndcg": "ndcg"}
KS = (1, 3, 5, 10, 20, 30)


@pytest.fixture(scope="module", autouse=True)
def ranx_warm_up():
    """Loads ranx's numba kernels once, so the first test does not pay for it alone."""
    ranx_evaluate(Qrels({"q": {"d": 1}}), Run({"q": {"d": 1.0}}), ["precision@1", "recall@1", "mrr@1", "ndcg@1"])


def _random_case(seed: int) -> tuple[dict, dict]:
    """Graded qrels and a run with every awkward case ranx has a convention for.

    Queries with only 0s or no judgments, qrels queries missing from the run, an empty ranking, run queries
    not in qrels, unjudged documents, rankings shorter than the largest k, and tied scores. Ties are kept to
    rankings of at most 15 documents: up to there a ranx Run orders ties by insertion, and inserting in doc
    id order makes that our rule; beyond, numba's unstable quicksort shuffles them.
    """
    rng = np.random.default_rng(seed)
    pool = [f"d{j:02d}" for j in range(40)]
    qrels: dict[str, dict[str, int]] = {}
    for i in range(int(rng.integers(15, 35))):
        judged = rng.choice(pool, size=int(rng.integers(1, 12)), replace=False)
        qrels[f"q{i:02d}"] = {str(d): int(rng.choice(3, p=[0.5, 0.3, 0.2])) for d in judged}
    qrels["zeros"] = {"d00": 0, "d01": 0}
    qrels["unjudged"] = {}
    run: dict[str, dict[str, float]] = {}
    for qid in qrels:
        if rng.random() < 0.15:
            continue
        length = int(rng.integers(0, 26))
        docs = rng.choice(pool, size=length, replace=False)
        scores = rng.random(length)
        if length <= 15:
            scores = np.round(scores * 4) / 4
        run[qid] = {str(d): float(s) for d, s in zip(docs, scores)}
    run["not_in_qrels"] = {"d05": 1.0, "d06": 0.5}
    return qrels, run


def _ranx_per_query(qrels: dict, run: dict, ks: tuple[int, ...]) -> tuple[dict, dict]:
    names = [f"{RANX_NAMES[m]}@{k}" for m in METRICS for k in ks]
    ranx_run = Run({q: dict(sorted(docs.items())) for q, docs in run.items()})
    means = ranx_evaluate(Qrels(qrels), ranx_run, names, make_comparable=True)
    return means, ranx_run.scores


@pytest.mark.parametrize("seed", range(12))
def test_metrics_equal_ranx_on_random_graded_data(seed):
    qrels, run = _random_case(seed)
    ours = per_query(qrels, run, KS)
    means = evaluate(qrels, run, KS)
    ranx_means, ranx_scores = _ranx_per_query(qrels, run, KS)
    for m in METRICS:
        for k in KS:
            name, ranx_name = f"{m}@{k}", f"{RANX_NAMES[m]}@{k}"
            assert set(ours[name]) == set(qrels)
            for qid in qrels:
                assert ours[name][qid] == pytest.approx(ranx_scores[ranx_name][qid], abs=1e-9), (name, qid)
            assert means[name] == pytest.approx(ranx_means[ranx_name], abs=1e-9)


def test_ranx_conventions_we_rely_on():
    qrels = {"q1": {"a": 2, "b": 0}, "q2": {"x": 0}, "q3": {"c": 1}}
    run = {"q1": {"z": 0.9, "b": 0.5, "a": 0.1}, "q2": {"x": 1.0}, "extra": {"c": 1.0}}
    with pytest.raises(AssertionError, match="make_comparable"):
        ranx_evaluate(Qrels(qrels), Run(run), "ndcg@5")
    means, scores = _ranx_per_query(qrels, run, (5,))
    # Queries of qrels only; missing (q3) and all-zero (q2) queries score 0 and count in the mean.
    assert set(scores["ndcg@5"]) == set(qrels)
    assert scores["ndcg@5"]["q2"] == scores["ndcg@5"]["q3"] == 0
    assert means["ndcg@5"] == pytest.approx(0.5 / 3)
    # A plain dict run reverses ties, a Run keeps insertion order up to 15 docs and not beyond.
    tie = {"q": {"a": 1.0, "b": 1.0}}
    assert ranx_evaluate({"q": {"b": 1}}, tie, "mrr@5") == 1.0
    assert ranx_evaluate(Qrels({"q": {"b": 1}}), Run(tie), "mrr@5") == 0.5
    many = [f"d{i:02d}" for i in range(16)]
    assert list(Run({"q": dict.fromkeys(many, 1.0)}).run["q"]) != many


def test_hand_example():
    # Ranking x (unjudged), b (1), c (0), a (2); d (1) not retrieved. R = 3.
    qrels = {"q": {"a": 2, "b": 1, "c": 0, "d": 1}}
    run = {"q": {"x": 0.9, "b": 0.8, "c": 0.7, "a": 0.6}}
    got = evaluate(qrels, run, ks=(3, 10))
    dcg = 1 / math.log2(3)
    idcg = 2 + 1 / math.log2(3) + 1 / 2
    assert got["ndcg@3"] == pytest.approx(dcg / idcg)
    assert got["mrr@3"] == pytest.approx(1 / 2)
    assert got["recall@3"] == pytest.approx(1 / 3)
    assert got["p@3"] == pytest.approx(1 / 3)
    # K beyond the ranking: P@10 still divides by 10.
    assert got["p@10"] == pytest.approx(2 / 10)
    assert got["recall@10"] == pytest.approx(2 / 3)
    assert got["ndcg@10"] == pytest.approx((dcg + 2 / math.log2(5)) / idcg)


def test_queries_without_relevant_documents_or_ranking_score_zero_and_count():
    qrels = {"good": {"a": 1}, "zeros": {"a": 0}, "missing": {"a": 2}}
    run = {"good": {"a": 1.0}, "zeros": {"a": 1.0}, "other": {"a": 1.0}}
    scores = per_query(qrels, run, ks=(1,))
    assert list(scores) == ["p@1", "recall@1", "mrr@1", "ndcg@1"]
    for values in scores.values():
        assert values == {"good": 1.0, "zeros": 0.0, "missing": 0.0}
    assert evaluate(qrels, run, ks=(1,))["ndcg@1"] == pytest.approx(1 / 3)


def test_ties_break_by_doc_id_ascending():
    assert ranked_ids({"b": 1.0, "c": 2.0, "a": 1.0}) == ["c", "a", "b"]
    assert evaluate({"q": {"b": 1}}, {"q": {"b": 1.0, "a": 1.0}}, ks=(1,))["mrr@1"] == 0.0


def test_names_defaults_and_validation():
    assert primary_metric == "ndcg@10"
    assert DEFAULT_KS == (1, 5, 10, 20)
    assert metric_names((5, 10), ("mrr", "ndcg")) == ["mrr@5", "mrr@10", "ndcg@5", "ndcg@10"]
    assert set(evaluate({"q": {"a": 1}}, {"q": {"a": 1.0}})) == set(metric_names())
    with pytest.raises(ValueError, match="metric"):
        per_query({"q": {"a": 1}}, {}, metrics=("map",))
    with pytest.raises(ValueError, match="cut-off"):
        per_query({"q": {"a": 1}}, {}, ks=(0,))
    with pytest.raises(ValueError, match="negative"):
        per_query({"q": {"a": -1}}, {})
    with pytest.raises(ValueError, match="NaN"):
        per_query({"q": {"a": 1}}, {"q": {"a": float("nan")}})
    with pytest.raises(ValueError, match="no query"):
        evaluate({}, {})


def test_randomization_identical_runs_give_one():
    a = np.random.default_rng(0).random(30)
    assert paired_randomization(a, a) == 1.0
    assert paired_t_test(a, a) == 1.0


def test_randomization_detects_consistent_improvement():
    rng = np.random.default_rng(1)
    a = rng.uniform(0.2, 0.6, 50)
    b = a + rng.uniform(0.05, 0.15, 50)
    assert paired_randomization(a, b) < 0.01
    assert paired_randomization(a, b) == pytest.approx(1 / 10001)


def test_randomization_noise_is_not_significant():
    rng = np.random.default_rng(2)
    a, b = rng.random(50), rng.random(50)
    assert paired_randomization(a, b) > 0.05


def test_randomization_is_deterministic_per_seed_and_symmetric():
    rng = np.random.default_rng(3)
    a = rng.random(40)
    b = a + rng.normal(0.03, 0.1, 40)
    p = paired_randomization(a, b, seed=7)
    assert paired_randomization(a, b, seed=7) == p
    assert paired_randomization(b, a, seed=7) == p
    assert paired_randomization(a, b, seed=8) != p
    assert 0 < p <= 1


def test_randomization_counts_exact_ties_with_discrete_scores():
    # Differences +-1 only: |mean| of a sign pattern equals the observed one exactly for many patterns.
    d = np.array([1.0] * 6 + [-1.0] * 2)
    exact = sum(abs(sum(d * s)) >= 4 for s in _all_signs(len(d))) / 2 ** len(d)
    assert paired_randomization(np.zeros(8), d / 5, n_resamples=100000) == pytest.approx(exact, abs=0.01)


def _all_signs(n: int) -> list[np.ndarray]:
    return [np.array([1 if (i >> j) & 1 else -1 for j in range(n)]) for i in range(2 ** n)]


def test_randomization_close_to_ranx_fisher():
    rng = np.random.default_rng(0)
    qrels = {f"q{i:02d}": {f"d{j:02d}": int(rng.choice(3, p=[0.6, 0.25, 0.15])) for j in range(20)}
             for i in range(60)}
    for judged in qrels.values():
        judged["d00"] = 2
    run_a = {q: {d: float(rng.random()) for d in sorted(qrels[q])} for q in qrels}
    run_b = {q: {d: s + 0.02 * qrels[q][d] + 0.3 * float(rng.random()) for d, s in run_a[q].items()}
             for q in qrels}
    report = compare(Qrels(qrels), [Run(run_a, name="a"), Run(run_b, name="b")], "ndcg@10",
                     stat_test="fisher", n_permutations=10000)
    ranx_p = report.comparisons["a", "b"]["ndcg@10"]["p_value"]
    a = per_query(qrels, run_a, (10,), ("ndcg",))["ndcg@10"]
    b = per_query(qrels, run_b, (10,), ("ndcg",))["ndcg@10"]
    ours = paired_randomization([a[q] for q in qrels], [b[q] for q in qrels])
    assert 0.05 < ours < 0.2
    assert ours == pytest.approx(ranx_p, abs=0.02)


def test_randomization_validation():
    with pytest.raises(ValueError, match="length"):
        paired_randomization([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="no paired"):
        paired_randomization([], [])
    with pytest.raises(ValueError, match="n_resamples"):
        paired_randomization([0.1], [0.2], n_resamples=0)


def test_t_test_matches_scipy():
    rng = np.random.default_rng(4)
    a, b = rng.random(25), rng.random(25)
    assert paired_t_test(a, b) == pytest.approx(ttest_rel(a, b).pvalue)


def test_holm_known_example():
    adjusted = holm({"x": 0.01, "y": 0.04, "z": 0.03})
    assert list(adjusted) == ["x", "y", "z"]
    assert adjusted == pytest.approx({"x": 0.03, "y": 0.06, "z": 0.06})


def test_holm_is_monotone_and_capped():
    assert holm({"a": 0.5, "b": 0.6, "c": 0.001}) == pytest.approx({"a": 1.0, "b": 1.0, "c": 0.003})
    assert holm({}) == {}
    with pytest.raises(ValueError):
        holm({"a": 1.5})


def test_compare_models_wins_ties_losses_and_relative():
    qrels = {"q1": {"a": 1}, "q2": {"a": 1}, "q3": {"a": 1}, "q4": {"a": 1}}
    base = {"q1": {"a": 0.1, "x": 0.9}, "q2": {"a": 0.9, "x": 0.1}, "q3": {"a": 0.1, "x": 0.9},
            "q4": {"a": 0.1, "x": 0.9}}
    cand = {"q1": {"a": 0.9, "x": 0.1}, "q2": {"a": 0.1, "x": 0.9}, "q3": {"a": 0.9, "x": 0.1},
            "q4": {"a": 0.1, "x": 0.9}}
    result = compare_models(qrels, base, cand, ks=(1, 10), metrics=("p", "mrr"), n_resamples=2000)
    assert isinstance(result, Comparison)
    assert [row.metric for row in result.rows] == ["p@1", "p@10", "mrr@1", "mrr@10"]
    assert result.n_queries == 4 and result.alpha == 0.05
    p1 = result.rows[0]
    assert (p1.wins, p1.ties, p1.losses) == (2, 1, 1)
    assert (p1.a, p1.b, p1.delta) == pytest.approx((0.25, 0.5, 0.25))
    assert p1.relative == pytest.approx(1.0)
    p10 = result.rows[1]
    assert (p10.wins, p10.ties, p10.losses) == (0, 4, 0)
    assert p10.p_value == 1.0 and p10.relative == 0.0
    for row in result.rows:
        assert row.p_value <= row.p_holm <= 1
        assert row.significant == (row.p_holm < result.alpha)
    assert result.per_query_delta == pytest.approx({"q1": 1 - 1 / math.log2(3), "q2": -(1 - 1 / math.log2(3)),
                                                    "q3": 1 - 1 / math.log2(3), "q4": 0.0})
    assert json.loads(json.dumps(result.as_dict()))["rows"][0]["metric"] == "p@1"


def test_compare_models_relative_is_none_when_baseline_is_zero():
    qrels = {"q1": {"a": 2}, "q2": {"b": 1}}
    empty = {}
    good = {"q1": {"a": 1.0}, "q2": {"b": 1.0}}
    result = compare_models(qrels, empty, good, ks=(5,), metrics=("ndcg",), n_resamples=500)
    (row,) = result.rows
    assert row.a == 0 and row.b == 1 and row.relative is None
    assert (row.wins, row.ties, row.losses) == (2, 0, 0)


def test_compare_models_holm_spans_all_rows():
    rng = np.random.default_rng(5)
    qrels, run_a = _random_case(5)
    run_b = {q: {d: s + 0.5 * qrels.get(q, {}).get(d, 0) * rng.random() for d, s in docs.items()}
             for q, docs in run_a.items()}
    result = compare_models(qrels, run_a, run_b, n_resamples=2000)
    raw = {row.metric: row.p_value for row in result.rows}
    assert {row.metric: row.p_holm for row in result.rows} == pytest.approx(holm(raw))
    assert len(result.rows) == len(METRICS) * len(DEFAULT_KS)


@pytest.mark.parametrize("ranked, expected", [
    (["x1", "x2", "x3"], "complete_failure"),
    (["x1", "x2", "r1", "x3"], "partial_failure"),
    (["x1", "x2", "x3", "x4", "r1"], "partial_failure"),  # also first relevant at rank 5: partial wins
    (["x1", "x2", "x3", "x4", "r1", "r2", "r3", "r4"], "ranking_issue"),
    (["x1", "x2", "r1", "r2"], None),
    (["x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "r1"], "complete_failure"),
])
def test_classify_buckets_and_precedence(ranked, expected):
    assert classify({"r1": 2, "r2": 1, "r3": 1, "r4": 1, "x1": 0}, ranked) == expected


def test_classify_edge_cases():
    assert classify({"r": 1}, ["x1", "x2", "x3", "r"]) == "ranking_issue"
    assert classify({"r": 1}, ["x1", "x2", "r"]) is None
    assert classify({"r": 1, "s": 1}, ["r"]) is None  # exactly half is not a partial failure
    assert classify({"r": 1}, ["x1", "r"], k=1) == "complete_failure"
    assert classify({"x": 0}, []) is None
    assert classify({}, ["a"]) is None
    with pytest.raises(ValueError):
        classify({"r": 1}, ["r"], k=0)


def test_analyse_report():
    qrels = {"fine": {"a": 2}, "late": {"a": 1}, "none": {"a": 1}, "missing": {"a": 1, "b": 1},
             "zeros": {"a": 0}}
    fillers = {f"x{i}": 1 - i / 100 for i in range(12)}
    run = {"fine": {"a": 2.0, **fillers}, "late": {"x0": 0.9, "x1": 0.8, "x2": 0.7, "a": 0.6},
           "none": {**fillers, "a": 0.1}, "zeros": {"a": 1.0}}
    report = analyse(qrels, run)
    assert isinstance(report, ErrorReport)
    assert report.by_query == {"fine": None, "late": "ranking_issue", "none": "complete_failure",
                               "missing": "complete_failure", "zeros": None}
    assert report.counts == {"complete_failure": 2, "partial_failure": 0, "ranking_issue": 1}
    assert list(report.counts) == list(BUCKETS)
    assert [row["query_id"] for row in report.worst] == ["missing", "none", "late", "fine"]
    missing, none, late, fine = report.worst
    assert missing["first_relevant_rank"] is None and missing["top"] == []
    assert none["first_relevant_rank"] == 13 and none["ndcg@10"] == 0.0
    assert none["top"] == ["x0", "x1", "x2", "x3", "x4"]
    assert late["ndcg@10"] == pytest.approx(1 / math.log2(5)) and late["bucket"] == "ranking_issue"
    assert fine["ndcg@10"] == 1.0 and fine["first_relevant_rank"] == 1


def test_analyse_keeps_ten_worst():
    qrels = {f"q{i:02d}": {"a": 1} for i in range(15)}
    run = {q: {**{f"x{j}": 1.0 for j in range(i)}, "a": 0.5} for i, q in enumerate(qrels)}
    worst = analyse(qrels, run).worst
    assert len(worst) == 10
    assert [row["query_id"] for row in worst[:5]] == ["q10", "q11", "q12", "q13", "q14"]


def test_changes_between_reports():
    a = ErrorReport(counts={}, by_query={"q1": "complete_failure", "q2": None, "q3": "ranking_issue",
                                         "q4": None, "q5": "partial_failure", "q6": None}, worst=[])
    b = ErrorReport(counts={}, by_query={"q1": None, "q2": "partial_failure", "q3": "complete_failure",
                                         "q4": None, "q5": "partial_failure", "q7": "ranking_issue"}, worst=[])
    assert changes(a, b) == {"fixed": ["q1"], "broken": ["q2"], "moved": ["q3"]}
