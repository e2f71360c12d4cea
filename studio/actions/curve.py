"""Would more labels help? (⑧) The learning curve: the recipe fine-tuned on 25 %, 50 % and 100 % of a training
file's queries, each model scored on held-out queries (:mod:`studio.evaluation.learning_curve`).

It trains (in the worker process, one run after another, in the foreground), so it is an admin's. Its runs and
their throw-away models live in a fresh folder under the jobs folder (``jobs/curves/<time>-<file>``), never in
models/; the evaluation set comes from :func:`studio.actions.evaluate.load_evalset` without the training file's
queries and its validation twin's.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from studio import config
from studio.actions import files
from studio.actions.base import Actor, Project, action, audit
from studio.actions.evaluate import load_evalset
from studio.errors import StudioError
from studio.evaluation import learning_curve as curves
from studio.evaluation.heldout import hold_out
from studio.evaluation.learning_curve import DEFAULT_FRACTIONS, DEFAULT_SEEDS, Curve  # light: no torch
from studio.i18n import t

CURVES = "curves"  # the folder under the jobs folder that holds the curves' work folders


def training_path(train_file: str | Path | None, lang: str = "en") -> Path:
    """The training file a curve learns from: a path as given (the CLI: absolute, or relative to where it runs),
    otherwise a name inside exports/ as the page's picker gives it (``run/train.jsonl``).

    Raises:
        StudioError: ``train_file_none``; ``path_outside`` for a name that leads out of exports/.
    """
    text = str(train_file or "").strip()
    if not text:
        raise StudioError("train_file_none")
    path = Path(text).expanduser()
    if path.is_absolute() or path.is_file():
        return path.resolve()
    return files.export_path(text, field=t("evaluate.curve_train", lang))


def new_workdir(train_file: Path) -> Path:
    """A fresh folder ``<jobs>/curves/<YYYYmmdd-HHMMSS>-<file stem>-<random>``."""
    root = Path(config.JOBS_DIR) / CURVES
    root.mkdir(parents=True, exist_ok=True)
    stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in train_file.stem)[:40]
    return Path(tempfile.mkdtemp(prefix=f"{time.strftime('%Y%m%d-%H%M%S')}-{stem}-", dir=root)).resolve()


@action("admin", cli="eval")
def learning_curve(project: Project, actor: Actor, /, train_file: str | Path, source: str, *,
                   folder: str | Path | None = None, split: str | None = None, base: str = "default",
                   fractions: Sequence[float] = DEFAULT_FRACTIONS, seeds: Sequence[int] = DEFAULT_SEEDS,
                   options: Mapping | None = None, keep: bool = False, lang: str = "en", existing: bool = False,
                   progress: Callable[[float, str], None] | None = None) -> Curve:
    """Fine-tune the recipe from `base` on each fraction of `train_file`'s queries (nested samples, one set per
    seed), score each model's nDCG@10 and Recall@10 on :func:`~studio.actions.evaluate.load_evalset`'s set
    (`source` "beir" with `folder`/`split`, or "db", the gold labels) without the queries of `train_file` and of
    its ``.valid.jsonl`` twin nor those `base` learned from (:func:`studio.evaluation.heldout.hold_out`), and return the :class:`~studio.evaluation.learning_curve.Curve` (its ``workdir``
    holds the runs' logs and ``curve.json``). `options`: TrainConfig fields over the recipe (e.g. epochs);
    `keep`: keep the models in the work folder; `existing`: refuse a database that is not there (the CLI's --db).
    Hours on a CPU with a real file: the CLI and the page show `progress` (share done, what runs now in `lang`).

    Raises:
        StudioError: the training file's (``train_file_none``, ``train_file_missing``, ``path_outside``), the
            evaluation set's (``bad_source``, ``no_eval_queries``...), and those of
            :func:`~studio.evaluation.learning_curve.run_curve`.
    """
    path = training_path(train_file, lang)
    evalset = load_evalset(project, source, folder=folder, split=split, exclude=path, lang=lang, existing=existing)
    evalset, _ = hold_out(evalset, [base])  # a base that is itself a fine-tune is not scored on what it learned
    curve = curves.run_curve(path, evalset, base=base, fractions=fractions, seeds=seeds, options=options,
                             workdir=new_workdir(path), keep=keep, lang=lang, progress=progress)
    if project.db_path.is_file():  # a curve on a BEIR folder alone creates no project database
        audit(project, actor, "curve.run", entity="learning_curve",
              after={"train": str(path), "base": base, "workdir": curve.workdir, "still_rising": curve.still_rising,
                     "levels": [[level.queries, round(level.mean, 4)] for level in curve.levels]})
    return curve


# ------------------------------------------------------------------------- wording of a curve (UI and CLI)

def verdict_line(curve: Curve, lang: str) -> str:
    """"Still rising: +0.031 nDCG@10 from 50 % to 100 % of the labels — more labels should help." (or flat,
    falling)."""
    return curves.verdict_line(curve, lang)


def figure(curve: Curve, lang: str):
    """The curve as a plotly Figure (the UI wraps it with studio.ui.render.chart for its toolbar's language)."""
    return curves.figure(curve, lang)


def parse_fractions(text: str | None) -> tuple[float, ...]:
    """"0.25,0.5,1" or "25,50,100" (percent) → (0.25, 0.5, 1.0); empty → the default. For the CLI's and the
    page's text fields. Raises StudioError ``curve_bad_fractions``."""
    if not (text or "").strip():
        return DEFAULT_FRACTIONS
    try:
        values = [float(part.strip().rstrip("%")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise StudioError("curve_bad_fractions", value=text) from None
    if values and max(values) > 1:  # percentages
        values = [v / 100 for v in values]
    return curves.check_fractions(values)


def parse_seeds(text: str | None) -> tuple[int, ...]:
    """"42,43,44" → (42, 43, 44); empty → the default. Raises StudioError ``curve_bad_seeds``."""
    if not (text or "").strip():
        return DEFAULT_SEEDS
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise StudioError("curve_bad_seeds", value=text) from None
    return curves.check_seeds(values)
