"""Calibrate (⑧): the score threshold at which a dense model or a reranker best separates the project's gold
"relevant" from "irrelevant" pairs, and the one for a target precision (:mod:`studio.evaluation.calibration`).

It reads gold labels, so it needs an expert.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from studio.actions.base import Actor, Project, action
from studio.i18n import t

if TYPE_CHECKING:
    from studio.evaluation.calibration import Calibration, Threshold


@action("expert", cli="calibrate")
def calibrate(project: Project, actor: Actor, /, model: str, *, exclude: str | Path | None = None,
              target_precision: float = 0.9, kind: str = "auto", existing: bool = False) -> Calibration:
    """Thresholds of `model` (a name in models/, ``default`` = the ★ model, a folder or a hub id) on the gold labels,
    without the queries of the training file `exclude` and of its ``.valid.jsonl`` twin.

    `kind`: ``auto`` (a reranker when the registry says so), ``dense`` or ``reranker``. The result's ``model`` is the
    name as given, or the ★ model's name for ``default``.

    Raises:
        StudioError: ``bad_precision``, ``train_file_missing``, ``no_database`` (with `existing`),
            ``calibration_needs_both``, ``model_missing``.
    """
    from studio.evaluation import calibration, runner
    from studio.models.registry import DEFAULT_NAME, get_default, resolve
    from studio.store.gold import gold_set

    name = str(model or "").strip() or DEFAULT_NAME
    held_out = runner.training_queries(exclude) if exclude else None
    with project.db(existing=existing) as db:
        gold = gold_set(db)
    result = calibration.calibrate(gold, resolve(name), kind=kind, exclude_queries=held_out,
                                   target_precision=float(target_precision))
    return replace(result, model=get_default() if name == DEFAULT_NAME else name)


# ------------------------------------------------------------------------------ wording of a calibration (UI and CLI)

def summary_lines(result: Calibration, lang: str = "en") -> list[str]:
    """What a calibration found, in `lang`: the pairs it used, then one line per threshold (precision, recall, F1)."""
    scored_by = t("calibrate.by_reranker", lang) if result.kind == "reranker" else t("calibrate.by_cosine", lang)
    lines = [t("calibrate.summary", lang, model=result.model, scored_by=scored_by, pairs=result.pairs,
               positives=result.positives, negatives=result.negatives, partial=result.partial)]
    lines.append(t("calibrate.best", lang, **_numbers(result.best)))
    target = f"{result.target_precision:.2f}"
    if result.at_precision is None:
        lines.append(t("calibrate.precision_unreached", lang, target=target))
    else:
        lines.append(t("calibrate.at_precision", lang, target=target, **_numbers(result.at_precision)))
    return lines


def _numbers(threshold: Threshold) -> dict[str, str]:
    return {"threshold": f"{threshold.threshold:.4f}", "precision": f"{threshold.precision:.4f}",
            "recall": f"{threshold.recall:.4f}", "f1": f"{threshold.f1:.4f}"}
