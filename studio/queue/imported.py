"""``imported``: the order the pairs came in (the pairs of one query together)."""

from __future__ import annotations

from studio.queue.base import Inputs, Order, Strategy


class Imported(Strategy):
    """Serves the untouched pairs in imported order: it orders none (NULL priority keeps the imported order)."""

    name = "imported"
    orders_all = False

    def order(self, inputs: Inputs) -> Order:
        return Order([])
