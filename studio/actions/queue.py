"""The annotation queue's strategy: which unrated pairs the team rates first (an admin's choice, audited)."""

from __future__ import annotations

from collections.abc import Callable

from sqlite_utils import Database

from studio import queue as strategies
from studio.actions.base import Actor, Project, action
from studio.dataset import negatives
from studio.dataset.triplets import ExportOptions
from studio.models.registry import EMBEDDED_NAME, get_default
from studio.store import pairs as store_pairs
from studio.store import queue as store_queue
from studio.store.gold import gold_set

Progress = Callable[[float, str], None]

# The registry, for the UI and the CLI (which import only actions): ①'s radio and `studio queue strategy`'s choices.
STRATEGIES = strategies.STRATEGIES
DEFAULT_STRATEGY = strategies.DEFAULT  # ①'s preselected strategy
names = strategies.names
ADDS_PAIRS = tuple(n for n, s in STRATEGIES.items() if s.adds_pairs)  # strategies whose action is check_negatives


def _makeup(db: Database) -> dict:
    return store_queue.makeup(db, unset=strategies.UNSET,
                              orders_all={n for n, s in STRATEGIES.items() if s.orders_all})


@action("admin", cli="queue")
def makeup(project: Project, actor: Actor, *, existing: bool = False) -> dict:
    """The queue's strategy and make-up: queued, double-rated, half-taken, untouched and reserved pairs, pairs
    added since the strategy was applied, pairs by source."""
    with project.db(existing=existing) as db:
        return _makeup(db)


@action("admin", cli="queue strategy")
def set_strategy(project: Project, actor: Actor, name: str, *, model: str | None = None, seed: int = 42,
                 per_query: int = 2, progress: Progress | None = None, existing: bool = False) -> dict:
    """Order the untouched pairs by strategy `name` (:data:`studio.queue.STRATEGIES`) and remember it; a strategy
    that adds pairs is :func:`check_negatives` (with `per_query`).

    `model` (strategies that need one): the dense model; None means the default model (★). A strategy that needs
    ``"embedded"`` also ranks with the embedded model when ★ is another one, so a fine-tune, BM25 and the base model
    are the three systems. Returns the queue's make-up afterwards.
    """
    strategy = strategies.get(name)
    if strategy.adds_pairs:
        return check_negatives(project, actor, per_query=per_query, model=model, progress=progress,
                               existing=existing)
    dense = (model or "").strip() or get_default()
    models = [dense] + ([EMBEDDED_NAME] if "embedded" in strategy.needs and dense != EMBEDDED_NAME else [])
    with project.db(existing=existing) as db:
        pairs = store_queue.untouched_pairs(db)
        documents, queries = store_pairs.corpus(db), store_pairs.queries(db)
        gold = store_queue.gold_pairs(db) if "gold" in strategy.needs else []
    order = strategy.order(strategies.Inputs(pairs, documents, queries, models, gold, seed, progress,
                                             db_path=project.db_path))
    with project.db() as db:
        store_queue.apply_order(db, name, order.ids, actor=actor.name, details=order.details,
                                unset=strategies.UNSET)
        return _makeup(db)


@action("admin", cli="queue strategy")
def check_negatives(project: Project, actor: Actor, *, per_query: int = 2, model: str | None = None,
                    hard_negatives: str = "hybrid", rank_window: tuple[int, int] = (10, 100), partial: str = "drop",
                    progress: Progress | None = None, existing: bool = False) -> dict:
    """The strategy that adds pairs (:mod:`studio.queue.negatives`, "check the negatives"): queue the mined hard negatives that score closest to their
    query's positives, for the team to rate before an export (:mod:`studio.dataset.negatives` has the rule).

    Mines as ``export triplets`` does with the same options (`hard_negatives`, `rank_window`, `partial`, `model`:
    None means ★), picks `per_query` unjudged candidates per query with a gold positive, adds those the project
    lacks as pairs of source ``check-negatives`` and serves them all first (after half-taken pairs), in one audited
    transaction. Choosing it again before anyone rates them adds nothing: its own unrated picks stay candidates.

    Returns:
        The queue's make-up, with ``check_negatives``: queries, candidates (picked), added (new pairs), ordered
        (served first), per_query and the model.
    """
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
        done = store_queue.queue_first(db, strategies.Negatives.name, [(c.query, c.document) for c in picks],
                                       source=negatives.SOURCE, actor=actor.name, details=details,
                                       unset=strategies.UNSET)
        m = _makeup(db)
    m["check_negatives"] = {**details, "candidates": len(picks), **done}
    return m
