"""Raters that score a pair with a number (a dense model's cosine, a cross-encoder's logit) and map it to 0/1/2
with two thresholds calibrated on the project's gold pairs.

The thresholds are the studio's calibration (:func:`studio.evaluation.thresholds.max_f1`) applied twice:
``partial`` separates "at least partly relevant" (gold 1 or 2) from "irrelevant" (0), ``relevant`` separates
"relevant" (2) from the rest. A score below ``partial`` is 0, at least ``relevant`` is 2, in between 1 (if the two
cross, both become their mean and no pair gets 1). ``sure_irrelevant`` is the highest score at or below which the
gold pairs are irrelevant with precision :data:`CONFIDENCE` (:func:`~studio.evaluation.thresholds.for_precision` on
the negated scores): a pair scoring at most that is a *confident* 0, what triage may send to the back of the queue.

Honesty about the gold pairs: labels of gold pairs judged with thresholds fitted on those same pairs would agree
with gold better than the model deserves. So the gold queries are split in two halves (seeded); each half is
labelled with thresholds fitted on the *other* half only (2-fold cross-fitting by query), and κ against gold is
computed on those out-of-fold labels (``kappa_on = "cross-fitted"``). Pairs without a gold label are labelled with
thresholds fitted on every gold pair, which are the ones stored with the rater.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from studio.errors import StudioError
from studio.evaluation.calibration import score_pairs
from studio.evaluation.thresholds import for_precision, max_f1
from studio.raters.base import Inputs, Judgment, ModelRater, Pair, Verdicts
from studio.records import GoldSet

CONFIDENCE = 0.9  # precision of "irrelevant" a score must reach to count as a confident 0 (triage)
FOLDS = 2


def fit(scores: Sequence[float], labels: Sequence[int]) -> dict:
    """The thresholds (``partial``, ``relevant``, ``sure_irrelevant``) on scored gold pairs with labels 0/1/2.

    Raises:
        StudioError: ``judge_needs_gold`` when the pairs lack a relevant (≥ 1) or an irrelevant (0) one.
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=int)
    relevant, irrelevant = int((y >= 1).sum()), int((y == 0).sum())
    if not relevant or not irrelevant:
        raise StudioError("judge_needs_gold", relevant=relevant, irrelevant=irrelevant)
    partial = max_f1(s, y >= 1).threshold
    full = max_f1(s, y == 2).threshold if (y == 2).any() and (y < 2).any() else partial
    if partial > full:
        partial = full = (partial + full) / 2
    sure = for_precision(-s, y == 0, CONFIDENCE)
    sure_irrelevant = None if sure is None else min(-sure.threshold, partial)
    return {"partial": float(partial), "relevant": float(full),
            "sure_irrelevant": None if sure_irrelevant is None else float(sure_irrelevant)}


def to_label(score: float, thresholds: dict) -> int:
    """0 below ``partial``, 2 at or above ``relevant``, else 1."""
    if score >= thresholds["relevant"]:
        return 2
    return 1 if score >= thresholds["partial"] else 0


def is_sure_irrelevant(score: float | None, thresholds: dict) -> bool:
    """A score at or below ``sure_irrelevant`` (and so below ``partial``): a confident 0."""
    bound = thresholds.get("sure_irrelevant")
    return score is not None and bound is not None and score <= bound and score < thresholds["partial"]


def folds(query_keys: Sequence[str], seed: int) -> dict[str, int]:
    """Query key → fold 0 or 1: the sorted keys shuffled with `seed`, dealt in turn."""
    keys = sorted(set(query_keys))
    random.Random(seed).shuffle(keys)
    return {key: i % FOLDS for i, key in enumerate(keys)}


class ScoreRater(ModelRater):
    """A rater that scores pairs with a model and labels them with gold-calibrated thresholds."""

    needs = frozenset({"gold"})
    model_kind: str  # "dense" | "reranker": how studio.evaluation.calibration.score_pairs scores

    def score(self, pairs: Sequence[Pair], model: str) -> np.ndarray:
        """Each pair's score by `model` (a resolved path): the studio's calibration scorer."""
        if not pairs:
            return np.zeros(0)
        texts = GoldSet(queries={p.query_key: p.query for p in pairs},
                        corpus={p.doc_key: p.document for p in pairs}, labels={})
        return np.asarray(score_pairs(texts, [(p.query_key, p.doc_key) for p in pairs], model, self.model_kind),
                          dtype=float)

    def judge(self, inputs: Inputs) -> Verdicts:
        report = inputs.progress or (lambda fraction, stage: None)
        gold = [g for g in inputs.gold if g.gold is not None]
        fold_of = folds([g.query_key for g in gold], inputs.seed)
        if len(set(fold_of.values())) < FOLDS:
            raise StudioError("judge_needs_gold_queries", queries=len(fold_of))
        by_id = {g.pair_id: g for g in gold}
        everything = list(gold) + [p for p in inputs.pairs if p.pair_id not in by_id]
        report(0.1, "score")
        scores = dict(zip((p.pair_id for p in everything), self.score(everything, inputs.spec).tolist()))
        report(0.8, "calibrate")
        labels = [g.gold for g in gold]
        overall = fit([scores[g.pair_id] for g in gold], labels)
        per_fold = []
        for f in range(FOLDS):
            train = [g for g in gold if fold_of[g.query_key] != f]
            try:
                per_fold.append(fit([scores[g.pair_id] for g in train], [g.gold for g in train]))
            except StudioError as exc:
                raise StudioError("judge_fold_needs_both", fold=f + 1, queries=len({g.query_key for g in train}),
                                  **exc.params) from None
        judgments = []
        for p in inputs.pairs:
            thresholds = per_fold[fold_of[p.query_key]] if p.pair_id in by_id else overall
            s = scores[p.pair_id]
            judgments.append(Judgment(p.pair_id, to_label(s, thresholds), s,
                                      sure_irrelevant=is_sure_irrelevant(s, thresholds)))
        report(1.0, "done")
        settings = {"model": inputs.spec, "scored_by": self.model_kind, "thresholds": overall,
                    "confidence": CONFIDENCE,
                    "calibration": {"gold_pairs": len(gold), "queries": len(fold_of), "folds": FOLDS,
                                    "seed": inputs.seed, "fold_thresholds": per_fold}}
        return Verdicts(judgments, settings, "cross-fitted")

    def sure_irrelevant(self, score: float | None, label: int, settings: dict) -> bool:
        return label == 0 and is_sure_irrelevant(score, settings.get("thresholds") or {})
