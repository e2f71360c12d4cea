"""Does the query-count planner tell the truth? Its prediction (studio.evaluation.power: paired t-test, normal
theory) against resampling the real per-query differences, on the man-page sets.

For each language (bench/manpages.py builds the sets from Debian's man pages; test split) three systems run with
no training: ``bm25``, the embedded all-MiniLM-L6-v2 (``default``) and their reciprocal-rank fusion
(``default+bm25@rrf``). For a pair of systems with per-query nDCG@10 differences d_i (oriented so the mean is
positive) the planner predicts n*, the queries a two-sided paired t-test (alpha 0.05) needs for power 0.8:

* ``observed``: to detect the observed mean difference;
* ``0.02``: to detect a 0.02 difference — the differences shifted to mean 0.02, spread unchanged.

The reference, in the same run: for a query count n, draw n queries with replacement ``--reps`` times, run the
t-test on each draw (``scipy.stats.ttest_1samp`` on the differences, vectorised) and count rejections; the
smallest n whose rejection rate reaches 0.8 (doubling, then bisection) is the resampled n. A line says whether
the prediction is within ±25 % of it, and the rejection rate at the predicted n itself. Pairs: bm25 vs default
(the brief's cheapest honest pair) and the two best systems by mean nDCG@10 (what ⑧'s recommendation compares),
when they differ.

    python bench/query_count.py                 # zh and en, full test splits, 2,000 draws per n (minutes)
    python bench/query_count.py --smoke         # en, 40 pages, 200 draws: checks the path, not the numbers

Prints JSON lines (an environment line, one per set, one per pair and target); ``--out`` appends them to a file.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from studio.evaluation import power, runner  # noqa: E402
from studio.evaluation.metrics import per_query  # noqa: E402

SYSTEMS = ("bm25", "default", "default+bm25@rrf")
POWER, ALPHA = power.POWER, power.ALPHA
TOLERANCE = 0.25
MAX_N = 200_000
CHUNK_CELLS = 1 << 23
SMOKE_PAGES = 40


def load_manpages():
    spec = importlib.util.spec_from_file_location("manpages", ROOT / "bench" / "manpages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def emit(record: dict, out: Path | None) -> None:
    line = json.dumps(record, ensure_ascii=False)
    print(line, flush=True)
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def per_query_ndcg(evalset: runner.EvalSet) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """nDCG@10 per query (in qrels order) for each system, and the seconds each system's run took."""
    from studio.evaluation import systems

    start = time.perf_counter()
    results = systems.run_systems(evalset, [systems.parse(s) for s in SYSTEMS], depth=100)
    seconds = time.perf_counter() - start
    qids = list(evalset.qrels)
    scores = {}
    for result in results:
        values = per_query(evalset.qrels, result.run, (10,), ("ndcg",))["ndcg@10"]
        scores[result.model] = np.array([values[q] for q in qids])
    return scores, {"systems_s": round(seconds, 1)}


def rejection_rate(d: np.ndarray, n: int, reps: int, seed: int) -> float:
    """Share of `reps` resamples of n differences (with replacement) where the two-sided one-sample t-test on
    them rejects mean 0 at :data:`ALPHA` (a draw with no spread rejects when its mean is not 0)."""
    from scipy.stats import t

    rng = np.random.default_rng([seed, n])
    rejected = 0
    rows = max(1, CHUNK_CELLS // n)
    for start in range(0, reps, rows):
        x = d[rng.integers(0, d.size, size=(min(rows, reps - start), n))]
        mean = x.mean(axis=1)
        sd = x.std(axis=1, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = mean / (sd / np.sqrt(n))
        p = np.where(sd > 0, 2 * t.sf(np.abs(stat), n - 1), np.where(mean != 0, 0.0, 1.0))
        rejected += int(np.count_nonzero(p < ALPHA))
    return rejected / reps


def resampled_n(d: np.ndarray, reps: int, seed: int) -> tuple[int | None, int]:
    """The smallest n whose :func:`rejection_rate` reaches :data:`POWER`: doubling from 2, then bisection
    (the rate is taken as increasing in n; each n is drawn with its own seed). None past :data:`MAX_N`; also
    returns how many n were tried."""
    tried = 0
    low, high = 1, 2
    while True:
        tried += 1
        if rejection_rate(d, high, reps, seed) >= POWER:
            break
        if high >= MAX_N:
            return None, tried
        low, high = high, min(2 * high, MAX_N)
    while high - low > 1:
        mid = (low + high) // 2
        tried += 1
        if rejection_rate(d, mid, reps, seed) >= POWER:
            high = mid
        else:
            low = mid
    return high, tried


def check_pair(lang: str, a: str, b: str, scores: dict[str, np.ndarray], reps: int, seed: int,
               common: dict) -> list[dict]:
    """The planner's n against resampling for one pair, for the observed and the 0.02 difference."""
    d = scores[b] - scores[a]
    if d.mean() < 0:
        a, b, d = b, a, -d
    plan = power.plan(d)
    lines = []
    for target, diffs, predicted in (("observed", d, plan["needed_observed"]),
                                     (f"{power.TARGET_DELTA:g}", d - d.mean() + power.TARGET_DELTA,
                                      plan[f"needed_{power.TARGET_DELTA:g}"])):
        start = time.perf_counter()
        found, tried = resampled_n(diffs, reps, seed)
        at_predicted = rejection_rate(diffs, predicted, reps, seed + 1) if predicted else None
        ratio = predicted / found if predicted and found else None
        lines.append({**common, "lang": lang, "pair": [a, b], "target": target, "delta": round(float(diffs.mean()), 4),
                      "sd": round(plan["sd"], 4) if plan["sd"] is not None else None,
                      "ties": int(np.count_nonzero(np.abs(d) < 1e-12)), "predicted_n": predicted,
                      "resampled_n": found, "ratio_predicted_over_resampled": round(ratio, 3) if ratio else None,
                      "within_25pct": bool(ratio and abs(ratio - 1) <= TOLERANCE),
                      "rejection_rate_at_predicted": at_predicted, "reps": reps, "n_tried": tried,
                      "resample_s": round(time.perf_counter() - start, 1)})
    return lines


def pairs(scores: dict[str, np.ndarray]) -> list[tuple[str, str]]:
    """bm25 vs default, and the two best systems by mean nDCG@10 when that is another pair."""
    out = [("bm25", "default")]
    ranked = sorted(scores, key=lambda s: -scores[s].mean())
    top = tuple(ranked[:2])
    if set(top) != set(out[0]):
        out.append((top[1], top[0]))
    return out


def environment(args: argparse.Namespace) -> dict:
    import scipy

    return {"bench": "query_count", "date": date.today().isoformat(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "smoke": args.smoke, "reps": args.reps, "seed": args.seed,
            "power": POWER, "alpha": ALPHA, "systems": list(SYSTEMS)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lang", action="append", choices=("zh", "en"), help="repeat; default both")
    parser.add_argument("--limit", type=int, help="man pages per language (default: all)")
    parser.add_argument("--reps", type=int, default=2000, help="resamples per query count")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--smoke", action="store_true", help=f"en, {SMOKE_PAGES} pages, 200 resamples")
    parser.add_argument("--out", type=Path, help="also append the JSON lines to this file")
    args = parser.parse_args(argv)
    if args.smoke:
        args.lang, args.limit, args.reps = args.lang or ["en"], args.limit or SMOKE_PAGES, min(args.reps, 200)
    emit(environment(args), args.out)
    manpages = load_manpages()
    ok = []
    for lang in args.lang or ["zh", "en"]:
        # the folder bench/queue_strategies.py builds with the same parameters: a run after it reuses that build
        folder = ROOT / ".cache" / "bench" / f"queue-manpages-{lang}-{args.limit or 'all'}"
        stats = manpages.build(lang, folder, limit=args.limit, seed=args.seed)
        test = runner.from_beir(folder, split="test")
        scores, timing = per_query_ndcg(test)
        common = {"bench": "query_count", "smoke": args.smoke, "test_queries": len(test.qrels)}
        emit({**common, "lang": lang, "set": {k: stats.get(k) for k in ("pages_kept", "cached")}, **timing,
              "ndcg@10": {s: round(float(v.mean()), 4) for s, v in scores.items()}}, args.out)
        for a, b in pairs(scores):
            for line in check_pair(lang, a, b, scores, args.reps, args.seed, common):
                emit(line, args.out)
                ok.append(line["within_25pct"])
    print(f"{sum(ok)} of {len(ok)} predictions within ±{TOLERANCE:.0%} of resampling", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
