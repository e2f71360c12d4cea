"""① Collect: import files, pool candidates from the corpus, load the demo project, the project's counts.

All of it changes (or reveals) the whole project, so it needs an admin.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from studio import demo
from studio import queue as strategies
from studio.actions import files, queue
from studio.actions.base import Actor, Project, action
from studio.actions.evaluate import load_evalset
from studio.errors import InputError, StudioError
from studio.evaluation import holes
from studio.evaluation.heldout import hold_out, models_of
from studio.evaluation.systems import parse, run_systems
from studio.ingest import read_any
from studio.retrieval.pooling import pool_candidates
from studio.retrieval.systems import FIRST_STAGE_DEPTH, RERANK_TOP
from studio.store import pairs as store_pairs
from studio.store import queue as store_queue
from studio.store.imports import import_batch

KINDS = ("pairs", "ratings", "beir", "logs")
HOLES = "holes"  # the source of the pairs pool_unjudged adds: the unjudged pairs of systems' top K

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Counts:
    """The tiles of ①: table sizes (documents, queries, pairs, annotators, ratings, adjudications), and whether
    nothing has been imported yet (the welcome with the demo button shows then)."""

    tables: dict[str, int]
    empty: bool


@action("admin", cli="import")
def import_file(project: Project, actor: Actor, kind: str, path: str | Path, *, display_name: str | None = None,
                split: str = "test", min_relevant: int = 1, queue: bool | None = None):
    """Import a file (or, for ``beir``, a folder) of `kind` (pairs, ratings, beir, logs); all or nothing.

    Args:
        display_name: what messages and the import's record call the file instead of `path` (the UI's upload
            lands at a temporary path; the person knows it by its own name).
        split, min_relevant: ``beir`` only: the qrels file and the score that counts as relevant.
        queue: put new pairs in the annotation queue; default yes, except for ``beir`` (labelled pairs).

    Returns:
        The :class:`~studio.store.imports.ImportSummary` (new and existing pairs, documents, queries, ratings).
    """
    if kind not in KINDS:
        raise StudioError("bad_import_kind", kind=kind, kinds=", ".join(KINDS))
    options = {"split": split or "test", "min_relevant": int(min_relevant)} if kind == "beir" else {}
    try:
        batch = read_any(kind, Path(path), **options)
        if display_name:
            batch.file = display_name
        with project.db() as db:
            return import_batch(db, batch, queue=(kind != "beir") if queue is None else queue, actor=actor.name)
    except InputError as exc:
        if display_name:
            _rename(exc, str(path), display_name)
        raise


def _rename(exc: InputError, path: str, shown: str) -> None:
    """Make `exc` name `shown` where it names `path` (or a file inside that folder), in its message too."""
    def swap(text):
        if not isinstance(text, str):
            return text
        if text == path:
            return shown
        return shown + text[len(path):] if text.startswith(path.rstrip(os.sep) + os.sep) else text

    exc.file = swap(exc.file)
    exc.params = {key: swap(value) for key, value in exc.params.items()}
    exc.args = (exc.message("en"),)  # str(exc), set when it was raised, named `path`


@action("admin", cli="pool")
def pool(project: Project, actor: Actor, k: int = 20, retriever: str = "hybrid", model: str | None = None,
         progress: Progress | None = None, *, existing: bool = False) -> dict:
    """Retrieve the top-`k` documents for every query (bm25, dense or hybrid) and queue them as pairs to rate.

    `model` (dense, hybrid): a name in models/, a path or a hub id; None or empty means the default model (★).
    Unless an admin chose another queue strategy, the untouched pairs are then served in the ``systems`` order
    (:data:`studio.queue.DEFAULT`: the strategy the man-page benchmark measured best, for finding relevant
    pairs and for the fine-tune trained on the first ratings; bench/RESULTS.md).
    Returns counts: queries, candidates and pairs added, with the retriever, k and the model used, and
    ``strategy``: the order the queue now serves in (None: unchanged).
    """
    with project.db(existing=existing) as db:
        result = pool_candidates(db, k=int(k), retriever=retriever, model=(model or "").strip() or None,
                                 progress=progress, actor=actor.name, db_path=project.db_path)
        chosen = store_queue.get_setting(db, store_queue.STRATEGY_KEY)
    result["strategy"] = None
    if result["added"] and chosen in (None, strategies.DEFAULT):
        queue.set_strategy(project, actor, strategies.DEFAULT, model=(model or "").strip() or None)
        result["strategy"] = strategies.DEFAULT
    return result


@action("admin", cli="pool")
def pool_unjudged(project: Project, actor: Actor, /, systems: Sequence[str] = (), *, depth: int = 10,
                  exclude: str | Path | None = None, runs: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
                  progress: Progress | None = None, existing: bool = False) -> dict:
    """Judge the holes: queue every unjudged (query, document) pair in the top `depth` of `systems`, served first.

    The queries are those an evaluation on the project's gold labels uses (at least one relevant gold label),
    without the queries of the training file `exclude` and of its ``.valid.jsonl`` twin
    (:func:`studio.actions.evaluate.load_evalset`) and without those a model of `systems` was trained or validated
    on (:func:`studio.evaluation.heldout.hold_out`, as an evaluation leaves them out). Each system (a spec: ``bm25``, ``NAME``, ``A+B``,
    ``run:FILE``, ``…>RERANKER``) runs over the project's corpus as an evaluation runs it
    (:func:`studio.evaluation.systems.run_systems`, candidates per first stage max(depth, FIRST_STAGE_DEPTH), a reranker
    over the top RERANK_TOP); an unpinned fusion is reciprocal-rank here, untuned (pin ``A+B@0.7`` to pool a tuned one). A spec in
    `runs` is not run: its ranking is taken as given (query key → {document key: score}; ⑧ passes the runs of the
    evaluation it just showed, keyed by their names).

    Every pair of the union of their top `depth` without a gold label (:func:`studio.evaluation.holes.holes`, pooling
    order) is added under source ``holes`` and served before every other untouched pair, without changing the
    queue's strategy (:func:`studio.store.queue.serve_first`; a strategy chosen afterwards, or the default one a
    later ``studio pool`` applies, orders them with the rest again); one audited ``pool`` entry. Pairs already queued
    (not rated yet, or awaiting a second rating or an expert) are counted, not added; a second call adds nothing.
    Documents a run file names that the corpus lacks cannot be rated: counted as ``unknown_documents``.

    Returns:
        ``{"added": N (pairs created), "already_queued": M, "judged": J (labelled meanwhile), "outside_queue": O,
        "ordered": pairs now served first, "candidates": distinct unjudged pairs, "unknown_documents": U,
        "systems": {spec: {"pairs", "judged", "unjudged", "judged_share", "queries", "missing_queries",
        "fusion", "ran"}}, "queries": Q, "depth": depth, "source": "holes"}``; ``ran`` is False for a spec taken
        from `runs`, ``fusion`` how a fused system was fused (None otherwise).

    Raises:
        StudioError: ``pool_no_systems``, ``bad_pool_depth``, a spec's errors, ``no_eval_queries``,
            ``train_file_missing``, ``model_missing``, ``run_file_missing``, a run file's InputError,
            ``no_database`` (with `existing`).
    """
    given = dict(runs or {})
    specs = list(dict.fromkeys([*(parse(s).spec for s in systems or () if str(s).strip()), *given]))
    if not specs:
        raise StudioError("pool_no_systems")
    depth = holes.check_depth(depth)
    report = progress or (lambda fraction, what: None)
    evalset = load_evalset(project, "db", exclude=exclude, existing=existing)
    evalset, held = hold_out(evalset, models_of(specs))  # the queries an evaluation of these systems scores
    to_run = [parse(s) for s in specs if s not in given]
    results = run_systems(evalset, to_run, depth=max(depth, FIRST_STAGE_DEPTH), rerank_top=RERANK_TOP,
                          progress=lambda f, what: report(0.9 * f, what)) if to_run else []
    ran = {r.model: r for r in results}
    rankings = {spec: given[spec] if spec in given else ran[spec].run for spec in specs}
    per_system = holes.count_unjudged(rankings, evalset.qrels, depth)
    for spec in specs:
        info = (ran[spec].info or {}) if spec in ran else {}
        per_system[spec].update(ran=spec in ran, fusion=info.get("fusion"))
    found = holes.holes(rankings, evalset.qrels, depth)
    known = [(q, d) for q, d in found if d in evalset.corpus]
    report(0.95, "store")
    with project.db() as db:
        done = store_queue.serve_first(db, known, source=HOLES, actor=actor.name,
                                       details={"systems": specs, "depth": depth, "queries": len(evalset.qrels),
                                                "exclude": str(exclude) if exclude else None})
    return {**done, "candidates": len(found), "unknown_documents": len(found) - len(known), "systems": per_system,
            "queries": len(evalset.qrels), "left_out_trained": held.left_out, "depth": depth, "source": HOLES}


@action("admin", cli="demo")
def load_demo(project: Project, actor: Actor):
    """Load the bundled bilingual medical demo project into an empty project (refused when it has data).

    Returns the :class:`~studio.store.imports.ImportSummary` (pairs, documents, queries, ratings).
    """
    with project.db() as db:
        return demo.load_demo(db, actor=actor.name)


@action("admin", why_no_cli="the tiles of ① (the CLI's `studio gold` and `studio annotators` give the counts)")
def counts(project: Project, actor: Actor) -> Counts:
    """How big the project is, for the tiles of ①."""
    with project.db() as db:
        tables = store_pairs.counts(db)
    return Counts(tables, tables["documents"] == 0 and tables["queries"] == 0)


@action("admin", why_no_cli="the BEIR folder picker of ① (the CLI takes any folder: `studio import beir DIR`)")
def beir_folders(project: Project, actor: Actor) -> list[str]:
    """The BEIR folders the page may import from: ``demo`` (the bundled one), then the folders in datasets/."""
    return files.dataset_names()