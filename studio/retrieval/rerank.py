"""Cross-encoder rerankers (FlagReranker's scores, :func:`studio.retrieval.flag.load_cross_encoder`), loaded once per process and shared by evaluation and the demo.

Loading a reranker takes seconds and scoring a pair milliseconds, so the Evaluate and Compare tabs keep each
loaded model in memory (at most :data:`MAX_RERANKERS`, least recently used dropped first).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from studio.retrieval.flag import load_cross_encoder
from studio.retrieval.search import Hit, search
from studio.retrieval.systems import RERANK_TOP
from studio.recent import Recent

MAX_RERANKERS = 2
DEFAULT_DEPTH = RERANK_TOP

_rerankers: Recent[object] = Recent(MAX_RERANKERS)


def load_reranker(path: str):
    """The reranker for `path` (a folder or hub id), loaded on first use and cached in this process.

    Raises:
        StudioError: ``model_missing`` when the model cannot be loaded.
    """
    return _rerankers.get(path, lambda: load_cross_encoder(path))


def score(reranker: str, query: str, texts: Sequence[str], batch_size: int = 32) -> list[float]:
    """The cross-encoder's raw score (logit) of each text for `query`; an empty list for no text."""
    if not texts:
        return []
    scores = load_reranker(reranker).compute_score([[query, text] for text in texts], batch_size=batch_size)
    return [float(scores)] if isinstance(scores, (int, float)) else [float(s) for s in scores]


def search_then_rerank(model: str, reranker: str, query: str, keys: list[str], texts: list[str], k: int = 10,
                       depth: int = DEFAULT_DEPTH) -> tuple[list, float]:
    """Dense top-`depth` for `query` (:func:`studio.retrieval.search.search`), rescored by `reranker`; best `k`.

    Returns the hits (rank, doc key, cross-encoder score) and the milliseconds both steps took (query
    encoding and reranking included, corpus encoding excluded).
    """
    hits, search_ms = search(model, query, keys, texts, max(k, depth))
    text_of = dict(zip(keys, texts))
    t0 = time.perf_counter()
    scores = score(reranker, query, [text_of[h.doc_key] for h in hits])
    order = sorted(range(len(hits)), key=lambda i: (-scores[i], hits[i].rank))[:k]
    ms = search_ms + (time.perf_counter() - t0) * 1000
    return [Hit(rank, hits[i].doc_key, scores[i]) for rank, i in enumerate(order, start=1)], ms
