"""Encode ahead (⑦'s button, ``studio index``): bring a model's stored vectors of the project up to the corpus now,
so ⑨'s first query, a pool and an evaluation read them instead of waiting for the encoding; and what the page and
the CLI need to show any corpus encoding's progress with an ETA.

Encoding progress travels by context, not by argument (:mod:`studio.retrieval.progress_eta`): the page or the CLI
wraps an action call in :func:`encoding_progress` with a listener (:func:`eta_listener` turns a (fraction, text)
bar into one) and every corpus encoding inside it reports (encoded, to encode) — ⑨'s first query, ``pool``,
``evaluate``, :func:`encode_ahead`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from studio.actions.base import Actor, Project, action
from studio.errors import StudioError
from studio.retrieval import progress_eta, vector_store
from studio.retrieval.bm25_store import project_bm25
from studio.retrieval.stages import BM25
from studio.store.corpus import document_count

encoding_progress = progress_eta.reporting  # with encoding_progress(listener): … every corpus encoding reports
eta_listener = progress_eta.describing  # (report(fraction, text), lang) → an (encoded, to encode) listener
eta_text = progress_eta.eta_text  # (done, total, elapsed seconds, lang) → "1,234 / 20,000 · ETA 3 min"
Progress = progress_eta.Progress


@dataclass(frozen=True)
class Indexed:
    """What :func:`encode_ahead` did: the model as named (``bm25`` for the BM25 index), the documents the index
    holds now, how many this call encoded and how many it reused (None for BM25: it indexes a corpus version
    whole), and the seconds it took."""

    model: str
    documents: int
    encoded: int | None
    reused: int | None
    seconds: float


@action("expert", cli="index")
def encode_ahead(project: Project, actor: Actor, /, model: str | None = "default", *,
                 progress: Progress | None = None, keep: bool = True) -> Indexed:
    """Encode the project's corpus with `model` (a name in models/, ``default`` for the ★ model, a folder or a hub
    id) into its vector store now: only the documents that are new or changed since the last encoding are encoded
    (:func:`studio.retrieval.vector_store.encode_ahead`); `progress` (else :func:`encoding_progress`'s listener)
    hears (encoded, to encode). ``bm25`` builds the saved BM25 index instead
    (:func:`studio.retrieval.bm25_store.project_bm25`). `keep`: also hold the vectors in this process's memory (the
    app, where ⑨ searches next); a CLI run that exits passes False.

    Raises:
        StudioError: ``no_database``, ``no_corpus``, ``model_unknown``, ``model_is_reranker``, ``model_missing``.
    """
    name = (model or "").strip() or "default"
    with project.db(existing=True) as db:
        if not document_count(db):
            raise StudioError("no_corpus")
    if name.lower() == BM25.name:
        t0 = time.perf_counter()
        ids, _ = project_bm25(project.db_path)
        return Indexed(BM25.name, len(ids), None, None, round(time.perf_counter() - t0, 2))
    done = vector_store.encode_ahead(project.db_path, name, progress=progress, keep=keep)
    return Indexed(name, done.documents, done.encoded, done.reused, done.seconds)
