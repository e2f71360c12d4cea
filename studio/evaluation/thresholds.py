"""Pure threshold picking on scored, labelled pairs: :func:`max_f1` and :func:`for_precision`.

A leaf: it imports nothing of the studio (numpy, and scikit-learn when called), so the queue strategies and the
calibration of a model (:mod:`studio.evaluation.calibration`) can both use it without pulling in each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Threshold:
    """A score threshold and what it gives on the labelled pairs: precision, recall and F1 of "score >= threshold
    means relevant"."""

    threshold: float
    precision: float
    recall: float
    f1: float
    positives: int
    negatives: int


def _curve(scores: Sequence[float], relevant: Sequence[bool]):
    from sklearn.metrics import precision_recall_curve

    y = np.asarray(relevant, dtype=bool)
    if y.all() or not y.any():
        raise ValueError("calibration needs both relevant and irrelevant pairs")
    precision, recall, thresholds = precision_recall_curve(y, np.asarray(scores, dtype=float))
    return precision[:-1], recall[:-1], thresholds, int(y.sum()), int((~y).sum())


def max_f1(scores: Sequence[float], relevant: Sequence[bool]) -> Threshold:
    """The threshold with the highest F1 (ties: the higher threshold, the more precise)."""
    precision, recall, thresholds, pos, neg = _curve(scores, relevant)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    best = int(np.flatnonzero(f1 == f1.max())[-1])
    return Threshold(float(thresholds[best]), float(precision[best]), float(recall[best]), float(f1[best]), pos, neg)


def for_precision(scores: Sequence[float], relevant: Sequence[bool], target: float = 0.9) -> Threshold | None:
    """The lowest threshold whose precision reaches `target` (the most recall at that precision); None if none does."""
    precision, recall, thresholds, pos, neg = _curve(scores, relevant)
    ok = np.flatnonzero(precision >= target)
    if not len(ok):
        return None
    i = int(ok[0])
    f1 = 2 * precision[i] * recall[i] / max(precision[i] + recall[i], 1e-12)
    return Threshold(float(thresholds[i]), float(precision[i]), float(recall[i]), float(f1), pos, neg)
