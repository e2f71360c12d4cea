"""Pool candidate pairs for annotation: top-k documents per query from BM25, the dense model, or both."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from sqlite_utils import Database

from studio.errors import StudioError
from studio.models.registry import get_default
from studio.records import document_text
from studio.retrieval.bm25 import BM25Index
from studio.retrieval.bm25_store import project_bm25
from studio.retrieval.exact import dense_top_k
from studio.retrieval.stages import BM25, DENSE
from studio.store import pairs as store_pairs

HYBRID = "hybrid"  # BM25 and the dense model, fused by reciprocal rank
RETRIEVERS = (BM25.name, DENSE.name, HYBRID)
RRF_K = 60


def reciprocal_rank_fusion(rankings: Sequence[list[tuple[int, float]]], k: int, rrf_k: int = RRF_K) -> list[int]:
    """Fuse ranked lists by RRF: score(d) = Σ 1 / (rrf_k + rank(d)), rank starting at 1; best `k` first."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, (doc, _) in enumerate(ranking, start=1):
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(scores, key=lambda d: (-scores[d], d))[:k]


def pool_candidates(db: Database, *, k: int = 20, retriever: str = "hybrid", model: str | None = None,
                    progress: Callable[[float, str], None] | None = None, actor: str = "pool",
                    db_path: str | Path | None = None) -> dict:
    """Retrieve top-`k` documents for every query and add them as pairs to annotate (audited under `actor`).

    `model` (dense and hybrid): a name in models/, a path or a hub id; None means the default model (★).
    `db_path`: the file of `db`, whose saved BM25 index (:func:`studio.retrieval.bm25_store.project_bm25`) and
    stored vectors (:func:`studio.retrieval.vector_store.project_vectors`: only new or changed documents encoded,
    reported to :func:`studio.retrieval.progress_eta.listener`) are searched instead of indexing the corpus again;
    without it both are built in memory.

    Returns counts: queries, candidates found and pairs newly added (pairs that exist are kept as they are).
    """
    if retriever not in RETRIEVERS:
        raise StudioError("bad_retriever", value=retriever)
    docs = store_pairs.corpus(db)
    qs = store_pairs.queries(db)
    if not docs:
        raise StudioError("no_corpus")
    if not qs:
        raise StudioError("no_queries")
    texts = [document_text(d["title"], d["text"]) for d in docs]
    query_texts = [q["text"] for q in qs]
    rankings: list[list[list[tuple[int, float]]]] = []
    if retriever in (BM25.name, HYBRID):
        progress and progress(0.1, "bm25")
        rankings.append(_bm25(docs, texts, db_path).search_many(query_texts, k))
    dense_model = None
    if retriever in (DENSE.name, HYBRID):
        dense_model = model or get_default()
        progress and progress(0.4, "dense")
        rankings.append(dense_top_k(query_texts, dense_model, k, [d["id"] for d in docs], texts, db_path))
    candidates = []
    for qi, q in enumerate(qs):
        per_query = [r[qi] for r in rankings]
        top = reciprocal_rank_fusion(per_query, k) if len(per_query) > 1 else [d for d, _ in per_query[0]]
        candidates.extend((q["id"], docs[pos]["id"]) for pos in top)
    progress and progress(0.9, "store")
    added = store_pairs.add_candidate_pairs(db, candidates, source=f"pool:{retriever}", actor=actor)
    return {"queries": len(qs), "candidates": len(candidates), "added": added, "retriever": retriever, "k": k,
            "model": dense_model}


def _bm25(docs: list[dict], texts: list[str], db_path: str | Path | None) -> BM25Index:
    """The project's saved BM25 index when its positions are `docs` (the corpus did not change since it was read),
    else one built from `texts`."""
    if db_path is not None and Path(db_path).is_file():
        ids, index = project_bm25(db_path)
        if len(ids) == len(docs) and all(int(i) == d["id"] for i, d in zip(ids, docs)):
            return index
    return BM25Index(texts)
