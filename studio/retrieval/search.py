"""Interactive search for the side-by-side demo: one query, several retrievers, milliseconds per query.

Corpus embeddings come from the on-disk cache (studio.retrieval.cache) and stay in memory per (model, corpus),
so after the first query only the query is encoded: a 10k-document corpus answers in a few milliseconds on CPU.
The BM25 index stays in memory per corpus the same way (bm25s indexes a 10k-document corpus in seconds, once).
Whole systems (fusion, reranker) are searched by :mod:`studio.retrieval.system_search`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from studio.retrieval.bm25 import BM25Index
from studio.retrieval.cache import corpus_fingerprint, model_fingerprint
from studio.retrieval.dense import DenseIndex, encode, load_embedder, resolve_model, top_k
from studio.recent import Recent

_indexes: Recent[DenseIndex] = Recent(4)
_bm25: Recent[BM25Index] = Recent(2, once=True)  # two first queries on a new corpus build its BM25 index once


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


def rank_moves(left: list[Hit], right: list[Hit]) -> dict[str, int | None]:
    """For each document on the left, how many places it moved up compared with the right (None: not there)."""
    other = {h.doc_key: h.rank for h in right}
    return {h.doc_key: (other[h.doc_key] - h.rank) if h.doc_key in other else None for h in left}
