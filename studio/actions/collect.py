"""① Collect: import files, pool candidates from the corpus, load the demo project, the project's counts.

All of it changes (or reveals) the whole project, so it needs an admin.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from studio.actions import files
from studio.actions.base import Actor, Project, action
from studio.errors import InputError, StudioError

KINDS = ("pairs", "ratings", "beir", "logs")

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
    from studio.ingest import read_any
    from studio.store.imports import import_batch

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
    (:data:`studio.selection.DEFAULT`: the strategy the man-page benchmark measured best, for finding relevant
    pairs and for the fine-tune trained on the first ratings; bench/RESULTS.md).
    Returns counts: queries, candidates and pairs added, with the retriever, k and the model used, and
    ``strategy``: the order the queue now serves in (None: unchanged).
    """
    from studio import selection
    from studio.retrieval.pooling import pool_candidates
    from studio.store import queue as store_queue

    with project.db(existing=existing) as db:
        result = pool_candidates(db, k=int(k), retriever=retriever, model=(model or "").strip() or None,
                                 progress=progress, actor=actor.name)
        chosen = store_queue.get_setting(db, store_queue.STRATEGY_KEY)
    result["strategy"] = None
    if result["added"] and chosen in (None, selection.DEFAULT):
        from studio.actions import queue

        queue.set_strategy(project, actor, selection.DEFAULT, model=(model or "").strip() or None)
        result["strategy"] = selection.DEFAULT
    return result


@action("admin", cli="demo")
def load_demo(project: Project, actor: Actor):
    """Load the bundled bilingual medical demo project into an empty project (refused when it has data).

    Returns the :class:`~studio.store.imports.ImportSummary` (pairs, documents, queries, ratings).
    """
    from studio.demo import load_demo as load

    with project.db() as db:
        return load(db, actor=actor.name)


@action("admin", why_no_cli="the tiles of ① (the CLI's `studio gold` and `studio annotators` give the counts)")
def counts(project: Project, actor: Actor) -> Counts:
    """How big the project is, for the tiles of ①."""
    from studio.store import pairs as store_pairs

    with project.db() as db:
        tables = store_pairs.counts(db)
    return Counts(tables, tables["documents"] == 0 and tables["queries"] == 0)


@action("admin", why_no_cli="the BEIR folder picker of ① (the CLI takes any folder: `studio import beir DIR`)")
def beir_folders(project: Project, actor: Actor) -> list[str]:
    """The BEIR folders the page may import from: ``demo`` (the bundled one), then the folders in datasets/."""
    return files.dataset_names()