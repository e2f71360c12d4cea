"""One query through a whole system (a :mod:`studio.retrieval.systems` spec) over the project's corpus: what each
side of ⑨ Compare shows and ``studio search --system`` prints.

The first stages run as evaluation runs them (:mod:`studio.evaluation.systems`), one query at a time, against
in-memory indexes built once per corpus:

* ``bm25``: bm25s with the studio's tokenizer (:func:`studio.retrieval.search.bm25_index_for`);
* a dense model, or a BGE-M3 model's ``dense`` mode: cosine over the cached corpus vectors
  (:func:`studio.retrieval.search.index_for`);
* ``NAME:sparse``: BGE-M3's lexical weights, the corpus's kept as one sparse matrix per model and corpus;
* ``NAME:colbert`` and ``NAME:weighted`` are evaluated in ⑧ (exactly, the corpus encoded chunk by chunk) but are
  not searchable here: one query at a time would need every document's token vectors in memory (hundreds of
  floats per token, gigabytes for a 10k corpus), so they raise ``mode_not_searchable``;
* ``run:FILE``: a TREC run file's ranking (studio.ingest.trec) for the query's key — the caller matches the typed
  text against the project's queries — or ``run_no_ranking`` when the file has none for it (a new query, or one it
  lacks). Its documents that the corpus lacks cannot be shown and are skipped (:attr:`Details.unknown_documents`).
  Precomputed: it takes 0 ms here (:attr:`Details.precomputed`).

Two first stages are fused over each one's top `depth` (:data:`FUSION_DEPTH`, evaluation's default) by
:mod:`studio.retrieval.fusion`: a pinned weighted sum (``A+B@0.7``), reciprocal rank (``A+B@rrf``), and reciprocal
rank for an unpinned ``A+B`` too — evaluation tunes an unpinned fusion on labelled queries, one typed query has
nothing to tune on (:attr:`Details.pin_example` says how to pin a tuned weight). A reranker then rescores the top
`rerank_depth` of the first stage, as :func:`studio.retrieval.rerank.search_then_rerank` does.

The milliseconds cover query encoding, searches, fusion and reranking; building an index (corpus encoding, BM25
indexing) and loading a model happen before the clock starts and are excluded. They are one side's search time:
what a response takes as a whole (the corpus lookup, both sides, reading the shown documents) is measured by the
caller (:attr:`studio.actions.search.Comparison.ms`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from studio.retrieval.corpus_index import CorpusTexts
from studio.retrieval.fusion import fuse_rrf, fuse_weighted
from studio.retrieval.rerank import DEFAULT_DEPTH, load_reranker
from studio.retrieval.rerank import score as rerank_score
from studio.retrieval.search import Hit
from studio.retrieval.stages import RERANKER, Stage
from studio.retrieval.systems import FIRST_STAGE_DEPTH, System, parse

FUSION_DEPTH = FIRST_STAGE_DEPTH  # candidates of each first stage that a fusion sees, as evaluations retrieve


@dataclass(frozen=True)
class Details:
    """How a system found its hits: its spec and first stages (with each one's milliseconds), the fusion used
    (``rrf`` or ``weighted``, its weight, whether the spec pinned it, the candidates per stage it saw), the
    reranker with how many candidates it rescored, its run-file stages (rankings read, not searched: 0 ms) with
    how many of their candidates the corpus lacks, and the stages searched through an approximate index with its
    measured recall@10 (:mod:`studio.retrieval.ann`)."""

    spec: str
    stages: tuple[str, ...]
    stage_ms: tuple[float, ...]
    fusion: str | None = None
    weight: float | None = None
    pinned: bool = False
    depth: int | None = None
    fusion_ms: float = 0.0
    reranker: str | None = None
    rerank_depth: int | None = None
    rerank_ms: float = 0.0
    precomputed: tuple[str, ...] = ()
    unknown_documents: int = 0
    approximate: tuple[tuple[str, object], ...] = ()  # (stage, ann.Quality) of each stage searched approximately

    @property
    def pin_example(self) -> str | None:
        """For an unpinned fusion (RRF by default here): the spec that pins a tuned weight, ``A+B@0.7``."""
        if self.fusion is None or self.pinned:
            return None
        return "+".join(self.stages) + "@0.7"


def check(system: System) -> dict[str, str]:
    """Each model of `system` resolved to what loaders take, before any search (a typo fails at once).

    Raises:
        StudioError: ``bad_mode``, ``not_m3`` (a mode other than dense on a model that is not a BGE-M3 folder),
            ``mode_not_searchable`` (colbert, weighted), ``run_file_missing``, a run file's InputError.
    """
    paths: dict[str, str] = {}
    for stage in system.stages:
        path = stage.kind.locate(stage, strict=False)
        if path is not None:
            paths[stage.model] = path
        stage.kind.check_searchable(stage, system.spec)
    if system.reranker:
        paths[system.reranker] = RERANKER.locate_model(system.reranker, strict=False)
    return paths


def search_system(system: str | System, query: str, keys: list[str], texts: Sequence[str], k: int = 10,
                  depth: int = FUSION_DEPTH, rerank_depth: int = DEFAULT_DEPTH, *,
                  query_keys: Sequence[str] = ()) -> tuple[list[Hit], float, Details]:
    """The top `k` documents of the corpus (`keys`, `texts`) for `query` by `system` (a spec or a parsed one).
    A project's corpus is its :class:`studio.retrieval.corpus_index.CorpusIndex`'s ``keys`` and ``texts``: indexes
    are then found by its version and only a reranker's candidates are read.

    Args:
        system: ``bm25``, ``NAME``, ``NAME:sparse``, ``A+B``, ``A+B@0.7``, ``A+B@rrf``, each optionally
            ``>RERANKER`` (:mod:`studio.retrieval.systems`); models are named as :func:`studio.models.registry.
            resolve` takes them.
        depth: candidates of each first stage a fusion sees (ignored with one first stage).
        rerank_depth: candidates of the first stage a reranker rescores (ignored without one).
        query_keys: the project's keys of the stored queries with `query`'s text (a run file's rankings are by
            key; the first it ranks is used); empty for a new query.

    Returns:
        The hits (rank from 1, document key, score: the retriever's, the fused one, or the reranker's logit), the
        milliseconds the query took (index building and model loading excluded) and the :class:`Details`.

    Raises:
        StudioError: the spec's errors (``system_*``), ``mode_not_searchable``, ``not_m3``, ``bad_mode``,
            ``model_is_reranker``, ``model_missing``, ``run_file_missing``, ``run_no_ranking`` (a run file without a
            ranking for the query).
    """
    system = parse(system) if isinstance(system, str) else system
    paths = check(system)
    reranker = paths.get(system.reranker) if system.reranker else None
    if reranker:
        load_reranker(reranker)  # seconds, once per process: before the clock
    first_n = max(k, rerank_depth) if reranker else k
    fused = len(system.stages) > 1
    per_stage = max(depth, first_n) if fused else first_n
    found = [_stage_search(stage, paths.get(stage.model, ""), query, keys, texts, per_stage, query_keys)
             for stage in system.stages]
    hits = found[0][0][:first_n]
    fusion = weight = None
    fusion_ms = 0.0
    if fused:
        fusion = system.fusion or "rrf"
        weight = system.weight if fusion == "weighted" else None
        t0 = time.perf_counter()
        a, b = ({"q": {h.doc_key: h.score for h in stage_hits}} for stage_hits, _, _ in found)
        run = (fuse_weighted(a, b, float(weight), per_stage) if fusion == "weighted"
               else fuse_rrf(a, b, depth=per_stage)).get("q", {})
        ranked = sorted(run.items(), key=lambda item: (-item[1], item[0]))[:first_n]
        hits = [Hit(rank, doc, float(score)) for rank, (doc, score) in enumerate(ranked, start=1)]
        fusion_ms = (time.perf_counter() - t0) * 1000
    rerank_ms = 0.0
    if reranker:
        hits, rerank_ms = _rerank(reranker, query, hits, keys, texts, k)
    stage_ms = tuple(ms for _, ms, _ in found)
    details = Details(system.spec, tuple(str(s) for s in system.stages), stage_ms, fusion, weight,
                      bool(system.fusion), per_stage if fused else None, fusion_ms, system.reranker,
                      first_n if reranker else None, rerank_ms, tuple(str(s) for s in system.stages if s.is_run),
                      sum(skipped for _, _, skipped in found), _approximate(system, paths, keys, texts))
    return hits[:k], sum(stage_ms) + fusion_ms + rerank_ms, details


def _approximate(system: System, paths: dict[str, str], keys: list[str], texts: Sequence[str]) -> tuple:
    """(stage, quality) for each first stage that searched approximately (a large corpus's ANN index)."""
    found = ((str(stage), stage.kind.approximate(stage, paths.get(stage.model, ""), keys, texts))
             for stage in system.stages)
    return tuple((name, quality) for name, quality in found if quality is not None)


def _stage_search(stage: Stage, path: str, query: str, keys: list[str], texts: Sequence[str], n: int,
                  query_keys: Sequence[str]) -> tuple[list[Hit], float, int]:
    """One first stage's top `n`, its milliseconds and how many of a run file's documents it skipped."""
    return stage.kind.search(stage, path, query, keys, texts, n, query_keys)


def _rerank(reranker: str, query: str, hits: list[Hit], keys: list[str], texts: Sequence[str],
            k: int) -> tuple[list[Hit], float]:
    """`hits` rescored by the cross-encoder (ties keep the first stage's order); the best `k` and the ms (reading
    the candidates' texts included)."""
    t0 = time.perf_counter()
    if isinstance(texts, CorpusTexts):  # a project's corpus: read the candidates only
        text_of = texts.corpus.texts_of([h.doc_key for h in hits])
    else:
        text_of = dict(zip(keys, texts))
    scores = rerank_score(reranker, query, [text_of[h.doc_key] for h in hits])
    order = sorted(range(len(hits)), key=lambda i: (-scores[i], hits[i].rank))[:k]
    ms = (time.perf_counter() - t0) * 1000
    return [Hit(rank, hits[i].doc_key, scores[i]) for rank, i in enumerate(order, start=1)], ms
