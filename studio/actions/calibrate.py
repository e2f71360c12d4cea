"""Calibrate (⑧): the score threshold at which a dense model or a reranker best separates the project's gold
"relevant" from "irrelevant" pairs, and the one for a target precision (:mod:`studio.evaluation.calibration`).

It reads gold labels, so it needs an expert.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from studio.actions.base import Actor, Project, action
from studio.evaluation import calibration, runner
from studio.evaluation.heldout import learned
from studio.i18n import t
from studio.models.registry import DEFAULT_NAME, get_default, resolve
from studio.store.gold import gold_set
from studio.training.train_file import fingerprint

if TYPE_CHECKING:
    from studio.evaluation.calibration import Calibration
    from studio.evaluation.thresholds import Threshold


@action("expert", cli="calibrate")
def calibrate(project: Project, actor: Actor, /, model: str, *, exclude: str | Path | None = None,
              target_precision: float = 0.9, kind: str = "auto", include_trained: bool = False,
              existing: bool = False) -> Calibration:
    """Thresholds of `model` (a name in models/, ``default`` = the ★ model, a folder or a hub id) on the gold labels,
    without the queries of the training file `exclude` and of its ``.valid.jsonl`` twin, and — unless
    `include_trained` — without every query `model` was trained or validated on (its ``studio_model.json``; the
    result's ``left_out_queries`` counts them): a model looks better separated on what it learned from.

    `kind`: ``auto`` (a reranker when the registry says so), ``dense`` or ``reranker``. The result's ``model`` is the
    name as given, or the ★ model's name for ``default``.

    Raises:
        StudioError: ``bad_precision``, ``train_file_missing``, ``no_database`` (with `existing`),
            ``calibration_needs_both``, ``model_missing``.
    """
    name = str(model or "").strip() or DEFAULT_NAME
    held_out = set(runner.training_queries(exclude)) if exclude else set()
    with project.db(existing=existing) as db:
        gold = gold_set(db)
    known = learned(name).all
    trained = {text for q, text in gold.queries.items() if gold.labels.get(q) and fingerprint(text) in known}
    result = calibration.calibrate(gold, resolve(name), kind=kind,
                                   exclude_queries=held_out | (set() if include_trained else trained),
                                   target_precision=float(target_precision))
    return replace(result, model=get_default() if name == DEFAULT_NAME else name,
                   left_out_queries=0 if include_trained else len(trained - held_out),
                   included_trained=include_trained and bool(trained))


# ------------------------------------------------------------------------------ wording of a calibration (UI and CLI)

def summary_lines(result: Calibration, lang: str = "en") -> list[str]:
    """What a calibration found, in `lang`: the pairs it used, then one line per threshold (precision, recall, F1)."""
    scored_by = t("calibrate.by_reranker", lang) if result.kind == "reranker" else t("calibrate.by_cosine", lang)
    lines = [t("calibrate.summary", lang, model=result.model, scored_by=scored_by, pairs=result.pairs,
               positives=result.positives, negatives=result.negatives, partial=result.partial)]
    if result.left_out_queries:
        lines.append(t("calibrate.left_out", lang, queries=result.left_out_queries, model=result.model))
    if result.included_trained:
        lines.append(t("calibrate.included_trained", lang, model=result.model))
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
