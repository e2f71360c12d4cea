"""The annotation queue's make-up and order: which strategy orders it, the pairs a strategy orders, their priority.

Pairs with one slot taken always come first (so pairs get completed); a strategy orders the untouched ones by
writing ``pairs.priority`` (lower first; NULL keeps the imported order, after every prioritised pair).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlite_utils import Database

from studio.store.audit import record
from studio.store.connection import immediate

STRATEGY_KEY = "queue.strategy"


def get_setting(db: Database, key: str, default: str | None = None) -> str | None:
    """A project setting, or `default` when it was never set."""
    rows = list(db.query("SELECT value FROM settings WHERE key = ?", [key]))
    return rows[0]["value"] if rows else default


def untouched_pairs(db: Database) -> list[dict]:
    """Queued pairs nobody has rated or holds: what a strategy orders (pair, query and document ids)."""
    return list(db.query("SELECT id, query_id, document_id FROM pairs p "
                         "WHERE p.in_queue = 1 AND p.ratings_n + p.holds_n = 0 ORDER BY id"))


def gold_pairs(db: Database) -> list[tuple[int, int, int]]:
    """(query id, document id, gold label) of every pair with a gold label."""
    return [(r["query_id"], r["document_id"], r["label"]) for r in db.query(
        "SELECT query_id, document_id, label FROM gold WHERE label IS NOT NULL")]


def apply_order(db: Database, strategy: str, ordered: Iterable[int], *, actor: str, details: dict | None = None) -> int:
    """Serve `ordered` pair ids first, in that order (priorities -1 … 0, before every imported-order pair), the
    rest in imported order; remember the strategy. One transaction, audited. Returns how many pairs were ordered."""
    ids = list(ordered)
    n = max(len(ids), 1)
    with immediate(db):
        before = get_setting(db, STRATEGY_KEY, "imported")
        db.execute("UPDATE pairs SET priority = NULL WHERE priority IS NOT NULL")
        db.conn.executemany("UPDATE pairs SET priority = ? WHERE id = ?",
                            ((-1.0 + i / n, pair_id) for i, pair_id in enumerate(ids)))
        db.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = "
                   "excluded.value", [STRATEGY_KEY, strategy])
        record(db, actor=actor, action="queue.strategy", entity="settings", entity_id=None,
               before={"strategy": before}, after={"strategy": strategy, "ordered": len(ids), **(details or {})})
    return len(ids)


def makeup(db: Database) -> dict:
    """The queue's make-up: strategy, pairs queued / double-rated / half-taken / untouched / reserved, how many
    untouched pairs the strategy has not ordered (added since it was applied), and pairs by source."""
    counts = next(db.query("SELECT queued, double_rated FROM queue_counts WHERE id = 1"))
    lanes = next(db.query(
        "SELECT coalesce(sum(ratings_n + holds_n = 1), 0) AS half, coalesce(sum(ratings_n + holds_n = 0), 0) AS "
        "untouched, coalesce(sum(ratings_n + holds_n = 0 AND priority IS NULL), 0) AS unordered "
        "FROM pairs WHERE in_queue = 1"))
    sources = {r["source"]: r["n"] for r in db.query(
        "SELECT source, count(*) AS n FROM pairs WHERE in_queue = 1 GROUP BY source ORDER BY source")}
    reserved = next(db.query("SELECT count(*) AS n FROM assignments"))["n"]
    strategy = get_setting(db, STRATEGY_KEY, "imported")
    return {"strategy": strategy, "queued": counts["queued"], "double_rated": counts["double_rated"],
            "half_taken": lanes["half"], "untouched": lanes["untouched"],
            "untouched_unordered": lanes["unordered"] if strategy != "imported" else 0, "reserved": reserved,
            "by_source": sources}


def serving_order(db: Database, limit: int) -> list[int]:
    """The first `limit` untouched pairs in the order they will be served (for a benchmark or a preview)."""
    return [r["id"] for r in db.query(
        "SELECT p.id FROM pairs p WHERE p.in_queue = 1 AND p.ratings_n + p.holds_n = 0 "
        "ORDER BY coalesce(p.priority, p.query_id), p.id LIMIT ?", [limit])]
