"""``disagree``: the pairs some system puts in its top 10 and the others rank far lower come first (widest
disagreement first): where BM25, the base model and a fine-tune contradict each other — the pairs that decide which
one is right, not the quickest way to find relevant ones."""

from __future__ import annotations

from studio.errors import StudioError
from studio.queue.base import TOP, Inputs, Order, Strategy
from studio.queue.ranks import order_by, system_ranks


class Disagree(Strategy):
    """Some system's top 10 first, widest disagreement first among them."""

    name = "disagree"
    needs = frozenset({"model"})

    def order(self, inputs: Inputs) -> Order:
        if not inputs.pairs:
            return Order([])
        if not inputs.models:
            raise StudioError("strategy_needs_model", name=self.name)
        pairs = inputs.pairs
        ranks = system_ranks(pairs, inputs.documents, inputs.queries, inputs.models, inputs.progress)
        return order_by(pairs, ranks, lambda i, best, spread: (best[i] > TOP, -spread[i], best[i], pairs[i]["id"]))
