"""The annotation queue's make-up and order: which strategy orders it, the pairs a strategy orders, their priority.

Pairs with one slot taken always come first (so pairs get completed); a strategy orders the untouched ones by
writing ``pairs.priority`` (lower first; NULL keeps the imported order, after every prioritised pair). A strategy that
adds pairs ("check the negatives") adds them and serves them first in one transaction (:func:`queue_first`). The
unjudged pairs of systems' top K (``studio pool --unjudged``) are added and served first without changing the
strategy (:func:`serve_first`).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence

from sqlite_utils import Database

from studio.errors import NotFoundError
from studio.store.audit import record
from studio.store.connection import immediate
from studio.store.pairs import add_candidate_pairs

STRATEGY_KEY = "queue.strategy"
TRIAGE_BACK = 1e9  # a triaged pair's priority is this + its id: behind every other (store/judgments.py)


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


def apply_order(db: Database, strategy: str, ordered: Iterable[int], *, actor: str, details: dict | None = None,
                unset: str | None = None) -> int:
    """Serve `ordered` pair ids first, in that order (priorities -1 … 0, before every imported-order pair), the
    rest in imported order; remember the strategy. One transaction, audited (`unset`: the strategy the audit entry
    names as "before" when none was chosen yet). Returns how many pairs were ordered."""
    ids = list(ordered)
    n = max(len(ids), 1)
    with immediate(db):
        before = get_setting(db, STRATEGY_KEY, unset)
        db.execute("UPDATE pairs SET priority = NULL WHERE priority IS NOT NULL")
        db.conn.executemany("UPDATE pairs SET priority = ? WHERE id = ?",
                            ((-1.0 + i / n, pair_id) for i, pair_id in enumerate(ids)))
        db.execute("UPDATE pairs SET priority = ? + id WHERE id IN (SELECT pair_id FROM triage WHERE audit = 0)",
                   [TRIAGE_BACK])  # triage outlives a strategy: its pairs stay at the back
        db.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = "
                   "excluded.value", [STRATEGY_KEY, strategy])
        record(db, actor=actor, action="queue.strategy", entity="settings", entity_id=None,
               before={"strategy": before}, after={"strategy": strategy, "ordered": len(ids), **(details or {})})
    return len(ids)


def queue_first(db: Database, strategy: str, pairs: Sequence[tuple[str, str]], *, source: str, actor: str,
                details: dict | None = None, unset: str | None = None) -> dict:
    """Add the (query key, document key) `pairs` the project lacks to the queue under `source`, then serve every one
    of them nobody has touched yet first, in the order given (:func:`apply_order`), and remember `strategy`.

    All or nothing, in one transaction, with two audit entries: the pairs added (``pool``, with `source`) and the
    strategy (``queue.strategy``, with `details`). Pairs that exist are neither duplicated nor changed.

    Returns:
        ``added`` (new pairs) and ``ordered`` (pairs served first).

    Raises:
        NotFoundError: a query or document key the project does not have.
    """
    with immediate(db):
        ids = []
        for qkey, dkey in pairs:
            q = list(db.query("SELECT id FROM queries WHERE key = ?", [qkey]))
            d = list(db.query("SELECT id FROM documents WHERE key = ?", [dkey]))
            if not q:
                raise NotFoundError("query_not_found", key=qkey)
            if not d:
                raise NotFoundError("document_not_found", key=dkey)
            ids.append((q[0]["id"], d[0]["id"]))
        added = add_candidate_pairs(db, ids, source=source, actor=actor)
        ordered = []
        for qid, did in ids:
            row = list(db.query("SELECT id FROM pairs WHERE query_id = ? AND document_id = ? AND in_queue = 1 "
                                "AND ratings_n + holds_n = 0", [qid, did]))
            ordered += [row[0]["id"]] if row else []
        apply_order(db, strategy, ordered, actor=actor, unset=unset,
                    details={**(details or {}), "source": source, "candidates": len(ids), "added": added})
    return {"added": added, "ordered": len(ordered)}


def serve_first(db: Database, pairs: Sequence[tuple[str, str]], *, source: str, actor: str,
                details: dict | None = None) -> dict:
    """Queue the (query key, document key) `pairs` that have no gold label and serve them before every other
    untouched pair, in the order given, without changing the strategy or the order of the other pairs.

    Each pair is, by what the project has:

    * ``added``: no such pair yet: added to the queue under `source`;
    * ``already_queued``: a queued pair without a gold label (not rated yet, half rated, or two ratings awaiting an
      expert): left as it is;
    * ``judged``: it has a gold label by now: left alone;
    * ``outside_queue``: a pair kept out of the queue (an import that did not queue it): left alone.

    The untouched ones among the added and already queued (no rating, nobody holds them) get priorities below every
    priority there is, so :func:`studio.store.ratings.next_pair` serves them after the half-taken pairs and before
    any other; choosing a strategy afterwards (:func:`apply_order`) orders them with the rest again. All or nothing,
    in one transaction, audited as one ``pool`` entry with `source`, the counts and `details`.

    Returns:
        ``added``, ``already_queued``, ``judged``, ``outside_queue`` and ``ordered`` (pairs now served first).

    Raises:
        NotFoundError: a query or document key the project does not have.
    """
    counts = {"added": 0, "already_queued": 0, "judged": 0, "outside_queue": 0}
    with immediate(db):
        query_ids: dict[str, int] = {}
        doc_ids: dict[str, int] = {}
        ordered = []
        for qkey, dkey in pairs:
            qid = query_ids.get(qkey) or _key_id(db, "queries", qkey, "query_not_found")
            did = doc_ids.get(dkey) or _key_id(db, "documents", dkey, "document_not_found")
            query_ids[qkey], doc_ids[dkey] = qid, did
            row = next(db.query("SELECT p.id, p.in_queue, p.ratings_n + p.holds_n AS touched, g.label FROM pairs p "
                                "LEFT JOIN gold g ON g.pair_id = p.id WHERE p.query_id = ? AND p.document_id = ?",
                                [qid, did]), None)
            if row is None:
                pair_id = db.execute("INSERT INTO pairs (query_id, document_id, source) VALUES (?, ?, ?)",
                                     [qid, did, source]).lastrowid
                counts["added"] += 1
                ordered.append(pair_id)
            elif row["label"] is not None:
                counts["judged"] += 1
            elif not row["in_queue"]:
                counts["outside_queue"] += 1
            else:
                counts["already_queued"] += 1
                if not row["touched"]:
                    ordered.append(row["id"])
        lowest = next(db.query("SELECT min(priority) AS p FROM pairs"))["p"]
        start = min(lowest if lowest is not None else 0.0, -1.0) - 1.0  # strategies use [-1, 0): below them all
        n = max(len(ordered), 1)
        db.conn.executemany("UPDATE pairs SET priority = ? WHERE id = ?",
                            ((start + i / n, pair_id) for i, pair_id in enumerate(ordered)))
        record(db, actor=actor, action="pool", entity="pairs", entity_id=None,
               after={"source": source, "candidates": len(pairs), **counts, "ordered": len(ordered),
                      **(details or {})})
    return {**counts, "ordered": len(ordered)}


def _key_id(db: Database, table: str, key: str, missing: str) -> int:
    row = next(db.query(f"SELECT id FROM {table} WHERE key = ?", [key]), None)
    if row is None:
        raise NotFoundError(missing, key=key)
    return row["id"]


def settled_pairs(db: Database, source: str) -> dict[str, set[str]]:
    """Query key → document keys of every pair the project has, except those `source` added that have no gold label
    yet (what "check the negatives" may still pick: its own earlier picks, so that choosing it twice adds nothing)."""
    out: dict[str, set[str]] = {}
    for r in db.query("SELECT q.key AS qkey, d.key AS dkey FROM pairs p JOIN queries q ON q.id = p.query_id "
                      "JOIN documents d ON d.id = p.document_id JOIN gold g ON g.pair_id = p.id "
                      "WHERE NOT (p.source = ? AND g.label IS NULL)", [source]):
        out.setdefault(r["qkey"], set()).add(r["dkey"])
    return out


def source_pairs(db: Database, source: str) -> list[tuple[str, str]]:
    """(query key, document key) of the pairs `source` added, in the order they were added."""
    return [(r["qkey"], r["dkey"]) for r in db.query(
        "SELECT q.key AS qkey, d.key AS dkey FROM pairs p JOIN queries q ON q.id = p.query_id "
        "JOIN documents d ON d.id = p.document_id WHERE p.source = ? ORDER BY p.id", [source])]


def makeup(db: Database, *, unset: str, orders_all: Container[str]) -> dict:
    """The queue's make-up: strategy, pairs queued / double-rated / half-taken / untouched (control pairs are
    neither) / reserved (control holds too), how many
    untouched pairs the strategy has not ordered (added since it was applied), and pairs by source.

    `unset`: the strategy a project serves before anyone chose one; `orders_all`: the strategies whose order the
    pairs added since leave (the others serve them in imported order on purpose). Both come from
    :mod:`studio.queue`, the only list of the strategies' names."""
    counts = next(db.query("SELECT queued, double_rated FROM queue_counts WHERE id = 1"))
    lanes = next(db.query(
        "SELECT coalesce(sum(ratings_n + holds_n = 1), 0) AS half, coalesce(sum(ratings_n + holds_n = 0), 0) AS "
        "untouched, coalesce(sum(ratings_n + holds_n = 0 AND priority IS NULL), 0) AS unordered "
        "FROM pairs p WHERE in_queue = 1 AND NOT EXISTS (SELECT 1 FROM controls c WHERE c.pair_id = p.id)"))
    sources = {r["source"]: r["n"] for r in db.query(
        "SELECT source, count(*) AS n FROM pairs WHERE in_queue = 1 GROUP BY source ORDER BY source")}
    # control pairs are never served through the lanes: not half-taken or untouched work; their holds are reserved
    reserved = next(db.query("SELECT (SELECT count(*) FROM assignments) + (SELECT count(*) FROM control_holds) "
                             "AS n"))["n"]
    strategy = get_setting(db, STRATEGY_KEY, unset)
    return {"strategy": strategy, "queued": counts["queued"], "double_rated": counts["double_rated"],
            "half_taken": lanes["half"], "untouched": lanes["untouched"],
            "untouched_unordered": lanes["unordered"] if strategy in orders_all else 0,
            "reserved": reserved,
            "by_source": sources}


def serving_order(db: Database, limit: int) -> list[int]:
    """The first `limit` untouched pairs in the order they will be served (for a benchmark or a preview)."""
    return [r["id"] for r in db.query(
        "SELECT p.id FROM pairs p WHERE p.in_queue = 1 AND p.ratings_n + p.holds_n = 0 "
        "ORDER BY coalesce(p.priority, p.query_id), p.id LIMIT ?", [limit])]
