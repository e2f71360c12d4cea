"""Evaluate (⑧): retrieval quality of models on an evaluation set, compared with significance tests; the embedding
map; the HTML/CSV reports.

The evaluation set is loaded in one place, :func:`load_evalset`: a BEIR folder's split or the project's gold
labels, without the queries of a training file. Everything here shows gold labels, so it needs an expert.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio import config
from studio.actions.base import Actor, Project, action
from studio.dataset.naming import validation_twin
from studio.errors import StudioError
from studio.evaluation import charts as report_charts  # the report's figures, which ⑧ shows too
from studio.evaluation import embedding_map as maps
from studio.evaluation import export, metrics, runner
from studio.evaluation.embedding_map import build_maps
from studio.evaluation.heldout import hold_out, models_of, validated_only
from studio.evaluation.holes import holes
from studio.evaluation.report import evaluate_models, evaluate_systems, file_names
from studio.evaluation.systems import parse
from studio.i18n import t
from studio.retrieval import systems as system_specs_
from studio.retrieval.stages import RUN_FILE
from studio.retrieval.systems import FIRST_STAGE_DEPTH, RERANK_TOP  # noqa: F401  (⑧'s defaults)
from studio.store.gold import gold_set

SOURCES = ("beir", "db")  # a BEIR folder, or this project's gold labels
DEFAULT_SPLIT = "test"


@dataclass
class Evaluation:
    """An evaluation's report (JSON-ready), its comparisons, the evaluation set it ran on and the queries the
    embedding map can show (id, text)."""

    report: dict
    comparisons: list
    evalset: Any
    map_queries: list[tuple[str, str]] = field(default_factory=list)
    runs: dict = field(default_factory=dict)  # each system's run (spec → query → document → score)


@dataclass
class EmbeddingMap:
    """One map panel per distinct model (:class:`studio.evaluation.embedding_map.MapPanel`) and the evaluation
    set's query texts (for the per-query CSV written beside the map)."""

    panels: list
    queries: dict[str, str]


@dataclass(frozen=True)
class Reports:
    """The report files written (None for one not asked for)."""

    html: Path | None
    csv: Path | None
    queries: Path | None


# ------------------------------------------------------------------------------------------- the evaluation set

def load_evalset(project: Project, source: str, *, folder: str | Path | None = None, split: str | None = None,
                 exclude: str | Path | None = None, lang: str = "en", existing: bool = False):
    """The evaluation set: a BEIR folder's `split` (``source="beir"``; the bundled demo when `folder` is None) or
    the project's gold labels (``"db"``), without the queries of the training file `exclude` and of its validation
    twin ``X.valid.jsonl`` (a fine-tune learned from both); its name says which, in `lang` (e.g. "demo/test without
    the queries of train.jsonl and train.valid.jsonl").

    Raises:
        StudioError: ``bad_source``; ``train_file_missing``; ``no_eval_queries`` when no labelled query is left;
            the BEIR reader's errors; ``no_database`` for gold labels with `existing` and no database.
    """
    if source not in SOURCES:
        raise StudioError("bad_source", source=source, sources=", ".join(SOURCES))
    split = (split or "").strip() or DEFAULT_SPLIT
    held_out = runner.training_queries(exclude) if exclude else None
    folder = Path(folder) if folder else config.DEMO_DIR
    name = f"{folder.name}/{split}" if source == "beir" else t("evaluate.evalset_gold", lang)
    if held_out is not None:
        files = file_names(runner.held_out_files(exclude), lang)
        name = t("evaluate.evalset_held_out", lang, evalset=name, file=files)
    if source == "beir":
        return runner.from_beir(folder, split, held_out, name=name)

    with project.db(existing=existing) as db:
        gold = gold_set(db)
    return runner.from_gold(gold, held_out, name=name, db_path=project.db_path)


def load_tuneset(project: Project, source: str, *, folder: str | Path | None = None, split: str | None = None,
                 tune_on: str | None = None, exclude: str | Path | None = None, models: Sequence[str] = (),
                 existing: bool = False):
    """The labelled queries that tune fusion weights, never the evaluated ones: a BEIR folder's `tune_on` split
    (the systems leave out what their fine-tunes were trained on), or — on the project's gold labels — the queries
    of the validation file beside the training file `exclude`, else those some of `models` was validated on and none
    trained on (an export's validation split: left out of the evaluation, never a gradient step;
    :func:`studio.evaluation.heldout.validated_only`). None when there is nothing to tune on.

    Raises:
        StudioError: ``tune_on_eval_split`` (the evaluated split), ``tune_on_needs_beir`` (a split name on gold
            labels), the BEIR reader's errors.
    """
    tune_on = (tune_on or "").strip() or None
    if source == "beir":
        if not tune_on:
            return None
        split = (split or "").strip() or DEFAULT_SPLIT
        if tune_on == split:
            raise StudioError("tune_on_eval_split", split=split)
        folder = Path(folder) if folder else config.DEMO_DIR
        return runner.from_beir(folder, tune_on, name=f"{folder.name}/{tune_on}")
    if tune_on:
        raise StudioError("tune_on_needs_beir")

    twin = validation_twin(exclude) if exclude else None
    if twin is None and not models:
        return None
    with project.db(existing=existing) as db:
        gold = gold_set(db)
    if twin is not None:
        texts = runner.file_queries(twin)
        keys = {q for q, text in gold.queries.items() if text in texts}
        name = twin.name
    else:
        keys = validated_only(gold.queries, models)
        name = "validation queries"
    qrels = {q: dict(labels) for q, labels in gold.labels.items()
             if q in keys and any(v > 0 for v in labels.values())}
    if not qrels:
        return None
    return runner.EvalSet(name, {q: gold.queries[q] for q in qrels}, dict(gold.corpus), qrels)


def system_specs(models: Sequence[str], systems: Sequence[str] = (), *, mode: str = "dense",
                 reranker: str | None = None, include_first_stage: bool = True) -> list[str]:
    """`models` as system specs (``NAME`` or ``NAME:MODE``; with a reranker ``NAME>R`` too, and only that with
    ``include_first_stage`` False), then `systems` as given."""
    specs = []
    for name in (str(m).strip() for m in models or []):
        if not name:
            continue
        first = name if (mode or "dense") == "dense" else f"{name}:{mode}"
        if not reranker or include_first_stage:
            specs.append(first)
        if reranker:
            specs.append(f"{first}>{reranker}")
    return specs + [str(s).strip() for s in systems or [] if str(s).strip()]


def page_systems(models: Sequence[str], *, mode: str = "dense", reranker: str | None = None) -> list[str]:
    """What ⑧ evaluates for the models picked there: each model (in `mode`; with a reranker, also followed by it),
    BM25 — always: it costs seconds and is the baseline to beat — and each model fused with BM25."""
    firsts = system_specs(models, mode=mode)
    specs = system_specs(models, mode=mode, reranker=reranker) if reranker else firsts
    return specs + [BASELINE] + [system_specs_.fused(spec, BASELINE) for spec in firsts]


# The baseline every evaluation and comparison includes: BM25.
BASELINE = system_specs_.BM25


def run_system(name: str) -> str:
    """The system spec of a TREC run file in runs/ (`name` inside that folder)."""
    return RUN_FILE.spec_of(name.strip())


# ------------------------------------------------------------------------------------------------------- actions

@action("expert", cli="eval")
def evaluate(project: Project, actor: Actor, /, models: Sequence[str], source: str, *,
             systems: Sequence[str] | None = None, tune_on: str | None = None,
             folder: str | Path | None = None, split: str | None = None, exclude: str | Path | None = None,
             ks: str | Sequence[int] | None = None, mode: str = "dense", weights: Sequence[float] | None = None,
             reranker: str | None = None, rerank_top: int = RERANK_TOP, include_first_stage: bool = True,
             run_out: Path | None = None, include_trained: bool = False, lang: str = "en", existing: bool = False,
             progress: Callable[[float, str], None] | None = None) -> Evaluation:
    """Evaluate `models` (the first is the baseline) on :func:`load_evalset`'s set; P@K, Recall@K, MRR@K, nDCG@K
    per model and, with two or more, each change and its significance (:func:`studio.evaluation.report.
    evaluate_models`). `ks`: cut-offs, "1,5,10" or a sequence (empty: 1, 5, 10, 20).

    With `systems` (specs such as ``bm25``, ``NAME+bm25``, ``NAME>RERANKER``; see studio.evaluation.systems) every
    model and system is evaluated as a system (:func:`system_specs`; `weights` does not apply), fusions tuned on
    :func:`load_tuneset`'s queries (`tune_on`: a BEIR split), and the report names the ``recommended`` one.

    Held out by default: every query that a model of the evaluated systems (any stage, rerankers included) was
    trained or validated on is left out (:func:`studio.evaluation.heldout.hold_out`), and ``report["held_out"]``
    says how many. `include_trained` scores them anyway: then no system is recommended (``recommended`` None,
    ``recommendation_withheld`` says why) and no recipe can be exported from the report.

    Raises:
        StudioError: ``bad_cutoffs``, ``pick_models``, the evaluation set's errors, ``not_m3``, ``model_missing``,
            a spec's errors, ``tune_on_eval_split``.
    """
    cutoffs = parse_cutoffs(ks if ks is None or isinstance(ks, str) else ",".join(map(str, ks)))
    names = [str(m).strip() for m in models or [] if str(m).strip()]
    reranker = (reranker or "").strip() or None
    specs = system_specs(names, systems or [], mode=mode, reranker=reranker,
                         include_first_stage=include_first_stage) if systems else []
    if not names and not specs:
        raise StudioError("pick_models")
    if specs:
        for spec in specs:
            parse(spec)  # a typo fails before the evaluation set loads

    runs: dict = {}
    learners = models_of(specs) if specs else names + ([reranker] if reranker else [])
    evalset = load_evalset(project, source, folder=folder, split=split, exclude=exclude, lang=lang,
                           existing=existing)
    evalset, held = hold_out(evalset, learners, include_trained=include_trained)
    if specs:
        tune = load_tuneset(project, source, folder=folder, split=split, tune_on=tune_on, exclude=exclude,
                            models=learners, existing=existing)
        report, comparisons = evaluate_systems(evalset, specs, cutoffs, tune=tune, rerank_top=int(rerank_top),
                                               run_out=run_out, progress=progress, keep_runs=runs)
    else:
        if (tune_on or "").strip():
            raise StudioError("tune_on_without_systems")
        report, comparisons = evaluate_models(evalset, names, cutoffs, mode=mode or "dense", weights=weights,
                                              reranker=reranker, rerank_top=int(rerank_top),
                                              include_first_stage=include_first_stage, run_out=run_out,
                                              progress=progress)
    report["held_out"] = held.as_dict()
    if runs:
        flagged = [w["model"] for w in report.get("warnings", []) if w["kind"] == "low_judged" and w["model"] in runs]
        # What "judge the holes" would queue: distinct pairs, a document two systems share counted once
        report["holes"] = {"depth": 10, "systems": flagged,
                           "pairs": len(holes({s: runs[s] for s in flagged}, evalset.qrels, 10)) if flagged else 0}
    if held.included:
        report["recommended"] = report["recommendation"] = None
        report["recommendation_withheld"] = "include_trained"
    picked = maps.sample(evalset).query_ids
    return Evaluation(report, comparisons, evalset, [(q, evalset.queries[q]) for q in picked], runs)


@action("expert", why_no_cli="⑧'s interactive embedding map (t-SNE), drawn in the page")
def embedding_map(project: Project, actor: Actor, /, models: Sequence[str], source: str, *,
                  folder: str | Path | None = None, split: str | None = None, exclude: str | Path | None = None,
                  picked: Sequence[str] | None = None, lang: str = "en") -> EmbeddingMap:
    """The embedding maps of the baseline and the last model over :func:`load_evalset`'s set; `picked` query ids
    colour the documents by their labels (all sampled queries when empty)."""
    names = [str(m).strip() for m in models or [] if str(m).strip()]
    if not names:
        raise StudioError("pick_models")
    evalset = load_evalset(project, source, folder=folder, split=split, exclude=exclude, lang=lang)
    return EmbeddingMap(build_maps(evalset, [names[0], names[-1]], list(picked or []) or None), evalset.queries)


@action("expert", why_no_cli="part of `studio eval` (its --html and --csv options)")
def write_reports(project: Project, actor: Actor, /, report: dict, *, lang: str = "en",
                  queries: Mapping[str, str] | None = None, figure=None, html: Path | None = None,
                  csv: Path | None = None) -> Reports:
    """Write an evaluation report as files: the self-contained HTML page (with the embedding map `figure` when
    given) at `html`, the metrics CSV at `csv` with its per-query CSV beside it (``<stem>.queries.csv``).

    Without `html` and `csv`: all three (report.html, metrics.csv, queries.csv) into a fresh folder under exports/
    — the app's downloads.
    """
    per_query = None
    if html is None and csv is None:
        config.EXPORTS_DIR.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="eval-", dir=config.EXPORTS_DIR))
        html, csv, per_query = folder / "report.html", folder / "metrics.csv", folder / "queries.csv"
    elif csv is not None:
        per_query = Path(csv).with_name(Path(csv).stem + ".queries.csv")
    return Reports(export.write_html(report, html, lang, embedding_map=figure) if html else None,
                   export.write_csv(report, csv) if csv else None,
                   export.write_queries_csv(report, per_query, queries) if per_query else None)


# ------------------------------------------------------------------------------- wording of a report (UI and CLI)

def parse_cutoffs(text: str | None) -> tuple[int, ...]:
    """"1,5,10" → (1, 5, 10); empty → 1, 5, 10, 20 (StudioError ``bad_cutoffs`` otherwise), for `studio eval --k`."""
    return metrics.parse_cutoffs(text)


# The report's sentences and words (held_out_line, warning_lines, verdict…) are in studio/actions/wording.py.
