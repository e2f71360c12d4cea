"""Where a model puts queries and documents: a 2-D t-SNE map of an evaluation set, per model.

A deterministic sample keeps the map readable and fast: at most :data:`MAX_QUERIES` queries (by a seeded draw),
every document labelled for them (relevant ones first, at most :data:`MAX_LABELLED`), and up to
:data:`N_UNLABELLED` documents no sampled query has a label for. Queries and documents are encoded with the same
cached encoders the evaluation runner uses (:class:`studio.retrieval.dense.DenseIndex` for documents,
:func:`studio.retrieval.dense.encode` for queries), then projected together with scikit-learn's t-SNE (cosine
distance, PCA initialisation, fixed seed). Each model gets its own projection: t-SNE axes mean nothing across
maps, distances within one map do.

Beside the picture, each panel carries the mean cosine similarity, in the model's own space, of the selected
queries to their relevant documents and to the other documents; a fine-tuned model should widen that gap.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from studio.evaluation.runner import EvalSet
from studio.models.registry import resolve
from studio.retrieval.cache import corpus_fingerprint, model_fingerprint
from studio.retrieval.dense import DenseIndex, encode

MAX_QUERIES = 300
MAX_LABELLED = 1200
N_UNLABELLED = 200
SEED = 0
_cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
_lock = threading.Lock()


@dataclass
class MapSample:
    """The points of a map: sampled query ids, then document ids (labelled first, then unlabelled)."""

    query_ids: list[str]
    doc_ids: list[str]


@dataclass
class MapPanel:
    """One model's map. Points are the sample's queries then documents; `label` is per document.

    `label` is the highest label any selected query gave the document (2, 1, 0), or None when none of them
    labelled it; `selected` marks the queries that were selected. `relevant_cos` / `other_cos` are the mean
    cosine similarities of the selected queries to their relevant (label > 0) documents and to every other
    sampled document (None when there is none).
    """

    model: str
    xy: np.ndarray                  # (queries + documents, 2)
    kinds: list[str]                # "query" | "document"
    ids: list[str]
    texts: list[str]
    label: list[int | None]         # None for queries
    selected: list[bool]            # False for documents
    relevant_cos: float | None
    other_cos: float | None
    links: dict[str, list[str]]     # selected query id → its relevant documents in the sample


def sample(evalset: EvalSet, max_queries: int = MAX_QUERIES, n_unlabelled: int = N_UNLABELLED,
           seed: int = SEED) -> MapSample:
    """A deterministic sample of the evaluation set (see the module docstring); same inputs, same sample."""
    rng = np.random.default_rng(seed)
    qids = sorted(q for q in evalset.qrels if q in evalset.queries)
    if len(qids) > max_queries:
        qids = sorted(str(q) for q in rng.choice(qids, size=max_queries, replace=False))
    best: dict[str, int] = {}
    for q in qids:
        for doc, rel in evalset.qrels[q].items():
            if doc in evalset.corpus:
                best[doc] = max(best.get(doc, 0), rel)
    labelled = sorted(best, key=lambda d: (-min(best[d], 1), d))[:MAX_LABELLED]
    rest = sorted(d for d in evalset.corpus if d not in best)
    if len(rest) > n_unlabelled:
        rest = sorted(str(d) for d in rng.choice(rest, size=n_unlabelled, replace=False))
    return MapSample(qids, sorted(labelled) + rest)


def project(vectors: np.ndarray, seed: int = SEED) -> np.ndarray:
    """2-D t-SNE of row vectors (cosine metric); PCA for fewer than 10 points, where t-SNE is meaningless."""
    n = len(vectors)
    if n < 10:
        from sklearn.decomposition import PCA

        out = np.zeros((n, 2))
        if n >= 2:
            comps = PCA(n_components=min(2, n), random_state=seed).fit_transform(vectors)
            out[:, :comps.shape[1]] = comps
        return out
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed).fit_transform(
        np.asarray(vectors, dtype=np.float64))


def _vectors(evalset: EvalSet, points: MapSample, model: str) -> np.ndarray:
    docs = DenseIndex([evalset.corpus[d] for d in points.doc_ids], model).embeddings if points.doc_ids else None
    queries = encode([evalset.queries[q] for q in points.query_ids], model)
    return queries if docs is None else np.vstack([queries, docs])


def build_map(evalset: EvalSet, model: str, selected: Sequence[str] | None = None, *, label: str | None = None,
              max_queries: int = MAX_QUERIES, n_unlabelled: int = N_UNLABELLED, seed: int = SEED,
              snippet: int = 160) -> MapPanel:
    """The map of `model` (a name `resolve` understands) over a :func:`sample` of `evalset`.

    `selected` are the query ids whose labels colour the documents (all sampled queries when None or empty;
    ids outside the sample are ignored). The projection is cached per (model, sample), so changing the
    selection is instant. `label` is how the panel names the model (default: `model`).
    """
    path = resolve(model)
    points = sample(evalset, max_queries, n_unlabelled, seed)
    texts = [evalset.queries[q] for q in points.query_ids] + [evalset.corpus[d] for d in points.doc_ids]
    vectors = _vectors(evalset, points, path)
    key = (model_fingerprint(path), corpus_fingerprint(texts), seed)
    with _lock:
        xy = _cache.get(key)
    if xy is None:
        xy = project(vectors, seed)
        with _lock:
            _cache[key] = xy
            while len(_cache) > 8:
                _cache.popitem(last=False)
    in_sample = set(points.query_ids)
    chosen = [q for q in (selected or []) if q in in_sample] or list(points.query_ids)
    chosen_set = set(chosen)
    doc_label: dict[str, int] = {}
    for q in chosen:
        for doc, rel in evalset.qrels[q].items():
            doc_label[doc] = max(doc_label.get(doc, 0), rel)
    nq = len(points.query_ids)
    relevant, other = [], []
    for qi, q in enumerate(points.query_ids):
        if q not in chosen_set:
            continue
        sims = vectors[nq:] @ vectors[qi]
        for di, doc in enumerate(points.doc_ids):
            (relevant if evalset.qrels[q].get(doc, 0) > 0 else other).append(float(sims[di]))
    cut = [text if len(text) <= snippet else text[:snippet] + "…" for text in texts]
    return MapPanel(model=label or model, xy=np.asarray(xy), kinds=["query"] * nq + ["document"] * len(points.doc_ids),
                    ids=points.query_ids + points.doc_ids, texts=cut,
                    label=[None] * nq + [doc_label.get(d) for d in points.doc_ids],
                    selected=[q in chosen_set for q in points.query_ids] + [False] * len(points.doc_ids),
                    relevant_cos=float(np.mean(relevant)) if relevant else None,
                    other_cos=float(np.mean(other)) if other else None,
                    links={q: [d for d in points.doc_ids if evalset.qrels[q].get(d, 0) > 0] for q in chosen})


def build_maps(evalset: EvalSet, models: Sequence[str], selected: Sequence[str] | None = None,
               **options) -> list[MapPanel]:
    """:func:`build_map` for each distinct model (typically the baseline and the fine-tuned one)."""
    return [build_map(evalset, m, selected, **options) for m in dict.fromkeys(models)]
