"""The annotation queue's strategy: which unrated pairs the team rates first (an admin's choice, audited)."""

from __future__ import annotations

from collections.abc import Callable

from studio.actions.base import Actor, Project, action
from studio.selection import DEFAULT as DEFAULT_STRATEGY  # noqa: F401  (①'s preselected strategy)

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
                 per_query: int = 2, progress: Progress | None = None, existing: bool = False) -> dict:
    """Order the untouched pairs by strategy `name` (imported, random, systems, disagree, uncertain) and remember
    it; ``negatives`` is :func:`check_negatives` (with `per_query`).

    `model` (systems, uncertain, negatives): the dense model; None means the default model (★). ``systems`` also
    ranks with the embedded model when ★ is another one, so a fine-tune, BM25 and the base model are the three
    systems. Returns the queue's make-up afterwards.
    """
    from studio import selection
    from studio.models.registry import EMBEDDED_NAME, get_default
    from studio.store import pairs as store_pairs
    from studio.store import queue as store_queue

    if name in selection.ADDS_PAIRS:
        return check_negatives(project, actor, per_query=per_query, model=model, progress=progress,
                               existing=existing)
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


@action("admin", cli="queue strategy")
def check_negatives(project: Project, actor: Actor, *, per_query: int = 2, model: str | None = None,
                    hard_negatives: str = "hybrid", rank_window: tuple[int, int] = (10, 100), partial: str = "drop",
                    progress: Progress | None = None, existing: bool = False) -> dict:
    """Strategy ``negatives`` ("check the negatives"): queue the mined hard negatives that score closest to their
    query's positives, for the team to rate before an export (:mod:`studio.dataset.negatives` has the rule).

    Mines as ``export triplets`` does with the same options (`hard_negatives`, `rank_window`, `partial`, `model`:
    None means ★), picks `per_query` unjudged candidates per query with a gold positive, adds those the project
    lacks as pairs of source ``check-negatives`` and serves them all first (after half-taken pairs), in one audited
    transaction. Choosing it again before anyone rates them adds nothing: its own unrated picks stay candidates.

    Returns:
        The queue's make-up, with ``check_negatives``: queries, candidates (picked), added (new pairs), ordered
        (served first), per_query and the model.
    """
    from studio.dataset import negatives
    from studio.dataset.triplets import ExportOptions
    from studio.models.registry import get_default
    from studio.store import queue as store_queue
    from studio.store.gold import gold_set

    report = progress or (lambda fraction, stage: None)
    dense = (model or "").strip() or get_default()
    options = ExportOptions(hard_negatives=hard_negatives, rank_window=tuple(rank_window), partial=partial,
                            model=dense)
    with project.db(existing=existing) as db:
        gold, settled = gold_set(db), store_queue.settled_pairs(db, negatives.SOURCE)
    report(0.05, "dense")
    picks = negatives.pick_negatives_to_check(gold, per_query=per_query, options=options, exclude=settled,
                                              progress=lambda f, _: report(0.05 + 0.85 * f, "dense"))
    report(0.9, "store")
    details = {"per_query": per_query, "model": dense, "hard_negatives": hard_negatives,
               "rank_window": list(rank_window), "queries": len({c.query for c in picks})}
    with project.db() as db:
        done = store_queue.queue_first(db, "negatives", [(c.query, c.document) for c in picks],
                                       source=negatives.SOURCE, actor=actor.name, details=details)
        m = store_queue.makeup(db)
    m["check_negatives"] = {**details, "candidates": len(picks), **done}
    return m
