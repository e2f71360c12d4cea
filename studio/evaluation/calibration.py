"""Score thresholds: where a model's score best separates the project's "relevant" from "irrelevant" pairs.

Users ask how to pick one (FlagEmbedding #250: "select a threshold based on your data"); this picks it from the
gold labels, with scikit-learn's precision/recall curve (:mod:`studio.evaluation.thresholds`). :func:`calibrate` scores the gold pairs with a dense model
(cosine similarity) or a reranker (cross-encoder score) and returns both thresholds (:class:`Calibration`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from studio.errors import StudioError
from studio.evaluation.thresholds import Threshold, for_precision, max_f1
from studio.models.registry import require_embedder
from studio.retrieval.dense import cached_encode, encode
from studio.retrieval.rerank import load_reranker


# ------------------------------------------------------------------------------- a model on the project's gold labels

KINDS = ("auto", "dense", "reranker")


@dataclass(frozen=True)
class Calibration:
    """Where `model`'s score best separates the gold "relevant" (label 2) from "irrelevant" (label 0) pairs.

    Attributes:
        model: the model as named; kind: ``"dense"`` (cosine similarity) or ``"reranker"`` (cross-encoder logit).
        pairs: the pairs scored (positives + negatives); partial: pairs labelled 1, left out.
        best: the max-F1 threshold; at_precision: the lowest threshold reaching `target_precision` (None if none).
        scores, relevant: each scored pair's score and whether it is relevant (for a chart; not in :meth:`as_dict`).
    """

    model: str
    kind: str
    pairs: int
    positives: int
    negatives: int
    partial: int
    best: Threshold
    at_precision: Threshold | None
    target_precision: float
    scores: tuple[float, ...] = ()
    relevant: tuple[bool, ...] = ()
    left_out_queries: int = 0  # queries the model was trained or validated on (studio.evaluation.heldout)
    included_trained: bool = False  # ... scored anyway

    def as_dict(self) -> dict:
        """JSON-ready: the counts and both thresholds (each with precision, recall and F1), no per-pair scores."""
        return {"model": self.model, "kind": self.kind, "pairs": self.pairs, "positives": self.positives,
                "negatives": self.negatives, "partial": self.partial, "target_precision": self.target_precision,
                "left_out_queries": self.left_out_queries, "included_trained": self.included_trained,
                "best": asdict(self.best), "at_precision": asdict(self.at_precision) if self.at_precision else None}


def gold_pairs(gold, exclude_queries: set[str] | None = None) -> tuple[list[tuple[str, str]], list[bool], int]:
    """The gold-labelled (query key, document key) pairs to calibrate on, whether each is relevant, and how many
    partially relevant pairs were left out.

    Label 2 is relevant, 0 irrelevant; 1 (partially relevant) is neither and is left out. Queries whose text is in
    `exclude_queries` (a training file's) are left out too.
    """
    pairs, relevant, partial = [], [], 0
    for qkey, labels in gold.labels.items():
        if gold.queries[qkey] in (exclude_queries or ()):
            continue
        for dkey, label in labels.items():
            if label == 1:
                partial += 1
            elif label in (0, 2):
                pairs.append((qkey, dkey))
                relevant.append(label == 2)
    return pairs, relevant, partial


def model_kind(model: str) -> str:
    """``"reranker"`` when the registry recognises `model` (a resolved path) as a cross-encoder, else ``"dense"``."""
    try:
        require_embedder(model)
    except StudioError as exc:
        if exc.code == "model_is_reranker":
            return "reranker"
        raise
    return "dense"


def score_pairs(gold, pairs: Sequence[tuple[str, str]], model: str, kind: str, batch_size: int = 32) -> np.ndarray:
    """Each (query key, document key) pair's score by `model`: cosine similarity of the embeddings (``"dense"``;
    the whole corpus is encoded through the on-disk cache, shared with ⑧'s evaluation on the gold labels) or the
    cross-encoder's raw score (``"reranker"``)."""
    if kind == "reranker":
        scores = load_reranker(model).compute_score([[gold.queries[q], gold.corpus[d]] for q, d in pairs],
                                                    batch_size=batch_size)
        return np.atleast_1d(np.asarray(scores, dtype=float))

    doc_keys = list(gold.corpus)
    doc_at = {key: i for i, key in enumerate(doc_keys)}
    doc_vectors = cached_encode([gold.corpus[d] for d in doc_keys], model)
    query_keys = sorted({q for q, _ in pairs})
    query_at = {key: i for i, key in enumerate(query_keys)}
    query_vectors = encode([gold.queries[q] for q in query_keys], model, batch_size=batch_size)
    q = query_vectors[[query_at[a] for a, _ in pairs]]
    d = doc_vectors[[doc_at[b] for _, b in pairs]]
    return np.einsum("ij,ij->i", q, d).astype(float)


def calibrate(gold, model: str, *, kind: str = "auto", exclude_queries: set[str] | None = None,
              target_precision: float = 0.9, batch_size: int = 32) -> Calibration:
    """The score thresholds of `model` on the gold labels: the max-F1 one and the one for `target_precision`.

    Args:
        gold: the project's gold labels (:func:`studio.store.gold.gold_set`).
        model: a resolved model path (or hub id): an embedder or a cross-encoder.
        kind: ``"dense"``, ``"reranker"`` or ``"auto"`` (a reranker when the registry says it is a cross-encoder).
        exclude_queries: query texts to leave out (a training file's, :func:`studio.evaluation.runner.
            training_queries`): a model scored on what it learned from looks better separated than it is.
        target_precision: the precision the second threshold must reach, in (0, 1].

    Relevant means gold label 2, irrelevant 0; partially relevant pairs (1) are neither and are left out. A pair
    counts as relevant when its score is at least the threshold.

    Raises:
        StudioError: ``bad_precision``; ``calibration_needs_both`` when the pairs are not of both kinds (checked
            before the model loads); ``model_missing``, ``model_is_reranker`` (``kind="dense"`` on a reranker).
        ValueError: an unknown `kind`.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if not 0 < target_precision <= 1:
        raise StudioError("bad_precision", value=target_precision)
    pairs, relevant, partial = gold_pairs(gold, exclude_queries)
    positives = sum(relevant)
    negatives = len(relevant) - positives
    if not positives or not negatives:
        raise StudioError("calibration_needs_both", positives=positives, negatives=negatives)
    kind = model_kind(model) if kind == "auto" else kind
    scores = score_pairs(gold, pairs, model, kind, batch_size)
    return Calibration(str(model), kind, len(pairs), positives, negatives, partial, max_f1(scores, relevant),
                       for_precision(scores, relevant, target_precision), target_precision,
                       tuple(float(s) for s in scores), tuple(relevant))
