"""Would more labels help? A learning curve: the same recipe fine-tuned on growing shares of the training queries,
each model scored on the same held-out queries.

For each seed, the training file's queries are shuffled once with that seed and the first 25 %, 50 %, 100 % of
that order are kept (:func:`subsample`): the samples are *nested*, so the 50 % model saw everything the 25 % model
saw, and the curve compares like with like. Whole queries are kept or dropped, with every line of a kept query.
The validation twin (``X.valid.jsonl``) is never sampled nor given to the runs: it only adds a validation loss to
the job's log (it does not change the weights), and the queries it holds are left out of the evaluation set anyway
(:func:`studio.actions.evaluate.load_evalset`), so what the curve measures is held-out retrieval alone.

Each run trains in the worker process (``python -m studio.training.worker``, in the foreground, as ``studio
train`` does), writes its model under the curve's work folder (never into models/: these are throw-away models
the registry must not list) and is scored with :func:`studio.evaluation.runner.retrieve` and
:func:`studio.evaluation.metrics.evaluate` (nDCG@10, Recall@10); the model is then deleted unless asked to keep
it. The base model, untouched, is the point at 0 labelled queries.

The verdict (:func:`verdict`): the curve is **still rising** when the mean nDCG@10 gained from the previous
fraction to the last (``gain_last``) exceeds the noise, ``max(MIN_GAIN, std of the seeds at either fraction)``.
MIN_GAIN (0.005 nDCG@10) is the floor with one seed, where the seeds' spread is unknown.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go

from studio import config as cfg
from studio.errors import StudioError
from studio.evaluation import runner
from studio.evaluation.metrics import evaluate
from studio.i18n import t
from studio.models.registry import resolve
from studio.retrieval import cache, dense
from studio.training import jobs, preflight
from studio.training import metrics as training_metrics
from studio.training import train_file as reader
from studio.training.base_model import base_label, check_base
from studio.training.config import TrainConfig
from studio.training.job_folder import JobFolder

DEFAULT_FRACTIONS: tuple[float, ...] = (0.25, 0.5, 1.0)
DEFAULT_SEEDS: tuple[int, ...] = (42,)
PRIMARY, RECALL = "ndcg@10", "recall@10"
MIN_GAIN = 0.005  # nDCG@10 below which a gain is noise, whatever the seeds say
# Settings the curve decides itself: the options may not set them.
FIXED_OPTIONS = ("task", "base", "train", "valid", "name", "output_dir", "seed", "resume")
POLL_SECONDS = 0.5

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Point:
    """One fine-tune: `fraction` of the training queries (`queries` of them) drawn with `seed`, its held-out
    nDCG@10 and Recall@10, the worker's wall-clock seconds and its optimizer steps (None when unknown)."""

    fraction: float
    queries: int
    seed: int
    ndcg: float
    recall: float
    train_s: float
    steps: int | None = None

    def as_dict(self) -> dict:
        return {"fraction": self.fraction, "queries": self.queries, "seed": self.seed, PRIMARY: self.ndcg,
                RECALL: self.recall, "train_s": self.train_s, "steps": self.steps}


@dataclass(frozen=True)
class Level:
    """The runs at one fraction: their mean nDCG@10, its spread (sample std, 0 with one run; lowest, highest) and
    their mean Recall@10."""

    fraction: float
    queries: int
    runs: int
    mean: float
    std: float
    low: float
    high: float
    recall: float

    def as_dict(self) -> dict:
        return {"fraction": self.fraction, "queries": self.queries, "runs": self.runs, "mean": self.mean,
                "std": self.std, "min": self.low, "max": self.high, f"{RECALL}_mean": self.recall}


@dataclass(frozen=True)
class Curve:
    """A learning curve: every run (`points`), one :class:`Level` per fraction, the base model at 0 labelled
    queries, and the verdict (module docstring): ``gain_last`` (None with one fraction), the ``noise`` it was
    compared with, ``still_rising``."""

    points: tuple[Point, ...]
    levels: tuple[Level, ...]
    base_ndcg: float
    base_recall: float
    gain_last: float | None
    noise: float
    still_rising: bool
    train_queries: int = 0
    eval_queries: int = 0
    evalset: str = ""
    base: str = ""
    workdir: str | None = None

    def as_dict(self) -> dict:
        """JSON-ready."""
        return {"metric": PRIMARY, "evalset": self.evalset, "eval_queries": self.eval_queries,
                "train_queries": self.train_queries, "base": self.base, "workdir": self.workdir,
                "base_model": {"queries": 0, PRIMARY: self.base_ndcg, RECALL: self.base_recall},
                "levels": [level.as_dict() for level in self.levels],
                "points": [point.as_dict() for point in self.points],
                "gain_last": self.gain_last, "noise": self.noise, "still_rising": self.still_rising,
                "min_gain": MIN_GAIN}


# ------------------------------------------------------------------------------------------------ the samples

def query_order(train_file: str | Path, seed: int) -> list[str]:
    """The training file's distinct queries (first appearance order), shuffled with `seed`: the sample of a
    fraction is a prefix of this list, so the samples of one seed are nested.

    Raises:
        InputError: a line that is not FlagEmbedding JSONL, naming the file and the line.
    """
    seen: dict[str, None] = {}
    for _, record in _records(train_file):
        seen.setdefault(record["query"], None)
    order = list(seen)
    random.Random(seed).shuffle(order)
    return order


def sample_size(queries: int, fraction: float) -> int:
    """How many of `queries` a `fraction` keeps: rounded up, at least 1 (100 % keeps all)."""
    return max(1, math.ceil(fraction * queries - 1e-9))


def subsample(train_file: str | Path, fraction: float, seed: int, out_path: str | Path) -> int:
    """Write to `out_path` the lines of `train_file` whose query is among a seeded random `fraction` of its
    queries (whole queries, every line of each, in the file's order); returns how many queries were kept.

    For one seed the samples are nested (:func:`query_order`): 25 % is inside 50 %, which is inside 100 %.
    The validation twin is not sampled (see the module docstring).

    Raises:
        StudioError: ``curve_bad_fractions`` for a fraction outside (0, 1].
        InputError: a line that is not FlagEmbedding JSONL.
    """
    if not _is_fraction(fraction):
        raise StudioError("curve_bad_fractions", value=fraction)
    order = query_order(train_file, seed)
    kept = set(order[:sample_size(len(order), fraction)])
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.writelines(raw if raw.endswith("\n") else raw + "\n"
                     for raw, record in _records(train_file) if record["query"] in kept)
    return len(kept)


def _records(train_file: str | Path):
    """(line, parsed record) of each non-empty line, checked as the worker reads them."""
    for _, raw, record in reader.records(train_file):
        yield raw, record


def _is_fraction(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and 0 < value <= 1)


def check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    """At least two distinct fractions in (0, 1], ascending. Raises StudioError ``curve_bad_fractions``."""
    values = tuple(fractions or ())
    if len(values) < 2 or not all(map(_is_fraction, values)) or len(set(values)) != len(values):
        raise StudioError("curve_bad_fractions", value=", ".join(map(str, values)) or "-")
    return tuple(sorted(float(v) for v in values))


def check_seeds(seeds: Sequence[int]) -> tuple[int, ...]:
    """At least one seed, whole numbers >= 0, each once. Raises StudioError ``curve_bad_seeds``."""
    values = tuple(seeds or ())
    if not values or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in values) or len(
            set(values)) != len(values):
        raise StudioError("curve_bad_seeds", value=", ".join(map(str, values)) or "-")
    return values


# ------------------------------------------------------------------------------------------------ the verdict

def summarize(points: Sequence[Point], *, base_ndcg: float, base_recall: float, train_queries: int = 0,
              eval_queries: int = 0, evalset: str = "", base: str = "", workdir: str | None = None) -> Curve:
    """The :class:`Curve` of some runs: one level per fraction and the verdict (:func:`verdict`)."""
    levels = tuple(_level(fraction, [p for p in points if p.fraction == fraction])
                   for fraction in sorted({p.fraction for p in points}))
    gain, noise, rising = verdict(levels)
    return Curve(tuple(points), levels, base_ndcg, base_recall, gain, noise, rising, train_queries, eval_queries,
                 evalset, base, workdir)


def _level(fraction: float, runs: list[Point]) -> Level:
    values = [p.ndcg for p in runs]
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return Level(fraction, runs[0].queries, len(runs), statistics.fmean(values), std, min(values), max(values),
                 statistics.fmean(p.recall for p in runs))


def verdict(levels: Sequence[Level]) -> tuple[float | None, float, bool]:
    """(gain_last, noise, still_rising) of levels in ascending fraction order.

    ``gain_last`` = mean nDCG@10 at the last fraction − mean at the one before; ``noise`` = the largest of
    MIN_GAIN and the seeds' std at those two fractions; still rising when ``gain_last > noise``. With one level
    there is no gain: (None, MIN_GAIN, False).
    """
    if len(levels) < 2:
        return None, MIN_GAIN, False
    prev, last = levels[-2], levels[-1]
    gain = last.mean - prev.mean
    noise = max(MIN_GAIN, prev.std, last.std)
    return gain, noise, gain > noise


def _percent(fraction: float) -> str:
    return f"{fraction * 100:g}"


def verdict_line(curve: Curve, lang: str) -> str:
    """The verdict in words: still rising (more labels should help), flat, or falling, with the gain from the
    previous fraction to the last and the noise it was compared with; a note when one seed leaves the noise
    unmeasured."""
    if curve.gain_last is None or len(curve.levels) < 2:
        return t("evaluate.curve_no_verdict", lang)
    prev, last = curve.levels[-2], curve.levels[-1]
    key = ("evaluate.curve_rising" if curve.still_rising else
           "evaluate.curve_falling" if curve.gain_last < -curve.noise else "evaluate.curve_flat")
    line = t(key, lang, gain=f"{curve.gain_last:+.3f}", low=_percent(prev.fraction), high=_percent(last.fraction),
             noise=f"{curve.noise:.3f}")
    if max(prev.runs, last.runs) < 2:
        line += " " + t("evaluate.curve_one_seed", lang, floor=f"{MIN_GAIN:.3f}")
    return line


def figure(curve: Curve, lang: str):
    """Mean held-out nDCG@10 against labelled queries, bars from the lowest to the highest seed, every run as a
    faint dot, and the base model at 0 labelled queries (a plotly Figure; the UI localises its toolbar)."""
    levels = curve.levels
    fig = go.Figure()
    if any(level.runs > 1 for level in levels):
        fig.add_trace(go.Scatter(x=[p.queries for p in curve.points], y=[p.ndcg for p in curve.points],
                                 mode="markers", name=t("evaluate.curve_runs", lang), opacity=0.35,
                                 marker={"color": "#2563eb", "size": 6}, hoverinfo="skip"))
    hover = [t("evaluate.curve_hover", lang, queries=level.queries, percent=_percent(level.fraction),
               mean=f"{level.mean:.3f}", std=f"{level.std:.3f}", runs=level.runs) for level in levels]
    fig.add_trace(go.Scatter(
        x=[level.queries for level in levels], y=[level.mean for level in levels], mode="lines+markers",
        name=t("evaluate.curve_mean", lang), marker={"color": "#2563eb", "size": 9}, hovertext=hover,
        hoverinfo="text", error_y={"type": "data", "symmetric": False, "color": "#2563eb",
                                   "array": [level.high - level.mean for level in levels],
                                   "arrayminus": [level.mean - level.low for level in levels]}))
    fig.add_trace(go.Scatter(x=[0], y=[curve.base_ndcg], mode="markers", name=t("evaluate.curve_base", lang),
                             marker={"color": "#475569", "size": 10, "symbol": "diamond"},
                             hovertext=[f"{curve.base_ndcg:.3f}"], hoverinfo="text+name"))
    fig.update_layout(title=t("evaluate.curve_title", lang), xaxis_title=t("evaluate.curve_x", lang),
                      yaxis_title=t("evaluate.curve_y", lang), height=380,
                      margin={"l": 50, "r": 20, "t": 50, "b": 50},
                      legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"})
    fig.update_xaxes(rangemode="tozero")
    return fig


# ------------------------------------------------------------------------------------------------ the runs

def run_curve(train_file: str | Path, evalset, *, base: str = "default",
              fractions: Sequence[float] = DEFAULT_FRACTIONS, seeds: Sequence[int] = DEFAULT_SEEDS,
              options: Mapping | None = None, workdir: str | Path, keep: bool = False, lang: str = "en",
              progress: Progress | None = None) -> Curve:
    """Fine-tune the recipe on each fraction of `train_file`'s queries for each seed, score every model on
    `evalset` (a :class:`studio.evaluation.runner.EvalSet` without the training queries) and return the curve.

    Args:
        base: the model every run starts from (``default`` = the ★ model, a name in models/, a folder).
        options: TrainConfig fields that differ from the recipe (epochs, batch_size, max_steps...); those the
            curve sets itself (FIXED_OPTIONS) are refused.
        workdir: a fresh folder for the samples, the runs' job folders (config, log, metrics, result) and, while
            each is scored, its model; ``curve.json`` is written there at the end.
        keep: keep each model (``<workdir>/<run>/model``) instead of deleting it once scored.
        progress: called with (share done, what is being done in `lang`).

    Raises:
        StudioError: ``curve_bad_fractions``, ``curve_bad_seeds``, ``curve_fixed_option``,
            ``curve_unknown_option``, ``curve_too_few_queries``, ``curve_train_failed`` (naming the run and its
            log), the training settings' and base model's errors. An interrupted curve kills its running worker
            and deletes that run's model before the interruption goes on.
    """
    workdir = Path(workdir).resolve()  # the worker runs from the project root
    try:
        fractions, seeds = check_fractions(fractions), check_seeds(seeds)
        template = _template(train_file, base, options)
        total = len(query_order(train_file, 0))
        sizes = [sample_size(total, f) for f in fractions]
        if len(set(sizes)) != len(sizes):
            raise StudioError("curve_too_few_queries", queries=total,
                              fractions=", ".join(f"{_percent(f)} %" for f in fractions))
        workdir.mkdir(parents=True, exist_ok=True)
        report = _Reporter(progress, 1 + len(fractions) * len(seeds))
        report(0, t("evaluate.curve_progress_base", lang))
        base_metrics = _score(evalset, runner.retrieve(evalset, template.base, k=10).run)
        report.next()
        points = [_run(template, train_file, fraction, seed, workdir, evalset, keep, lang, report)
                  for seed in seeds for fraction in fractions]
    except BaseException:
        if workdir.is_dir() and not any(workdir.iterdir()):  # refused, or failed on the base model: no empty folder
            workdir.rmdir()
        raise
    curve = summarize(points, base_ndcg=base_metrics[PRIMARY], base_recall=base_metrics[RECALL],
                      train_queries=total, eval_queries=len(evalset.qrels), evalset=evalset.name,
                      base=base_label(template.base), workdir=str(workdir))
    (workdir / "curve.json").write_text(json.dumps(curve.as_dict(), ensure_ascii=False, indent=2) + "\n",
                                        encoding="utf-8")
    report.done(t("evaluate.curve_progress_done", lang))
    return curve


def _template(train_file: str | Path, base: str, options: Mapping | None):
    """The recipe every run shares (the measured TrainConfig defaults, `options` over them), checked once.

    Checkpoints are not written (save_strategy "no", save_every 0): a run is never resumed, and writing them
    costs time and disk without changing the weights."""
    options = dict(options or {})
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    for name in options:
        if name in FIXED_OPTIONS:
            raise StudioError("curve_fixed_option", field=name)
        if name not in known:
            raise StudioError("curve_unknown_option", field=name)
    extra = {"save_strategy": "no", **dict(options.pop("extra", None) or {})}
    config = TrainConfig(**{"save_every": 0.0, **options, "task": "embedder", "train": str(Path(train_file)),
                            "name": "curve", "output_dir": "", "valid": None, "extra": extra,
                            "base": check_base(resolve(str(base or "").strip() or "default"))})
    config.validate()
    return config


def _run(template, train_file: str | Path, fraction: float, seed: int, workdir: Path, evalset, keep: bool,
         lang: str, report: _Reporter) -> Point:
    """Sample, train in the worker, score, delete the model (unless `keep`): one :class:`Point`."""
    run_dir = workdir / f"seed{seed}-{_percent(fraction)}pct"
    run_dir.mkdir()
    queries = subsample(train_file, fraction, seed, run_dir / "train.jsonl")
    model = run_dir / "model"
    config = dataclasses.replace(template, train=str((run_dir / "train.jsonl").resolve()), seed=seed,
                                 name=run_dir.name, output_dir=str(model.resolve()), extra=dict(template.extra))
    preflight.check_disk(config, workdir, workdir)
    config.save(run_dir)
    words = {"percent": _percent(fraction), "queries": queries, "seed": seed}
    try:
        report(0, t("evaluate.curve_progress_train", lang, run=report.unit, runs=report.total - 1, **words))
        train_s = _train(run_dir, report)
        result = _result(run_dir)
        if result.get("status") != "succeeded":
            raise StudioError("curve_train_failed", error=result.get("error") or t("evaluate.curve_no_result", lang),
                              log=str(JobFolder(run_dir).log), **words)
        report(0.95, t("evaluate.curve_progress_eval", lang, **words))
        metrics = _score(evalset, runner.retrieve(evalset, str(model), k=10).run)
    finally:
        folder = JobFolder(run_dir)
        for scratch in (folder.checkpoints, folder.cache):  # none written (see _template); the worker's dataset cache
            shutil.rmtree(scratch, ignore_errors=True)
        if not keep:
            _discard_model(model, evalset)
    report.next()
    steps = result.get("final", {}).get("step")
    return Point(fraction, queries, seed, metrics[PRIMARY], metrics[RECALL], round(train_s, 1),
                 int(steps) if isinstance(steps, (int, float)) else None)


def _score(evalset, run: Mapping) -> dict[str, float]:
    return evaluate(evalset.qrels, run, ks=(10,), metrics=("ndcg", "recall"))


def _train(run_dir: Path, report: _Reporter) -> float:
    """Run the worker on `run_dir` in the foreground (its own process group, log in log.txt), reporting its steps;
    returns its wall-clock seconds. Interrupted (Ctrl-C, an exception), it kills the worker: a curve's run is
    throw-away, there is nothing to save."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    started = time.perf_counter()
    with open(JobFolder(run_dir).log, "ab") as log:
        proc = subprocess.Popen(jobs.command(run_dir), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=cfg.PROJECT_ROOT, env=env, start_new_session=True)
    try:
        while proc.poll() is None:
            time.sleep(POLL_SECONDS)
            rows = [r for r in training_metrics.read_metrics(run_dir) if r.get("total_steps")]
            if rows:
                report(0.9 * rows[-1]["step"] / max(rows[-1]["total_steps"], 1))
    except BaseException:
        jobs.kill(proc)
        raise
    return time.perf_counter() - started


def _result(run_dir: Path) -> dict:
    return JobFolder(run_dir).read_result() or {}


def _discard_model(model: Path, evalset) -> None:
    """Delete a scored model with what scoring left of it: its corpus embeddings in the on-disk cache and the
    loaded model kept by studio.retrieval.dense (a curve loads one per run; they would pile up)."""
    name = str(model.resolve())
    if model.is_dir():
        texts = list(evalset.corpus.values())
        stale = cache.cache_path(name, texts)
        stale.unlink(missing_ok=True)
    with dense._lock:  # studio.retrieval.dense has no unload function yet: its private cache, under its lock
        dense._models.pop(name, None)
    shutil.rmtree(model, ignore_errors=True)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():  # the next run's worker needs the GPU memory it held
        torch.cuda.empty_cache()


class _Reporter:
    """Turns progress within one unit of work (the base model's score, then each run) into the share of the whole
    curve done, for `progress`; `unit` counts from 0 (the base model), runs are units 1..total-1."""

    def __init__(self, progress: Progress | None, total: int):
        self.progress, self.total, self.unit, self.message = progress, total, 0, ""

    def __call__(self, within: float, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        if self.progress is not None:
            self.progress(min((self.unit + within) / self.total, 1.0), self.message)

    def next(self) -> None:
        self.unit += 1

    def done(self, message: str) -> None:
        if self.progress is not None:
            self.progress(1.0, message)
