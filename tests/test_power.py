"""How many queries an evaluation needs (topic set size design): the paired t-test's power and the n it needs,
against textbook values and statsmodels, and the "cannot tell" cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from studio.evaluation import power


@pytest.mark.parametrize("effect, n_real, n", [(0.5, 33.367, 34), (0.2, 198.151, 199), (0.8, 14.303, 15),
                                               (-0.5, 33.367, 34)])
def test_textbook_sample_sizes(effect, n_real, n):
    """One-sample / paired t-test, two-sided alpha 0.05, power 0.8 (Cohen's tables; G*Power gives the same)."""
    assert power.required_queries(effect) == pytest.approx(n_real, abs=1e-3)
    assert power.queries_needed(effect, 1.0) == n
    assert power.power(n, effect) >= 0.8 > power.power(n - 1, effect)


@pytest.mark.parametrize("effect", [0.05, 0.1, 0.3, 0.5, 1.0, 1.3])
@pytest.mark.parametrize("target, alpha", [(0.8, 0.05), (0.9, 0.01)])
def test_equals_statsmodels(effect, target, alpha):
    stats_power = pytest.importorskip("statsmodels.stats.power")
    expected = stats_power.TTestPower().solve_power(effect_size=effect, power=target, alpha=alpha,
                                                    alternative="two-sided")
    assert power.required_queries(effect, target, alpha) == pytest.approx(float(expected), rel=1e-6)
    assert power.power(40, effect, alpha) == pytest.approx(
        stats_power.TTestPower().power(effect_size=effect, nobs=40, alpha=alpha, alternative="two-sided"), abs=1e-9)


def test_cannot_tell_cases_give_none_not_a_crash():
    assert power.required_queries(0.0) is None and power.queries_needed(0.0, 0.1) is None
    assert power.queries_needed(0.02, 0.0) is None and power.queries_needed(0.02, float("nan")) is None
    assert power.queries_needed(1e-9, 1.0) is None, "beyond MAX_QUERIES"
    assert power.required_queries(50.0) == 2.0, "a huge effect: the fewest pairs a t-test takes"
    for bad in (lambda: power.power(1, 0.5), lambda: power.required_queries(0.5, 1.0),
                lambda: power.required_queries(float("inf"))):
        with pytest.raises(ValueError):
            bad()


def test_plan_from_per_query_differences():
    rng = np.random.default_rng(1)
    d = rng.normal(0.013, 0.09, size=60)
    plan = power.plan(d)
    sd = float(np.std(d, ddof=1))
    assert plan["queries"] == 60 and plan["sd"] == pytest.approx(sd) and plan["reason"] is None
    assert plan["observed_delta"] == pytest.approx(d.mean()) and plan["effect_size"] == pytest.approx(d.mean() / sd)
    assert plan["needed_0.02"] == math.ceil(power.required_queries(0.02 / sd))
    assert plan["needed_observed"] == math.ceil(power.required_queries(d.mean() / sd))
    assert (plan["target_delta"], plan["power"], plan["alpha"]) == (0.02, 0.8, 0.05)


@pytest.mark.parametrize("d, reason", [([0.1] * 12, "no_spread"), ([0.0] * 12, "no_spread"),
                                       ([0.05, -0.05] * 10, "no_difference"), ([0.3], "too_few_queries"),
                                       ([], "too_few_queries")])
def test_plan_cannot_tell(d, reason):
    plan = power.plan(d)
    assert plan["reason"] == reason and plan["needed_observed"] is None
    if reason == "no_difference":  # a tie still has a spread: how many queries a 0.02 difference needs is known
        assert plan["observed_delta"] == 0.0
        assert plan["needed_0.02"] == math.ceil(power.required_queries(0.02 / np.std(d, ddof=1)))
    else:
        assert plan["needed_0.02"] is None and plan["effect_size"] is None
    with pytest.raises(ValueError):
        power.plan([0.1, float("nan")])
