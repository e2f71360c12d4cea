"""``disagree``: the pairs some system puts in its top 10 and the others rank far lower come first (widest
disagreement first): where BM25, the base model and a fine-tune contradict each other — the pairs that decide which
one is right, not the quickest way to find relevant ones."""

from __future__ import annotations

from studio.queue.base import TOP, Inputs, Order, Strategy
from studio.queue.ranks import ranked_order


class Disagree(Strategy):
    """Some system's top 10 first, widest disagreement first among them."""

    name = "disagree"
    needs = frozenset({"model"})

    def order(self, inputs: Inputs) -> Order:
        return ranked_order(self.name, inputs,
                            lambda i, best, spread: (best[i] > TOP, -spread[i], best[i], inputs.pairs[i]["id"]))
