"""The annotation queue's strategy: which unrated pairs the team rates first (an admin's choice, audited)."""

from __future__ import annotations

from collections.abc import Callable

from studio.actions.base import Actor, Project, action

Progress = Callable[[float, str], None]


@action("admin", cli="queue")
def makeup(project: Project, actor: Actor, *, existing: bool = False) -> dict:
    """The queue's strategy and make-up: queued, double-rated, half-taken, untouched and reserved pairs, pairs
    added since the strategy was applied, pairs by source."""
    from studio.store import queue as store_queue

    with project.db(existing=existing) as db:
        return store_queue.makeup(db)


@action("admin", cli="queue strategy")
def set_strategy(project: Project, actor: Actor, name: str, *, model: str | None = None, seed: int = 42,
                 progress: Progress | None = None, existing: bool = False) -> dict:
    """Order the untouched pairs by strategy `name` (imported, random, systems, uncertain) and remember it.

    `model` (systems, uncertain): the dense model; None means the default model (★). ``systems`` also ranks with
    the embedded model when ★ is another one, so a fine-tune, BM25 and the base model are the three systems.
    Returns the queue's make-up afterwards.
    """
    from studio import selection
    from studio.models.registry import EMBEDDED_NAME, get_default
    from studio.store import pairs as store_pairs
    from studio.store import queue as store_queue

    dense = (model or "").strip() or get_default()
    models = [dense] + ([EMBEDDED_NAME] if name == "systems" and dense != EMBEDDED_NAME else [])
    with project.db(existing=existing) as db:
        pairs = store_queue.untouched_pairs(db)
        documents, queries = store_pairs.corpus(db), store_pairs.queries(db)
        gold = store_queue.gold_pairs(db) if name == "uncertain" else []
    order = selection.order_pairs(name, pairs, documents, queries, models=models, gold=gold, seed=seed,
                                  progress=progress)
    with project.db() as db:
        store_queue.apply_order(db, name, order.ids, actor=actor.name, details=order.details)
        return store_queue.makeup(db)
