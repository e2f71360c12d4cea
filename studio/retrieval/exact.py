"""Exact retrieval of many queries over a whole corpus at once — what an evaluation runs for each kind of first
stage (:meth:`studio.retrieval.stages.StageKind.retrieve`; :mod:`studio.evaluation.runner` wraps them as runs).

Each function takes plain inputs (``queries``: id → text, ``corpus``: id → text) and returns the run (query id →
{document id: score}, the top `k`) and its timings in seconds (corpus encoding or indexing apart from the
queries'), as sentence-transformers' and ranx's evaluators take and give.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from studio.ingest.trec import TrecRun
from studio.retrieval import m3
from studio.retrieval.bm25_store import bm25_for
from studio.retrieval.dense import DenseIndex, encode, load_embedder, top_k

Run = dict[str, dict[str, float]]


def dense_run(queries: Mapping[str, str], corpus: Mapping[str, str], model: str,
              k: int) -> tuple[Run, dict[str, float]]:
    """Top-`k` documents per query by exact cosine similarity over cached corpus embeddings; timings
    ``corpus_s`` (loading the model and the corpus vectors), ``query_encode_s``, ``search_s``, ``queries_per_s``."""
    doc_ids = list(corpus)
    t0 = time.perf_counter()
    load_embedder(model)  # here, not in the query timing, when the corpus embeddings come from the cache
    index = DenseIndex([corpus[d] for d in doc_ids], model)
    corpus_s = time.perf_counter() - t0
    qids = list(queries)
    t0 = time.perf_counter()
    vectors = encode([queries[q] for q in qids], model)
    encode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores = vectors @ index.embeddings.T
    run = {qid: {doc_ids[j]: float(scores[qi, j]) for j in order}
           for qi, (qid, order) in enumerate(zip(qids, top_k(scores, k)))}
    search_s = time.perf_counter() - t0
    n = max(len(qids), 1)
    return run, {"corpus_s": round(corpus_s, 3), "query_encode_s": round(encode_s, 3),
                 "search_s": round(search_s, 4), "queries_per_s": round(n / max(encode_s + search_s, 1e-9), 1)}


def m3_run(queries: Mapping[str, str], corpus: Mapping[str, str], model: str, mode: str, k: int,
           weights: tuple[float, float, float] | None = None) -> tuple[Run, dict[str, float]]:
    """Top-`k` documents per query by a BGE-M3 scoring mode, exact over the whole corpus (see studio.retrieval.m3);
    timings ``encode_and_score_s``, ``search_s``, ``queries_per_s``.

    Raises:
        StudioError: ``not_m3`` when `model` is not a BGE-M3 folder, ``bad_mode``, ``model_missing``.
    """
    m3.check_mode(model, mode)
    doc_ids, qids = list(corpus), list(queries)
    t0 = time.perf_counter()
    scores = m3.score_corpus([queries[q] for q in qids], [corpus[d] for d in doc_ids], model, mode,
                             weights or m3.DEFAULT_WEIGHTS)
    encode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores = np.asarray(scores)
    run = {qid: {doc_ids[j]: float(scores[qi, j]) for j in order}
           for qi, (qid, order) in enumerate(zip(qids, top_k(scores, k)))}
    search_s = time.perf_counter() - t0
    return run, {"encode_and_score_s": round(encode_s, 3), "search_s": round(search_s, 4),
                 "queries_per_s": round(len(qids) / max(encode_s + search_s, 1e-9), 1)}


def bm25_run(queries: Mapping[str, str], corpus: Mapping[str, str], k: int) -> tuple[Run, dict[str, float]]:
    """Top-`k` documents per query by BM25 (bm25s, the studio's tokenizer) over the corpus; timings ``index_s``,
    ``search_s``, ``queries_per_s``."""
    t0 = time.perf_counter()
    doc_ids, index = bm25_for(corpus)  # a project's corpus: its saved index (studio.retrieval.bm25_store)
    index_s = time.perf_counter() - t0
    qids = list(queries)
    t0 = time.perf_counter()
    hits = index.search_many([queries[q] for q in qids], k=k)
    search_s = time.perf_counter() - t0
    run = {q: {doc_ids[pos]: score for pos, score in ranked} for q, ranked in zip(qids, hits)}
    return run, {"index_s": round(index_s, 3), "search_s": round(search_s, 4),
                 "queries_per_s": round(len(qids) / max(search_s, 1e-9), 1)}


def run_file_rankings(trec: TrecRun, queries: Iterable[str], depth: int, *,
                      key: Callable[[str], str] = str) -> Run:
    """A run file's top-`depth` documents for each of `queries` (ids; `key` maps one to the project's key the file
    ranks by), scores as given; a query the file has no ranking for has none here."""
    run = {}
    for qid in queries:
        ranked = trec.ranking(key(qid), depth)
        if ranked:
            run[qid] = dict(ranked)
    return run
