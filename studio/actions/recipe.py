"""Recipes (⑧ and `studio recipe export`): the system an evaluation measured, written as ``OUT/recipe.json`` to
deploy without the studio (:mod:`studio.recipe`): its models by path, the fusion and its weight, BM25's tokenizer,
the reranker and its top N, and the score threshold calibrated on the project's gold labels.

A recipe carries a threshold calibrated on gold labels, so exporting one needs an expert.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from studio import config
from studio import recipe as recipes
from studio.actions import files
from studio.actions.base import Actor, Project, action, audit
from studio.actions.calibrate import calibrate
from studio.actions.evaluate import load_evalset, load_tuneset
from studio.actions.wording import fusion_line
from studio.errors import StudioError
from studio.evaluation.systems import fusion_for
from studio.i18n import t
from studio.recipe import Recipe, calibration_target
from studio.retrieval.systems import RERANK_TOP, file_stem, parse
from studio.serving.int8 import has_models, int8_check

RECIPES = "recipes"  # the folder inside exports/ that holds the page's recipes
# A calibration that cannot be done leaves the threshold out (null, with the reason), never the recipe.
NO_THRESHOLD = ("calibration_needs_both", "no_database")


def default_folder(spec: str) -> Path:
    """Where a recipe goes when none is named: ``exports/recipes/<spec as a file name>-<timestamp>``."""
    return Path(config.EXPORTS_DIR) / RECIPES / f"{file_stem(spec)}-{time.strftime('%Y%m%d-%H%M%S')}"


def page_folder(name: str | None, spec: str, lang: str = "en") -> Path:
    """The folder a page's recipe name stands for: a folder inside exports/ (an absolute path, '~' or '..' is
    refused: ``path_outside``), or :func:`default_folder` when the field is empty. The CLI passes paths."""
    path = files.export_path(name, field=t("recipe.out", lang))
    return path if path is not None else default_folder(spec).resolve()


@action("expert", cli="recipe export")
def export_recipe(project: Project, actor: Actor, /, spec: str, out: str | Path | None = None, *,
                  source: str | None = None, folder: str | Path | None = None, split: str | None = None,
                  tune_on: str | None = None, exclude: str | Path | None = None, fusion: Mapping | None = None,
                  measured: Mapping | None = None, rerank_top: int | None = None, depth: int | None = None,
                  target_precision: float = 0.9, int8_check: bool = False, lang: str = "en",
                  existing: bool = False) -> Path:
    """Write the recipe of the system `spec` (e.g. ``medical-v1+bm25>rr-v1``) as ``out/recipe.json``; its path.

    Args:
        out: the recipe's folder (a path: the page turns its name into one with :func:`page_folder`); None:
            :func:`default_folder`.
        source, folder, split, tune_on, exclude: the evaluation set and tuning queries, as for ⑧'s evaluation
            (:func:`studio.actions.evaluate.load_tuneset`; `source` "beir" or "db"): an unpinned fusion without
            `fusion` is tuned on them, never on the evaluated or trained-on queries (no `source` or no tuning
            queries: reciprocal rank, untuned, and the recipe says so). `exclude` (a training file) is also left
            out of the threshold's calibration.
        fusion: the fusion an evaluation chose (a report's ``recommendation["fusion"]`` or a system entry's).
        measured: an evaluation report (its entry for `spec` gives the metrics, and the fusion and reranker depth
            when `fusion` / `rerank_top` are not given) or :func:`studio.recipe.measured_from`'s dict.
        rerank_top: candidates the reranker rescores (default: the measured one, else RERANK_TOP); depth: candidates per
            first stage (default 100).
        target_precision: the precision the second threshold must reach.
        int8_check: also measure int8's speed-up and nDCG@10 change (:mod:`studio.serving.int8`) on the
            evaluation set `source` names (the project's gold labels when it names none), without `exclude`'s
            queries, into the recipe's ``int8``.
        lang: the language of the recipe's notes.

    The threshold is calibrated (:func:`studio.actions.calibrate.calibrate`) on the project's gold labels; without
    a database or without both relevant and irrelevant gold pairs it is null and ``threshold_note`` says why. The
    export is audited (``recipe.export``) in the project's log when the project has a database.

    Raises:
        StudioError: a spec's errors (``system_*``), ``recipe_run_file`` (a ``run:FILE`` stage),
            ``bad_precision``, ``bad_source``, ``tune_on_eval_split``,
            ``tune_on_needs_beir``, ``train_file_missing``, ``model_missing``, ``not_m3``, ``no_database`` (with
            `existing`, tuning on gold labels), ``recipe_from_trained`` (`measured` scored queries its models were
            trained or validated on: ``--include-trained``).
    """
    system = parse(spec)
    if system.run_files:  # precomputed rankings: nothing to deploy that could search a new query
        raise StudioError("recipe_run_file", spec=system.spec, file=system.run_files[0])
    if not 0 < float(target_precision) <= 1:
        raise StudioError("bad_precision", value=target_precision)
    report = measured if measured is not None and "models" in measured else None
    if report and (report.get("held_out") or {}).get("included"):
        raise StudioError("recipe_from_trained", spec=system.spec)
    entry = recipes.report_entry(report, system.spec) if report else None
    measured = recipes.measured_from(report, system.spec) if report else (dict(measured) if measured else None)
    if fusion is None and entry:
        fusion = entry.get("fusion")
    if rerank_top is None:
        rerank_top = (entry or {}).get("rerank_top") or RERANK_TOP
    depth = int(depth or recipes.DEFAULT_DEPTH)
    depth = max(depth, int(rerank_top) if system.reranker else 0)
    chosen = fusion if fusion is not None or len(system.stages) < 2 or system.fusion else \
        _tune(project, system, source, folder=folder, split=split, tune_on=tune_on, exclude=exclude,
              depth=depth, lang=lang, existing=existing)
    calibration, note = _calibrate(project, actor, system, exclude, float(target_precision))
    data = recipes.build_recipe(system, fusion=chosen, calibration=calibration, rerank_top=int(rerank_top),
                                depth=depth, threshold_note=note, measured=measured, lang=lang)
    if int8_check:
        data["int8"] = _int8(project, data, source, folder=folder, split=split, exclude=exclude, lang=lang,
                             existing=existing)
    path = recipes.write_recipe(data, Path(out) if out else default_folder(system.spec))
    if project.db_path.is_file():
        audit(project, actor, "recipe.export", entity="recipe",
              after={"path": str(path), "spec": data["spec"], "fusion": data["fusion"],
                     "threshold": (data["threshold"] or {}).get("best")})
    return path


def _tune(project: Project, system, source: str | None, *, folder, split, tune_on, exclude, depth: int, lang: str,
          existing: bool):
    """An unpinned fusion chosen on :func:`load_tuneset`'s queries, as ⑧'s evaluation chose it (its evaluated
    queries left out too); RRF, untuned, when there are none (or no `source` is named)."""
    tune = load_tuneset(project, source, folder=folder, split=split, tune_on=tune_on, exclude=exclude,
                        models=system.models, existing=existing) if source else None
    if tune is None:
        return fusion_for(system, None)
    evaluated = load_evalset(project, source, folder=folder, split=split, exclude=exclude, lang=lang,
                             existing=existing).queries.values()
    return fusion_for(system, tune, depth=depth, evaluated=list(evaluated))


def _int8(project: Project, data: dict, source: str | None, *, folder, split, exclude, lang: str,
          existing: bool) -> dict:
    """int8's cost for the recipe `data` on the held-out labelled queries of `source` (None: the gold labels).

    Raises:
        StudioError: ``int8_no_model`` (BM25 alone), ``int8_needs_labels`` (no source and no database), or
            :func:`load_evalset`'s errors.
    """
    if not has_models(data):
        raise StudioError("int8_no_model", spec=data["spec"])
    if source is None and not project.db_path.is_file():
        raise StudioError("int8_needs_labels")
    evalset = load_evalset(project, source or "db", folder=folder, split=split, exclude=exclude, lang=lang,
                           existing=existing)
    return int8_check(data, evalset)


def _calibrate(project: Project, actor: Actor, system, exclude,
               target_precision: float) -> tuple[dict | None, tuple[str, dict] | None]:
    """The calibration of the recipe's final scorer on the gold labels, or None and why not (a catalogue key and
    its params)."""
    target = calibration_target(system)
    if target.model is None:
        return None, None  # the recipe says why (BM25, a BGE-M3 mode)
    try:
        result = calibrate(project, actor, target.model, exclude=exclude, target_precision=target_precision,
                           kind=target.kind, existing=True)
    except StudioError as exc:
        if exc.code not in NO_THRESHOLD:
            raise
        key = "recipe.threshold_no_gold" if exc.code == "no_database" else "recipe.threshold_one_kind"
        return None, (key, {"model": target.model, **{k: v for k, v in exc.params.items() if k != "path"}})
    return result.as_dict(), None


# ------------------------------------------------------------------------------ wording of a recipe (UI and CLI)

def summary_lines(path: str | Path, lang: str = "en") -> list[str]:
    """What a written recipe holds, in `lang`: where it is, its system, the fusion and the threshold (or why there
    is none)."""
    recipe = Recipe.load(path)
    lines = [t("recipe.wrote", lang, path=str(path), spec=recipe.spec)]
    fusion = fusion_line({"spec": recipe.spec, "fusion": recipe.fusion}, lang) if recipe.fusion else None
    if fusion:
        lines.append(fusion)
    if recipe.reranker:
        lines.append(t("recipe.reranker", lang, model=recipe.reranker["model"], top=recipe.reranker["top_n"]))
    threshold = recipe.threshold
    if threshold:
        best = threshold["best"]
        lines.append(t("recipe.threshold", lang, threshold=f"{best['threshold']:.4f}",
                       precision=f"{best['precision']:.3f}", recall=f"{best['recall']:.3f}", f1=f"{best['f1']:.3f}",
                       pairs=threshold["pairs"]))
        at = threshold.get("at_precision")
        goal = f"{threshold['target_precision']:.2f}"
        lines.append(t("recipe.threshold_at", lang, target=goal, threshold=f"{at['threshold']:.4f}",
                       recall=f"{at['recall']:.3f}") if at else
                     t("calibrate.precision_unreached", lang, target=goal))
        scorer = calibration_target(recipe.spec)
        if scorer.note:  # what a fused first stage's threshold applies to
            lines.append(t(scorer.note, lang, **scorer.params))
    elif recipe.threshold_reason:
        reason = recipe.threshold_reason
        lines.append(t("recipe.no_threshold", lang, why=t(reason["key"], lang, **reason["params"])))
    elif recipe.threshold_note:
        lines.append(t("recipe.no_threshold", lang, why=recipe.threshold_note))
    if recipe.int8:
        q8 = recipe.int8
        lines.append(t("recipe.int8", lang, speedup=f"{q8['speedup']:.2f}", delta=f"{q8['ndcg_delta']:+.4f}",
                       queries=q8["queries"], evalset=q8.get("evalset", ""),
                       verdict=t("recipe.int8_advertised" if q8["advertised"] else "recipe.int8_not_advertised",
                                 lang, limit=q8.get("max_drop", 0.01))))
    return lines


def recommended(report: Mapping) -> tuple[str, Mapping | None] | None:
    """The system an evaluation report recommends and the fusion it measured, for ⑧'s button: ``(spec, fusion)``,
    or None for a report without systems.

    Raises:
        StudioError: ``recipe_from_trained`` for a report that scored queries its models learned from (it recommends
            nothing, and says why rather than "run an evaluation first").
    """
    if report and (report.get("held_out") or {}).get("included"):
        raise StudioError("recipe_from_trained", spec=", ".join(m["model"] for m in report["models"][:1]))
    rec = report.get("recommendation") if report else None
    return (rec["spec"], rec.get("fusion")) if rec else None

