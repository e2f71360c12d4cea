"""``reranker``: a cross-encoder as a rater — its score of the (query, document) pair, mapped to 0/1/2 by
thresholds calibrated on the gold pairs (:mod:`studio.raters.scored`)."""

from __future__ import annotations

from studio.raters.scored import ScoreRater


class Reranker(ScoreRater):
    """A cross-encoder (a reranker folder in models/, a path) scoring each pair."""

    name = "reranker"
    needs = frozenset({"cross-encoder", "gold"})
    model_use = "reranker"
    model_kind = "reranker"
