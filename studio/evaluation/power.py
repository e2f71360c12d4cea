"""How many queries does an evaluation need? Topic set size design for the paired t-test (Sakai 2014).

Two systems scored on the same n queries give per-query differences ``d_i``. A two-sided paired t-test at level
alpha rejects "no difference" when ``|t| > t_{1-alpha/2, n-1}`` with ``t = mean(d) / (sd(d) / sqrt(n))``. If the
true mean difference is delta and the spread sigma, t follows a noncentral t distribution with ``n - 1`` degrees of
freedom and noncentrality ``lambda = sqrt(n) * delta / sigma``, so the power is

    power(n) = P(T > c) + P(T < -c),  T ~ t'(n - 1, lambda),  c = t_{1-alpha/2, n-1}

(both tails, as ``statsmodels.stats.power.TTestPower`` counts them). :func:`required_queries` solves
``power(n) = target`` for a real n by root finding (power grows with n) and :func:`queries_needed` rounds it up.
sigma is estimated from the observed differences (sample standard deviation), which is what Sakai's
"topic set size design" does with a pilot evaluation.

:func:`plan` applies this to the best and the runner-up system of an evaluation (the pair
:func:`studio.evaluation.report.recommend` compares): how many queries would confirm the lead it observed, and how
many would tell a difference of :data:`TARGET_DELTA` nDCG@10 apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

TARGET_DELTA = 0.02  # the smallest nDCG@10 difference worth telling apart, by convention here
POWER = 0.8
ALPHA = 0.05
MAX_QUERIES = 10_000_000  # past this, "needed" is None: no evaluation set will get there


def power(n: float, effect_size: float, alpha: float = ALPHA) -> float:
    """Power of a two-sided one-sample (= paired) t-test with `n` observations at standardised effect
    ``effect_size = delta / sigma`` (see the module docstring).

    Raises:
        ValueError: ``n < 2`` or alpha outside (0, 1).
    """
    from scipy.stats import nct, t  # scipy.stats: ~1 s to import

    if n < 2:
        raise ValueError(f"a t-test needs at least 2 observations, not {n!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), not {alpha!r}")
    df = n - 1
    crit = t.ppf(1 - alpha / 2, df)
    nc = math.sqrt(n) * abs(effect_size)
    upper = float(nct.sf(crit, df, nc))
    if not math.isfinite(upper):
        upper = 1.0 - float(nct.cdf(crit, df, nc))
    lower = float(nct.cdf(-crit, df, nc))
    # scipy's noncentral t returns NaN far in the wrong-sign tail, where the true value underflows (< 1e-20)
    return upper + (lower if math.isfinite(lower) else 0.0)


def required_queries(effect_size: float, target: float = POWER, alpha: float = ALPHA) -> float | None:
    """The real n at which :func:`power` reaches `target`: 33.37 for effect size 0.5, power 0.8, alpha 0.05
    (the textbook value; ``statsmodels``' ``TTestPower().solve_power`` gives the same). 2.0 when two observations
    already suffice; None for a zero effect (no n ever suffices) or when more than :data:`MAX_QUERIES` are needed.

    Raises:
        ValueError: `target` or `alpha` outside (0, 1), or a non-finite effect size.
    """
    from scipy.optimize import brentq  # ~1 s to import

    if not 0 < target < 1:
        raise ValueError(f"power must be in (0, 1), not {target!r}")
    if not math.isfinite(effect_size):
        raise ValueError(f"effect size must be finite, not {effect_size!r}")
    if effect_size == 0:
        return None
    if power(2, effect_size, alpha) >= target:
        return 2.0
    high = 4.0
    while power(high, effect_size, alpha) < target:
        if high >= MAX_QUERIES:
            return None
        high = min(high * 4, MAX_QUERIES)
    return float(brentq(lambda n: power(n, effect_size, alpha) - target, 2.0, high, xtol=1e-9, rtol=1e-12))


def queries_needed(delta: float, sd: float, target: float = POWER, alpha: float = ALPHA) -> int | None:
    """How many queries a two-sided paired t-test needs to detect a mean difference `delta` when per-query
    differences spread with standard deviation `sd`: :func:`required_queries` of ``delta / sd``, rounded up.
    None ("cannot tell") when `sd` or `delta` is 0 or not finite, or beyond :data:`MAX_QUERIES`."""
    if not (math.isfinite(delta) and math.isfinite(sd)) or sd <= 0 or delta == 0:
        return None
    n = required_queries(delta / sd, target, alpha)
    return None if n is None else math.ceil(n - 1e-9)


def plan(differences: Sequence[float], target: float = POWER, alpha: float = ALPHA) -> dict:
    """Topic set size for one pair of systems from their per-query differences (b - a of the primary metric).

    Returns:
        ``{"queries": n, "sd": sd or None, "observed_delta": mean, "effect_size": mean / sd or None,
        "needed_observed": queries to confirm the observed mean difference, "needed_0.02": queries to detect a
        difference of :data:`TARGET_DELTA`, "target_delta": 0.02, "power": 0.8, "alpha": 0.05, "reason": None}``.
        A ``needed_*`` is None when it cannot be told; ``reason`` then says why: ``too_few_queries`` (fewer than
        two: no spread to estimate), ``no_spread`` (every query differs by the same amount: the t-test is
        undefined), ``no_difference`` (the observed mean difference is 0; ``needed_0.02`` is still given).

    Raises:
        ValueError: a difference that is not finite.
    """
    d = np.asarray(list(differences), dtype=float)
    if d.size and not np.all(np.isfinite(d)):
        raise ValueError("per-query differences must be finite")
    out = {"queries": int(d.size), "sd": None, "observed_delta": float(d.mean()) if d.size else None,
           "effect_size": None, "needed_observed": None, f"needed_{TARGET_DELTA:g}": None,
           "target_delta": TARGET_DELTA, "power": target, "alpha": alpha, "reason": None}
    if d.size < 2:
        out["reason"] = "too_few_queries"
        return out
    sd = float(d.std(ddof=1))
    if sd <= 1e-12 * max(1.0, float(np.abs(d).max())):
        out.update(sd=0.0, reason="no_spread")
        return out
    delta = out["observed_delta"]
    if abs(delta) <= 1e-12:
        delta = out["observed_delta"] = 0.0
    out.update(sd=sd, effect_size=delta / sd, needed_observed=queries_needed(delta, sd, target, alpha))
    out[f"needed_{TARGET_DELTA:g}"] = queries_needed(TARGET_DELTA, sd, target, alpha)
    if delta == 0:
        out["reason"] = "no_difference"
    return out
