"""Compare (⑨): one query through one or two systems over the project's corpus, with gold labels as badges; the
playground's similarity and scoring checks; sending a result to the annotation queue.

A side is a system spec (:mod:`studio.retrieval.systems`): ``bm25``, a model, ``NAME:sparse`` (BGE-M3), a fusion
``NAME+bm25`` (``@0.7`` pins a weight, ``@rrf`` reciprocal rank; unpinned, one query fuses by reciprocal rank), each
optionally ``>RERANKER``; searched by :func:`studio.retrieval.system_search.search_system`. The older form, a model
name plus a separate reranker, still works: it is the spec ``NAME>RERANKER``. A side may be a TREC run file in runs/,
``run:prod.trec`` (fused or reranked like any first stage): it shows the file's ranking for the typed query when the
query is one of the project's (matched by its text) and the file ranks it; otherwise that side says the file has no
ranking for this query (:attr:`Side.missing_run`).

Searching shows gold labels, so it needs an expert; putting a pair in the queue changes the project and is an
admin's (audited under the actor by the import it makes).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from studio.actions.base import Actor, Project, action
from studio.actions.files import run_file_names, run_path
from studio.actions.models import model_field as checked_model
from studio.errors import NotFoundError, StudioError
from studio.models.registry import require
from studio.retrieval import playground, tokenize
from studio.retrieval import systems as system_specs
from studio.retrieval.corpus_index import CorpusIndex, corpus_for
from studio.retrieval.rerank import DEFAULT_DEPTH
from studio.retrieval.search import one_query, rank_moves
from studio.retrieval.system_search import search_system
from studio.store import lookup
from studio.store.lookup import gold_for_query, query_keys, queue_pair

if TYPE_CHECKING:
    from sqlite_utils import Database

    from studio.retrieval.system_search import Details
    from studio.retrieval.systems import System

_DEMO = "⑨'s interactive demo views (one query at a time in the page)"


@dataclass(frozen=True)
class Side:
    """One system's results: its name as shown (its spec: ``bm25``, ``medical-v1+bm25>rr-v1``), the hits (rank,
    doc_key, score), how far each document moved up against the other side (None: not there; empty without another
    side), the milliseconds this side's search took (query encoding, searches, fusion and reranking; index building
    and model loading excluded; a query encoding or BM25 ranking both sides share counts on the side that ran it
    first — the whole response's time is :attr:`Comparison.ms`) and how it was searched (:class:`studio.retrieval.system_search.Details`: the fusion
    used, whether the spec pinned it, the reranker's depth). `missing_run` names the run file that has no ranking
    for the query (the side has no hits then)."""

    name: str
    hits: list
    moves: dict[str, int | None]
    ms: float
    details: Details | None = None
    missing_run: str | None = None


@dataclass(frozen=True)
class Comparison:
    """The two sides, every shown document (key → {title, text}), the query's gold labels (key → label) and the
    milliseconds the whole response took: the latency felt (reading the corpus version and the gold labels, both
    sides' searches — an index built on the first query included —, reading the shown documents)."""

    query: str
    left: Side
    right: Side
    documents: dict[str, dict]
    gold: dict[str, int]
    ms: float = 0.0


@dataclass(frozen=True)
class Results:
    """One model's results for a query (``studio search``), with the shown documents, the gold labels and the
    milliseconds the whole call took."""

    query: str
    side: Side
    documents: dict[str, dict]
    gold: dict[str, int]
    ms: float = 0.0


def system_of(spec: str | System | None, reranker: str | None = None) -> System:
    """A side's system: `spec` parsed (empty: ``default``, the ★ model), with `reranker` (the older form, or ⑨'s
    reranker picker) added as ``>RERANKER``.

    Raises:
        StudioError: the spec's errors (``system_empty``, ``system_too_many`` also when the spec names a reranker
            and another is given, ``system_bad_fusion``, ``system_bad_mode``).
    """
    system = spec if isinstance(spec, system_specs.System) else system_specs.parse((spec or "").strip() or "default")
    reranker = _clean(reranker)
    if reranker:
        if system.reranker:
            raise StudioError("system_too_many", spec=f"{system.spec}>{reranker}")
        system = replace(system, reranker=reranker)
    return system


def page_system(spec: str | None, reranker: str | None, *, field: str, model_field: str,
                reranker_field: str) -> str:
    """A side's system as typed or picked in the page, checked before it reaches an action: the spec parsed
    (:func:`system_of`) and every model in it a name, never a server path (:func:`studio.actions.models.
    model_field`; the CLI may name any folder). Returns the canonical spec.

    Args:
        field, model_field, reranker_field: how messages name the system field, a model in it and a reranker.

    Raises:
        StudioError: ``empty_field``, ``path_outside`` (a model or a run file outside its folder), the spec's errors;
            NotFoundError ``run_file_missing``.
    """
    if not (spec or "").strip():
        raise StudioError("empty_field", field=field)
    system = system_of(spec)
    for stage in system.stages:
        if stage.is_run:
            run_path(stage.run_name, field=field)  # a name inside runs/, never a server path
    stages = tuple(s if s.is_bm25 or s.is_run else replace(s, model=checked_model(s.model, field=model_field))
                   for s in system.stages)
    rerankers = [checked_model(r, field=reranker_field) for r in (system.reranker, _clean(reranker)) if r]
    return system_of(replace(system, stages=stages, reranker=rerankers[0] if rerankers else None),
                     rerankers[1] if len(rerankers) > 1 else None).spec


def system_choices(embedders: Sequence[str], runs: Sequence[str] = ()) -> list[str]:
    """What ⑨'s system pickers offer: ``bm25``, each embedder, then each fused with BM25 (``NAME+bm25``, reciprocal
    rank for a single query), then each run file in `runs` as ``run:NAME`` (:func:`run_names`); anything else can
    be typed."""
    return system_specs.choices(embedders, runs)


# The left side of a demo, and what every fused side adds: BM25.
BASELINE = system_specs.BM25


def with_baseline(model: str) -> str:
    """`model` fused with the BM25 baseline (``NAME+bm25``): the side a demo shows against BM25 alone."""
    return system_specs.fused(model, BASELINE)


def run_names() -> list[str]:
    """The TREC run files in the project's runs/ folder, as names inside it (what ``run:NAME`` takes)."""
    return run_file_names()


def default_depth() -> int:
    """How many first-stage candidates a reranker rescores when none is said (:data:`studio.retrieval.rerank.
    DEFAULT_DEPTH`)."""
    return DEFAULT_DEPTH


def playground_example() -> tuple[str, list[str]]:
    """The playground's first example, the keyword trap: a query and documents where the fruit text shares the
    keyword 苹果 and the useful answers do not."""
    return playground.KEYWORD_TRAP[0], list(playground.KEYWORD_TRAP[1])


def _corpus(project: Project, db: Database, query: str) -> tuple[CorpusIndex, dict[str, int], list[str]]:
    """The corpus at its current version (ids and keys kept in memory per version: one row read once kept),
    `query`'s gold labels and the keys of the stored queries with its text (what a run file's rankings are keyed
    by)."""
    if not (query or "").strip():
        raise StudioError("empty_query")
    corpus = corpus_for(db, project.db_path)
    if not len(corpus):
        raise StudioError("no_corpus")
    return corpus, gold_for_query(db, query), query_keys(db, query)


def _side(system: System, query: str, corpus: CorpusIndex, k: int, depth: int | None,
          query_keys: Sequence[str] = (), *, missing_ok: bool = False) -> Side:
    """One side's results (moves filled in by :func:`compare`). Indexes are built and models loaded before the
    timing starts (once per process and corpus version), so the side's own time does not show seconds of loading.
    With `missing_ok`, a run file without a ranking for the query gives a side without hits that names it."""
    try:
        hits, ms, details = search_system(system, query, corpus.keys, corpus.texts, k,
                                          rerank_depth=depth or default_depth(), query_keys=query_keys)
    except StudioError as exc:
        if not (missing_ok and exc.code == "run_no_ranking"):
            raise
        return Side(system.spec, [], {}, 0.0, None, missing_run=exc.params["file"])
    return Side(system.spec, hits, {}, ms, details)


def _require_models(system: System) -> None:
    """Every model of `system` checked for its place before anything runs (:func:`studio.models.registry.require`):
    a name that is nowhere (``foo`` in ``foo+bar``) is refused with the names in models/, a reranker as a first stage
    and an embedder after ``>`` are refused, in the studio's words rather than the loader's.

    Raises:
        StudioError: ``model_unknown``, ``model_is_reranker``, ``model_not_reranker``.
    """
    for stage in system.stages:
        if not (stage.is_bm25 or stage.is_run):
            require(stage.model, "embedder")
    if system.reranker:
        require(system.reranker, "reranker")


def _shown(db: Database, corpus: CorpusIndex, *sides: list) -> dict[str, dict]:
    """Key → {title, text} of the documents the sides show, read by id (the rest of the corpus stays on disk)."""
    return corpus.documents(db, [h.doc_key for hits in sides for h in hits])


def _clean(name: str | None) -> str | None:
    return (name or "").strip() or None


@action("expert", cli="search")
def search(project: Project, actor: Actor, /, query: str, system: str | System = "default", *, k: int = 10,
           reranker: str | None = None, depth: int | None = None) -> Results:
    """The top `k` documents of the project's corpus for `query` by `system` (a spec; the ★ default model when not
    named). The older form, a model name with `reranker`, is the system ``NAME>RERANKER``; a reranker rescores the
    first stage's top `depth`.

    Raises:
        StudioError: ``empty_query``, ``no_corpus``, the spec's errors (``system_*``), ``mode_not_searchable``,
            ``not_m3``, ``model_unknown``, ``model_is_reranker``, ``model_not_reranker``, ``model_missing``,
            ``run_file_missing``, ``run_no_ranking`` (a
            run file without a ranking for the query: it is not one of the project's, or the file lacks it).
    """
    t0 = time.perf_counter()
    chosen = system_of(system, reranker)  # a bad spec fails before the corpus is read
    _require_models(chosen)
    with project.db() as db:
        corpus, gold, stored = _corpus(project, db, query)
        side = _side(chosen, query.strip(), corpus, int(k), depth, stored)
        shown = _shown(db, corpus, side.hits)
    return Results(query.strip(), side, shown, gold, (time.perf_counter() - t0) * 1000)


@action("expert", why_no_cli=_DEMO + " (one system at a time: `studio search --system SPEC`)")
def compare(project: Project, actor: Actor, /, query: str, left: str | System, right: str | System, k: int = 10,
            left_reranker: str | None = None, right_reranker: str | None = None,
            depth: int | None = None) -> Comparison:
    """`query` through two systems side by side (specs: ``bm25`` against ``medical-v1+bm25``, say), with how far
    each document moved against the other side. The older form, a model name per side with an optional reranker,
    is the system ``NAME>RERANKER``; a reranker rescores its side's top `depth`. A run-file side without a ranking
    for the query has no hits and names the file (:attr:`Side.missing_run`); the other side still shows.

    Nothing per query grows with the corpus: the corpus version is one row, the ids and keys stay in memory per
    version (:mod:`studio.retrieval.corpus_index`), both sides share one query encoding per model and one BM25
    ranking, and only the shown documents are read. :attr:`Comparison.ms` is the whole call.

    Raises:
        StudioError: ``empty_query``, ``no_corpus``, the spec's errors (``system_*``), ``mode_not_searchable``,
            ``not_m3``, ``model_unknown``, ``model_is_reranker``, ``model_not_reranker``, ``model_missing``,
            ``run_file_missing``.
    """
    t0 = time.perf_counter()
    systems = system_of(left, left_reranker), system_of(right, right_reranker)
    for chosen in systems:
        _require_models(chosen)
    with project.db() as db:
        corpus, gold, stored = _corpus(project, db, query)
        query = query.strip()
        with one_query():  # one query encoding per model and one BM25 ranking, shared by both sides
            one, two = (_side(s, query, corpus, int(k), depth, stored, missing_ok=True) for s in systems)
        shown = _shown(db, corpus, one.hits, two.hits)
    return Comparison(query, replace(one, moves=rank_moves(one.hits, two.hits)),
                      replace(two, moves=rank_moves(two.hits, one.hits)), shown, gold,
                      (time.perf_counter() - t0) * 1000)


@action("expert", why_no_cli=_DEMO)
def similarity(project: Project, actor: Actor, /, a: str, b: str, models: Sequence[str]) -> dict[str, float]:
    """Cosine similarity of texts `a` and `b` under each embedder (by the name given)."""
    out = {}
    for name in models:
        path = require(name, "embedder")
        out[name] = playground.similarity(a, b, [path])[path]
    return out


@action("expert", why_no_cli=_DEMO)
def score_documents(project: Project, actor: Actor, /, query: str, documents: Sequence[str], models: Sequence[str],
                    reranker: str | None = None) -> dict[str, list[float]]:
    """Each embedder's cosine score of every document for `query`, and the reranker's (its logit) when given; keyed
    by the names given."""
    documents = list(documents)
    out = {}
    for name in models:
        path = require(name, "embedder")
        out[name] = playground.score_documents(query, documents, [path])[path]
    reranker = _clean(reranker)
    if reranker:
        path = require(reranker, "reranker")
        out[reranker] = playground.score_documents(query, documents, [], path)[path]
    return out


@action("expert", why_no_cli=_DEMO)
def example_queries(project: Project, actor: Actor, /, limit: int = 12) -> list[str]:
    """Queries that have gold labels (the ones a demo can show badges for), most labelled first."""
    with project.db() as db:
        return lookup.example_queries(db, limit)


@action("admin", why_no_cli="⑨'s 'send to annotation queue' button (the CLI adds pairs with `studio import pairs`)")
def send_to_queue(project: Project, actor: Actor, /, query: str, doc_key: str) -> bool:
    """Put (`query`, document `doc_key`) in the annotation queue, the query created if new; True when the pair is
    new. Audited under the actor (an ``import`` entry from source ``compare``).

    Raises:
        StudioError: ``empty_query``; NotFoundError ``document_not_found``.
    """
    if not (query or "").strip():
        raise StudioError("empty_query")
    if not (doc_key or "").strip():
        raise NotFoundError("document_not_found", key=doc_key or "")
    with project.db() as db:
        return queue_pair(db, query, doc_key, actor=actor.name)


def highlight_terms(query: str) -> list[str]:
    """Terms of `query` to mark in a document, longest first: what BM25 sees (the studio's tokenizer)."""
    return tokenize.highlight_terms(query)
