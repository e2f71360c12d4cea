"""``random``: a seeded shuffle — the baseline any smarter order must beat (Althammer et al. 2023 found that smart
selection often does not beat random for training rankers)."""

from __future__ import annotations

import random as _random

from studio.queue.base import Inputs, Order, Strategy


class Random(Strategy):
    """A seeded permutation of the untouched pairs."""

    name = "random"

    def order(self, inputs: Inputs) -> Order:
        ids = [p["id"] for p in inputs.pairs]
        _random.Random(inputs.seed).shuffle(ids)
        return Order(ids, {"seed": inputs.seed})
