"""Interactive search for the side-by-side demo: one query, several retrievers, milliseconds per query.

Corpus embeddings come from the on-disk cache (studio.retrieval.cache) and stay in memory per (model, corpus),
so after the first query only the query is encoded: a 10k-document corpus answers in a few milliseconds on CPU.
The BM25 index stays in memory per corpus the same way (bm25s indexes a 10k-document corpus in seconds, once).
A BGE-M3 model's ``sparse`` mode keeps the corpus's lexical weights as one sparse matrix per model and corpus, and
a TREC run file's ranking is read for the query's key (:func:`search_run`). Whole systems (fusion, reranker) are
searched by :mod:`studio.retrieval.system_search`; each kind of first stage picks its search here
(:mod:`studio.retrieval.stages`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.errors import StudioError
from studio.ingest.trec import load_run
from studio.recent import Recent
from studio.retrieval import m3
from studio.retrieval.bm25 import BM25Index
from studio.retrieval.cache import corpus_fingerprint, model_fingerprint
from studio.retrieval.dense import DenseIndex, encode, load_embedder, resolve_model, top_k

MAX_SPARSE = 2

_indexes: Recent[DenseIndex] = Recent(4)
_bm25: Recent[BM25Index] = Recent(2, once=True)  # two first queries on a new corpus build its BM25 index once
_sparse: Recent[tuple] = Recent(MAX_SPARSE)


@dataclass(frozen=True)
class Hit:
    rank: int
    doc_key: str
    score: float


def index_for(model: str, keys: list[str], texts: list[str]) -> DenseIndex:
    """The in-memory index of `model` over this corpus; rebuilt when the model's weights or the corpus change."""
    name = resolve_model(model)

    def build() -> DenseIndex:
        index = DenseIndex(texts, name)
        index.keys = keys
        return index

    return _indexes.get((model_fingerprint(name), corpus_fingerprint(texts)), build)


def search(model: str, query: str, keys: list[str], texts: list[str], k: int = 10) -> tuple[list[Hit], float]:
    """Top-`k` documents for `query` by cosine similarity, and the milliseconds the search took (query encoding
    included; corpus encoding and model loading excluded)."""
    index = index_for(model, keys, texts)
    load_embedder(model)  # corpus vectors read from the disk cache leave the model unloaded until now
    t0 = time.perf_counter()
    scores = encode([query], resolve_model(model)) @ index.embeddings.T
    order = top_k(scores, k)[0]
    ms = (time.perf_counter() - t0) * 1000
    return [Hit(i + 1, index.keys[j], float(scores[0, j])) for i, j in enumerate(order)], ms


def bm25_index_for(texts: list[str]) -> BM25Index:
    """The in-memory BM25 index over this corpus (the studio's tokenizer); rebuilt when any text changes."""
    return _bm25.get(corpus_fingerprint(texts), lambda: BM25Index(texts))


def search_bm25(query: str, keys: list[str], texts: list[str], k: int = 10) -> tuple[list[Hit], float]:
    """Top-`k` documents for `query` by BM25 (documents sharing no term with it are left out), and the milliseconds
    the search took (index building excluded)."""
    index = bm25_index_for(texts)
    t0 = time.perf_counter()
    ranked = index.search(query, k)
    ms = (time.perf_counter() - t0) * 1000
    return [Hit(i + 1, keys[pos], score) for i, (pos, score) in enumerate(ranked)], ms


# -------------------------------------------------------------------------------------------------- run files

def search_run(path: str, query_keys: Sequence[str], keys: list[str], k: int = 10) -> tuple[list[Hit], int]:
    """The top `k` documents that the corpus (`keys`) has in the run file at `path` for the first of `query_keys`
    it ranks, by the file's scores (ties: document key), and how many of the file's documents were skipped on the
    way because the corpus lacks them.

    Raises:
        StudioError: ``run_no_ranking`` when the file ranks none of `query_keys` (none: a new query).
    """
    trec = load_run(Path(path))
    query_key = next((q for q in query_keys if q in trec.run), None)
    if query_key is None:
        raise StudioError("run_no_ranking", file=trec.name)
    known = set(keys)
    hits: list[Hit] = []
    skipped = 0
    for doc, score in trec.ranking(query_key):
        if len(hits) == k:
            break
        if doc in known:
            hits.append(Hit(len(hits) + 1, doc, float(score)))
        else:
            skipped += 1
    return hits, skipped


# ----------------------------------------------------------------------------------------- BGE-M3 sparse mode

def sparse_index_for(model: str, texts: list[str]) -> tuple:
    """The corpus's BGE-M3 lexical weights as (CSR matrix documents × tokens, token → column), kept in memory per
    model and corpus; encoded chunk by chunk as :func:`studio.retrieval.m3.score_corpus` does."""
    return _sparse.get((model_fingerprint(model), corpus_fingerprint(texts)), lambda: _sparse_matrix(model, texts))


def _sparse_matrix(model: str, texts: list[str]) -> tuple:
    from scipy.sparse import csr_matrix  # ~0.1 s to import: only for a BGE-M3 model's sparse mode

    vocab: dict[str, int] = {}
    data: list[float] = []
    cols: list[int] = []
    ptr = [0]
    for start in range(0, len(texts), m3.CHUNK_DOCUMENTS):
        for weights in m3.encode(texts[start:start + m3.CHUNK_DOCUMENTS], model, queries=False,
                                 mode="sparse").sparse:
            for token, w in weights.items():
                cols.append(vocab.setdefault(token, len(vocab)))
                data.append(w)
            ptr.append(len(cols))
    matrix = csr_matrix((np.asarray(data, dtype=np.float64), np.asarray(cols, dtype=np.int64), ptr),
                        shape=(len(texts), max(len(vocab), 1)))
    return matrix, vocab


def search_sparse(model: str, query: str, keys: list[str], texts: list[str], k: int = 10) -> tuple[list[Hit], float]:
    """Top-`k` documents by BGE-M3's lexical matching score ``Σ_t w_q(t) · w_d(t)`` (the ``sparse`` mode, exact
    over the corpus, as evaluation scores it), and the milliseconds the query took (query encoding included)."""
    matrix, vocab = sparse_index_for(model, texts)
    m3.load_m3(model)
    t0 = time.perf_counter()
    weights = m3.encode([query], model, queries=True, mode="sparse").sparse[0]
    vector = np.zeros(matrix.shape[1], dtype=np.float64)
    for token, w in weights.items():
        if token in vocab:
            vector[vocab[token]] += w
    scores = np.asarray(matrix @ vector).reshape(1, -1)
    order = top_k(scores, k)[0] if len(texts) else []
    ms = (time.perf_counter() - t0) * 1000
    return [Hit(i + 1, keys[j], float(scores[0, j])) for i, j in enumerate(order)], ms


def rank_moves(left: list[Hit], right: list[Hit]) -> dict[str, int | None]:
    """For each document on the left, how many places it moved up compared with the right (None: not there)."""
    other = {h.doc_key: h.rank for h in right}
    return {h.doc_key: (other[h.doc_key] - h.rank) if h.doc_key in other else None for h in left}
