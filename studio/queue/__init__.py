"""The annotation queue's strategies: which unrated pairs the team rates first — the only list of their names.

The UI (① radio), the CLI (``studio queue strategy NAME``), the actions (:mod:`studio.actions.queue`) and the docs
read :data:`STRATEGIES`; nothing else spells a strategy's name. Every ordering strategy returns the untouched pairs'
ids in serving order; pairs with one rating are always served first whatever the strategy (store/ratings.py), so
pairs get completed.

Adding a strategy (one module + one registry entry + one test):

1. ``studio/queue/<name>.py``: a :class:`~studio.queue.base.Strategy` subclass with ``name``, ``needs`` (``"model"``,
   ``"gold"``, ``"embedded"``) and ``order(inputs) -> Order`` (the untouched pair ids in serving order); add its
   label ``import.strategy_<name>`` and help ``queue.help_<name>`` to both catalogues (studio/locales/*.json).
2. Here: its instance in :data:`STRATEGIES` (the order is ①'s and the CLI's order).
3. tests/test_actions_queue.py: a test that applies it through :func:`studio.actions.queue.set_strategy` and checks
   the order it serves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from studio.errors import StudioError
from studio.queue.base import DEPTH, TOP, Inputs, Order, Strategy, document_text
from studio.queue.disagree import Disagree
from studio.queue.imported import Imported
from studio.queue.negatives import Negatives
from studio.queue.random import Random
from studio.queue.systems import Systems
from studio.queue.uncertain import Uncertain

__all__ = ["DEFAULT", "DEPTH", "STRATEGIES", "TOP", "UNSET", "Inputs", "Order", "Strategy", "document_text", "get",
           "names", "order_pairs"]

STRATEGIES: dict[str, Strategy] = {s.name: s for s in (Imported(), Random(), Systems(), Disagree(), Uncertain(),
                                                        Negatives())}
# Served after pooling unless an admin picks another, and ①'s preselected choice: on the man-page benchmark it found
# 10–17× more relevant pairs per 100 ratings than imported order, and a fine-tune on its first 500 ratings scored
# +0.04 (zh) / +0.03 (en) nDCG@10 over imported and random order (p ≤ 0.003; bench/RESULTS.md).
DEFAULT = Systems.name
UNSET = Imported.name  # what a project serves before anyone chose a strategy


def names(*, ordering_only: bool = False) -> tuple[str, ...]:
    """The strategies' names in registry order (`ordering_only`: without those that add pairs)."""
    return tuple(n for n, s in STRATEGIES.items() if not (ordering_only and s.adds_pairs))


def get(name: str) -> Strategy:
    """The strategy called `name`; StudioError ``bad_strategy`` naming the choices otherwise."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise StudioError("bad_strategy", name=name, choices=", ".join(STRATEGIES)) from None


def order_pairs(strategy: str, pairs: Sequence[dict], documents: Sequence[dict], queries: Sequence[dict], *,
                models: Sequence[str] = (), gold: Sequence[tuple[int, int, int]] = (), seed: int = 42,
                progress: Callable[[float, str], None] | None = None) -> Order:
    """The serving order of `pairs` (rows with id, query_id, document_id) under strategy `strategy`.

    Args:
        documents, queries: the project's rows (id, title, text / id, text).
        models: dense models: every one is a system for ``systems`` (besides BM25); the first scores ``uncertain``.
        gold: (query_id, document_id, label) of the gold labels, to calibrate ``uncertain``'s threshold.
    """
    return get(strategy).order(Inputs(pairs, documents, queries, models, gold, seed, progress))
