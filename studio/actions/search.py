"""Compare (⑨): one query through one or two models (each optionally followed by a reranker) over the project's
corpus, with gold labels as badges; the playground's similarity and scoring checks; sending a result to the
annotation queue.

Searching shows gold labels, so it needs an expert; putting a pair in the queue changes the project and is an
admin's (audited under the actor by the import it makes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from studio.actions.base import Actor, Project, action
from studio.errors import NotFoundError, StudioError

_DEMO = "⑨'s interactive demo views (one query at a time in the page)"


@dataclass(frozen=True)
class Side:
    """One model's results: its name as shown ("model" or "model → reranker"), the hits (rank, doc_key, score),
    how far each document moved up against the other side (None: not there; empty without another side) and the
    milliseconds the search took (corpus encoding and model loading excluded)."""

    name: str
    hits: list
    moves: dict[str, int | None]
    ms: float


@dataclass(frozen=True)
class Comparison:
    """The two sides, every shown document (key → {title, text}) and the query's gold labels (key → label)."""

    query: str
    left: Side
    right: Side
    documents: dict[str, dict]
    gold: dict[str, int]


@dataclass(frozen=True)
class Results:
    """One model's results for a query (``studio search``), with the shown documents and the gold labels."""

    query: str
    side: Side
    documents: dict[str, dict]
    gold: dict[str, int]


def default_depth() -> int:
    """How many dense candidates a reranker rescores when none is said (:data:`studio.retrieval.rerank.
    DEFAULT_DEPTH`)."""
    from studio.retrieval.rerank import DEFAULT_DEPTH

    return DEFAULT_DEPTH


def playground_example() -> tuple[str, list[str]]:
    """The playground's first example, the keyword trap: a query and documents where the fruit text shares the
    keyword 苹果 and the useful answers do not."""
    from studio.retrieval.playground import KEYWORD_TRAP

    return KEYWORD_TRAP[0], list(KEYWORD_TRAP[1])


def _corpus(project: Project, query: str) -> tuple[list[str], list[str], dict[str, dict], dict[str, int]]:
    from studio.store.lookup import gold_for_query, searchable_corpus

    if not (query or "").strip():
        raise StudioError("empty_query")
    with project.db() as db:
        keys, texts, docs = searchable_corpus(db)
        gold = gold_for_query(db, query)
    if not keys:
        raise StudioError("no_corpus")
    return keys, texts, docs, gold


def _search(model: str, reranker: str | None, query: str, keys: list[str], texts: list[str], k: int,
            depth: int | None) -> tuple[list, float]:
    """One side's hits: the embedder alone, or its top `depth` reranked by `reranker`.

    The reranker is loaded before the timing starts (once per process), as the corpus is encoded before it, so the
    first query does not show seconds of model loading.
    """
    from studio.models.registry import resolve
    from studio.retrieval.search import search as dense_search

    model = (model or "").strip() or "default"
    if reranker:
        from studio.retrieval.rerank import load_reranker, search_then_rerank

        path = resolve(reranker)
        load_reranker(path)
        return search_then_rerank(resolve(model), path, query, keys, texts, k, depth or default_depth())
    return dense_search(resolve(model), query, keys, texts, k)


def _name(model: str, reranker: str | None) -> str:
    return f"{model} → {reranker}" if reranker else model


def _shown(docs: dict[str, dict], *sides: list) -> dict[str, dict]:
    return {h.doc_key: docs[h.doc_key] for hits in sides for h in hits}


def _clean(name: str | None) -> str | None:
    return (name or "").strip() or None


@action("expert", cli="search")
def search(project: Project, actor: Actor, /, query: str, model: str = "default", *, k: int = 10,
           reranker: str | None = None, depth: int | None = None) -> Results:
    """The top `k` documents of the project's corpus for `query` by `model` (the ★ default when not named),
    optionally its top `depth` rescored by `reranker`.

    Raises:
        StudioError: ``empty_query``, ``no_corpus``, ``model_is_reranker``, ``model_missing``.
    """
    keys, texts, docs, gold = _corpus(project, query)
    reranker = _clean(reranker)
    hits, ms = _search(model, reranker, query.strip(), keys, texts, int(k), depth)
    return Results(query.strip(), Side(_name(model, reranker), hits, {}, ms), _shown(docs, hits), gold)


@action("expert", why_no_cli=_DEMO + " (one model at a time: `studio search`)")
def compare(project: Project, actor: Actor, /, query: str, left: str, right: str, k: int = 10,
            left_reranker: str | None = None, right_reranker: str | None = None,
            depth: int | None = None) -> Comparison:
    """`query` through two models side by side (each optionally followed by a reranker rescoring its top `depth`),
    with how far each document moved against the other side.

    Raises:
        StudioError: ``empty_query``, ``no_corpus``, ``model_is_reranker``, ``model_missing``.
    """
    from studio.retrieval.search import rank_moves

    keys, texts, docs, gold = _corpus(project, query)
    query = query.strip()
    left_reranker, right_reranker = _clean(left_reranker), _clean(right_reranker)
    hits_l, ms_l = _search(left, left_reranker, query, keys, texts, int(k), depth)
    hits_r, ms_r = _search(right, right_reranker, query, keys, texts, int(k), depth)
    return Comparison(query, Side(_name(left, left_reranker), hits_l, rank_moves(hits_l, hits_r), ms_l),
                      Side(_name(right, right_reranker), hits_r, rank_moves(hits_r, hits_l), ms_r),
                      _shown(docs, hits_l, hits_r), gold)


@action("expert", why_no_cli=_DEMO)
def similarity(project: Project, actor: Actor, /, a: str, b: str, models: Sequence[str]) -> dict[str, float]:
    """Cosine similarity of texts `a` and `b` under each embedder (by the name given)."""
    from studio.models.registry import resolve
    from studio.retrieval import playground

    out = {}
    for name in models:
        path = resolve(name)
        out[name] = playground.similarity(a, b, [path])[path]
    return out


@action("expert", why_no_cli=_DEMO)
def score_documents(project: Project, actor: Actor, /, query: str, documents: Sequence[str], models: Sequence[str],
                    reranker: str | None = None) -> dict[str, list[float]]:
    """Each embedder's cosine score of every document for `query`, and the reranker's (its logit) when given; keyed
    by the names given."""
    from studio.models.registry import resolve
    from studio.retrieval import playground

    documents = list(documents)
    out = {}
    for name in models:
        path = resolve(name)
        out[name] = playground.score_documents(query, documents, [path])[path]
    reranker = _clean(reranker)
    if reranker:
        path = resolve(reranker)
        out[reranker] = playground.score_documents(query, documents, [], path)[path]
    return out


@action("expert", why_no_cli=_DEMO)
def example_queries(project: Project, actor: Actor, /, limit: int = 12) -> list[str]:
    """Queries that have gold labels (the ones a demo can show badges for), most labelled first."""
    from studio.store.lookup import example_queries as examples

    with project.db() as db:
        return examples(db, limit)


@action("admin", why_no_cli="⑨'s 'send to annotation queue' button (the CLI adds pairs with `studio import pairs`)")
def send_to_queue(project: Project, actor: Actor, /, query: str, doc_key: str) -> bool:
    """Put (`query`, document `doc_key`) in the annotation queue, the query created if new; True when the pair is
    new. Audited under the actor (an ``import`` entry from source ``compare``).

    Raises:
        StudioError: ``empty_query``; NotFoundError ``document_not_found``.
    """
    from studio.store.lookup import queue_pair

    if not (query or "").strip():
        raise StudioError("empty_query")
    if not (doc_key or "").strip():
        raise NotFoundError("document_not_found", key=doc_key or "")
    with project.db() as db:
        return queue_pair(db, query, doc_key, actor=actor.name)


def highlight_terms(query: str) -> list[str]:
    """Terms of `query` to mark in a document, longest first: what BM25 sees (the studio's tokenizer)."""
    from studio.retrieval.tokenize import highlight_terms as terms

    return terms(query)
