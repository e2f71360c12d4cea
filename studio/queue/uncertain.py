"""``uncertain``: pairs whose dense score sits nearest the score threshold that best separates the project's gold
"relevant" from "irrelevant" (max F1, :func:`studio.evaluation.thresholds.max_f1`); the median score without gold
labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from studio.errors import StudioError
from studio.evaluation.thresholds import max_f1
from studio.queue.base import Inputs, Order, Strategy, document_text
from studio.retrieval.dense import cached_encode


class Uncertain(Strategy):
    """Nearest the calibrated relevance threshold first; scored by the first model."""

    name = "uncertain"
    needs = frozenset({"model", "gold"})

    def order(self, inputs: Inputs) -> Order:
        pairs, documents, queries = inputs.pairs, inputs.documents, inputs.queries
        if not pairs:
            return Order([])
        if not inputs.models:
            raise StudioError("strategy_needs_model", name=self.name)
        model = inputs.models[0]
        doc_at = {d["id"]: i for i, d in enumerate(documents)}
        query_at = {q["id"]: i for i, q in enumerate(queries)}
        inputs.progress and inputs.progress(0.2, "dense")
        doc_vectors = cached_encode([document_text(d) for d in documents], model)
        query_vectors = cached_encode([q["text"] for q in queries], model)

        def scores(items: Sequence[tuple[int, int]]) -> np.ndarray:
            q = query_vectors[[query_at[a] for a, _ in items]]
            d = doc_vectors[[doc_at[b] for _, b in items]]
            return np.einsum("ij,ij->i", q, d)

        open_scores = scores([(p["query_id"], p["document_id"]) for p in pairs])
        labelled = [(q, d, label) for q, d, label in inputs.gold if label in (0, 2)]
        threshold, how = float(np.median(open_scores)), "median"
        if labelled and len({label for *_, label in labelled}) == 2:
            calibrated = max_f1(scores([(q, d) for q, d, _ in labelled]), [label == 2 for *_, label in labelled])
            threshold, how = calibrated.threshold, "max_f1"
        distance = np.abs(open_scores - threshold)
        order = sorted(range(len(pairs)), key=lambda i: (distance[i], pairs[i]["id"]))
        return Order([pairs[i]["id"] for i in order], {"model": model, "threshold": round(threshold, 4),
                                                       "threshold_from": how})
