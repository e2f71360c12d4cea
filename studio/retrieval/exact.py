"""Exact retrieval of many queries over a whole corpus at once — what an evaluation runs for each kind of first
stage (:meth:`studio.retrieval.stages.StageKind.retrieve`; :mod:`studio.evaluation.runner` wraps them as runs).

Each function takes plain inputs (``queries``: id → text, ``corpus``: id → text) and returns the run (query id →
{document id: score}, the top `k`) and its timings in seconds (corpus encoding or indexing apart from the
queries'), as sentence-transformers' and ranx's evaluators take and give.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from studio.ingest.trec import TrecRun
from studio.retrieval import m3
from studio.retrieval.bm25_store import ProjectCorpus, bm25_for
from studio.retrieval.cache import cached_vectors
from studio.retrieval.corpus_index import corpus_for
from studio.retrieval.dense import DenseIndex, encode, load_embedder, resolve_model, top_k
from studio.retrieval.progress_eta import listener
from studio.retrieval.vector_store import project_vectors
from studio.store import opened

Run = dict[str, dict[str, float]]
QUERY_BLOCK = 256  # queries scored at once against the whole corpus (bounded memory)


def dense_run(queries: Mapping[str, str], corpus: Mapping[str, str], model: str,
              k: int) -> tuple[Run, dict[str, float]]:
    """Top-`k` documents per query by exact cosine similarity over the corpus vectors — a project's corpus
    (:class:`~studio.retrieval.bm25_store.ProjectCorpus`) from its vector store (only new or changed documents
    encoded, :func:`studio.retrieval.vector_store.project_vectors`), any other from the embedding cache; timings
    ``corpus_s`` (loading the model and the corpus vectors, encoding what is missing), ``query_encode_s``,
    ``search_s``, ``queries_per_s``. A corpus encoding reports to :func:`studio.retrieval.progress_eta.listener`."""
    doc_ids = list(corpus)
    t0 = time.perf_counter()
    load_embedder(model)  # here, not in the query timing, when the corpus embeddings come from a store
    matrix = corpus_vectors(corpus, model, doc_ids)
    corpus_s = time.perf_counter() - t0
    qids = list(queries)
    t0 = time.perf_counter()
    vectors = encode([queries[q] for q in qids], model)
    encode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run = {qid: {doc_ids[j]: score for j, score in ranked}
           for qid, ranked in zip(qids, cosine_top_k(vectors, matrix, k))}
    search_s = time.perf_counter() - t0
    n = max(len(qids), 1)
    return run, {"corpus_s": round(corpus_s, 3), "query_encode_s": round(encode_s, 3),
                 "search_s": round(search_s, 4), "queries_per_s": round(n / max(encode_s + search_s, 1e-9), 1)}


def corpus_vectors(corpus: Mapping[str, str], model: str, doc_ids: list[str] | None = None) -> np.ndarray:
    """The float32 rows of `corpus` (id → text; rows in its order) under `model`: a project's corpus read from its
    vector store when its keys are the database's documents in id order, else encoded (or read from the embedding
    cache) from the texts."""
    doc_ids = list(corpus) if doc_ids is None else doc_ids
    if isinstance(corpus, ProjectCorpus) and corpus.db_path.is_file():
        with opened(corpus.db_path) as db:
            documents = corpus_for(db, corpus.db_path)
        if documents.keys == doc_ids:
            ids, matrix = project_vectors(corpus.db_path, model)
            if np.array_equal(ids, documents.ids):
                return matrix
    texts = [corpus[d] for d in doc_ids]
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    name = resolve_model(model)
    return cached_vectors(texts, name, lambda: encode(texts, name, progress=listener()))


def dense_top_k(queries: Sequence[str], model: str, k: int, doc_ids: Sequence[int], texts: Sequence[str],
                db_path: str | Path | None) -> list[list[tuple[int, float]]]:
    """Each query's top `k` (position in `doc_ids`, cosine) under `model`: over the project's stored vectors when
    `db_path`'s documents are `doc_ids` in that order (the corpus did not change since they were read; only new or
    changed documents are encoded), else over `texts` (the same documents') encoded now or read from the embedding
    cache. What a pool and the queue's system ranks search with."""
    name = resolve_model(model)
    if db_path is not None and Path(db_path).is_file():
        ids, matrix = project_vectors(db_path, name)
        if np.array_equal(ids, np.fromiter(doc_ids, dtype=np.int64, count=len(doc_ids))):
            return cosine_top_k(encode(list(queries), name), matrix, k)
    return DenseIndex(list(texts), name).search_many(list(queries), k)


def cosine_top_k(queries: np.ndarray, matrix: np.ndarray, k: int,
                 block: int = QUERY_BLOCK) -> list[list[tuple[int, float]]]:
    """For each row of `queries` (normalised vectors), the `k` rows of `matrix` with the highest dot product, best
    first, as (row, score); queries scored `block` at a time (a million-row corpus: 256 × 1M floats, 1 GB)."""
    k = min(k, len(matrix))
    if k == 0:
        return [[] for _ in range(len(queries))]
    out: list[list[tuple[int, float]]] = []
    for start in range(0, len(queries), block):
        scores = queries[start:start + block] @ matrix.T
        out += [[(int(j), float(row[j])) for j in order] for row, order in zip(scores, top_k(scores, k))]
    return out


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
