"""``model``: a dense embedder as a rater — the cosine similarity of the query's and the document's embeddings,
mapped to 0/1/2 by thresholds calibrated on the gold pairs (:mod:`studio.raters.scored`)."""

from __future__ import annotations

from studio.raters.scored import ScoreRater


class Embedder(ScoreRater):
    """A dense model (``default`` = the ★ model, a name in models/, a folder) scoring by cosine similarity."""

    name = "model"
    needs = frozenset({"embedder", "gold"})
    model_use = "embedder"
    model_kind = "dense"
