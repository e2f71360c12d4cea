"""Interactive search for the side-by-side demo: one query, several models, milliseconds per query.

Corpus embeddings come from the on-disk cache (studio.retrieval.cache) and stay in memory per (model, corpus),
so after the first query only the query is encoded: a 10k-document corpus answers in a few milliseconds on CPU.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from studio.retrieval.cache import corpus_fingerprint, model_fingerprint
from studio.retrieval.dense import DenseIndex, encode, resolve_model, top_k

_indexes: OrderedDict[tuple[str, str], DenseIndex] = OrderedDict()
_lock = threading.Lock()
MAX_INDEXES = 4


@dataclass(frozen=True)
class Hit:
    rank: int
    doc_key: str
    score: float


def index_for(model: str, keys: list[str], texts: list[str]) -> DenseIndex:
    """The in-memory index of `model` over this corpus; rebuilt when the model's weights or the corpus change."""
    name = resolve_model(model)
    key = (model_fingerprint(name), corpus_fingerprint(texts))
    with _lock:
        if key in _indexes:
            _indexes.move_to_end(key)
            return _indexes[key]
    index = DenseIndex(texts, name)
    index.keys = keys
    with _lock:
        _indexes[key] = index
        while len(_indexes) > MAX_INDEXES:
            _indexes.popitem(last=False)
    return index


def search(model: str, query: str, keys: list[str], texts: list[str], k: int = 10) -> tuple[list[Hit], float]:
    """Top-`k` documents for `query` by cosine similarity, and the milliseconds the search took (query encoding
    included, corpus encoding excluded)."""
    index = index_for(model, keys, texts)
    t0 = time.perf_counter()
    scores = encode([query], resolve_model(model)) @ index.embeddings.T
    order = top_k(scores, k)[0]
    ms = (time.perf_counter() - t0) * 1000
    return [Hit(i + 1, index.keys[j], float(scores[0, j])) for i, j in enumerate(order)], ms


def rank_moves(left: list[Hit], right: list[Hit]) -> dict[str, int | None]:
    """For each document on the left, how many places it moved up compared with the right (None: not there)."""
    other = {h.doc_key: h.rank for h in right}
    return {h.doc_key: (other[h.doc_key] - h.rank) if h.doc_key in other else None for h in left}
