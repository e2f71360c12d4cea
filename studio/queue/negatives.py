"""``negatives`` ("check the negatives"): not an order of the pairs there are but new pairs — the mined hard
negatives that score closest to their query's positives, mined as the export mines (:mod:`studio.dataset.negatives`),
added to the project and served first so the team catches false negatives before they are trained on (FlagEmbedding
#850). Its action is :func:`studio.actions.queue.check_negatives`."""

from __future__ import annotations

from studio.queue.base import Inputs, Order, Strategy


class Negatives(Strategy):
    """Adds pairs (see the module docstring); it leaves the other untouched pairs in imported order on purpose."""

    name = "negatives"
    needs = frozenset({"model", "gold"})
    adds_pairs = True
    orders_all = False

    def order(self, inputs: Inputs) -> Order:
        raise ValueError(f"{self.name!r} adds pairs rather than ordering them: use actions.queue.check_negatives")
