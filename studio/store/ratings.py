"""Blind double annotation: serve the next pair, save a rating, skip, undo, progress.

Every pair needs two ratings by two different annotators. An annotator only ever sees the query and the
document, never another rating. Serving a pair reserves one of its two slots (table ``assignments``) inside a
``BEGIN IMMEDIATE`` transaction, so concurrent annotators and tabs never push a pair past two raters; the
``UNIQUE(pair_id, annotator_id)`` constraint and the ``ratings_at_most_two`` trigger back this up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlite_utils import Database

from studio.config import ASSIGNMENT_TTL_SECONDS
from studio.errors import NotFoundError, RuleError, StudioError
from studio.store.annotators import get_annotator
from studio.store.audit import record
from studio.store.connection import immediate


@dataclass(frozen=True)
class PairView:
    """What an annotator sees: the query and the document, and nothing about other ratings."""

    pair_id: int
    query: str
    title: str
    document: str
    my_rating: int | None = None
    my_note: str = ""


@dataclass(frozen=True)
class Progress:
    """Counts shown beside the rating buttons."""

    mine_today: int
    mine_total: int
    queue_left: int
    double_rated: int
    total_pairs: int


_AVAILABLE = """
    p.in_queue = 1
    AND NOT EXISTS (SELECT 1 FROM ratings r WHERE r.pair_id = p.id AND r.annotator_id = :me)
    AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.pair_id = p.id AND s.annotator_id = :me)
"""
_TAKEN = """(
    (SELECT count(*) FROM ratings r WHERE r.pair_id = p.id)
    + (SELECT count(*) FROM assignments a WHERE a.pair_id = p.id AND a.annotator_id != :me
       AND NOT EXISTS (SELECT 1 FROM ratings r2 WHERE r2.pair_id = a.pair_id AND r2.annotator_id = a.annotator_id))
)"""


def next_pair(db: Database, annotator: str) -> PairView | None:
    """The pair this annotator should rate next, reserved for them; None when their queue is empty.

    Returns the pair they already hold if there is one (a reload or a second tab shows the same pair).
    Pairs with one rating already come first, so pairs get completed, then pairs of the query being worked on.
    """
    me = get_annotator(db, annotator)["id"]
    now = time.time()
    with immediate(db):
        db.execute("DELETE FROM assignments WHERE assigned_at < ?", [now - ASSIGNMENT_TTL_SECONDS])
        held = list(db.query(
            f"""SELECT p.id FROM assignments a JOIN pairs p ON p.id = a.pair_id
                WHERE a.annotator_id = :me AND {_AVAILABLE} ORDER BY a.assigned_at LIMIT 1""",
            {"me": me},
        ))
        if held:
            pair_id = held[0]["id"]
        else:
            candidates = list(db.query(
                f"""SELECT p.id, {_TAKEN} AS taken FROM pairs p
                    WHERE {_AVAILABLE} AND {_TAKEN} < 2
                    ORDER BY taken DESC, p.query_id, p.id LIMIT 1""",
                {"me": me},
            ))
            if not candidates:
                return None
            pair_id = candidates[0]["id"]
        db.execute(
            """INSERT INTO assignments (pair_id, annotator_id, assigned_at) VALUES (?, ?, ?)
               ON CONFLICT (pair_id, annotator_id) DO UPDATE SET assigned_at = excluded.assigned_at""",
            [pair_id, me, now],
        )
    return get_pair_view(db, pair_id, annotator)


def get_pair_view(db: Database, pair_id: int, annotator: str | None = None) -> PairView:
    """The query and document of a pair, with `annotator`'s own rating if they made one."""
    rows = list(db.query(
        """SELECT p.id, q.text AS query, d.title, d.text AS document FROM pairs p
           JOIN queries q ON q.id = p.query_id JOIN documents d ON d.id = p.document_id WHERE p.id = ?""",
        [pair_id],
    ))
    if not rows:
        raise NotFoundError("pair_not_found", pair_id=pair_id)
    mine = []
    if annotator:
        mine = list(db.query(
            """SELECT r.rating, r.note FROM ratings r JOIN annotators a ON a.id = r.annotator_id
               WHERE r.pair_id = ? AND a.name = ?""", [pair_id, annotator]))
    row = rows[0]
    return PairView(row["id"], row["query"], row["title"], row["document"],
                    mine[0]["rating"] if mine else None, mine[0]["note"] if mine else "")


def submit_rating(db: Database, annotator: str, pair_id: int, rating: int, note: str = "") -> int:
    """Save `annotator`'s rating of a pair; committed (and fsynced) when this returns. Returns the rating id.

    Rating a pair twice (a second tab, or after undo) replaces the annotator's own earlier rating and is
    audited. A pair that already has two ratings by other annotators is refused with RuleError.
    """
    if rating not in (0, 1, 2):
        raise StudioError("bad_rating", value=rating)
    me = get_annotator(db, annotator)["id"]
    note = (note or "").strip()
    with immediate(db):
        if not list(db.query("SELECT 1 FROM pairs WHERE id = ?", [pair_id])):
            raise NotFoundError("pair_not_found", pair_id=pair_id)
        existing = list(db.query("SELECT id, annotator_id, rating, note FROM ratings WHERE pair_id = ?", [pair_id]))
        mine = [r for r in existing if r["annotator_id"] == me]
        if mine:
            old = mine[0]
            db.execute(
                "UPDATE ratings SET rating = ?, note = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                "WHERE id = ?", [rating, note, old["id"]])
            record(db, actor=annotator, action="rating.update", entity="pair", entity_id=pair_id,
                   before={"rating": old["rating"], "note": old["note"]}, after={"rating": rating, "note": note})
            rating_id = old["id"]
        else:
            if len(existing) >= 2:
                raise RuleError("pair_full", pair_id=pair_id)
            rating_id = db.execute(
                "INSERT INTO ratings (pair_id, annotator_id, rating, note) VALUES (?, ?, ?, ?)",
                [pair_id, me, rating, note]).lastrowid
        db.execute("DELETE FROM assignments WHERE pair_id = ? AND annotator_id = ?", [pair_id, me])
        db.execute("DELETE FROM skips WHERE pair_id = ? AND annotator_id = ?", [pair_id, me])
    return rating_id


def skip_pair(db: Database, annotator: str, pair_id: int) -> None:
    """Pass on a pair: it leaves this annotator's queue and its slot goes to someone else."""
    me = get_annotator(db, annotator)["id"]
    with immediate(db):
        db.execute("DELETE FROM assignments WHERE pair_id = ? AND annotator_id = ?", [pair_id, me])
        db.execute("INSERT INTO skips (pair_id, annotator_id) VALUES (?, ?) ON CONFLICT DO NOTHING", [pair_id, me])


def undo_last(db: Database, annotator: str) -> int:
    """Take back this annotator's most recent rating (audited) and hand that pair back to them.

    Returns the pair id, which :func:`next_pair` serves next. Raises StudioError when there is nothing to undo.
    """
    me = get_annotator(db, annotator)["id"]
    with immediate(db):
        rows = list(db.query(
            "SELECT id, pair_id, rating, note FROM ratings WHERE annotator_id = ? "
            "ORDER BY coalesce(updated_at, created_at) DESC, id DESC LIMIT 1", [me]))
        if not rows:
            raise StudioError("nothing_to_undo")
        last = rows[0]
        if list(db.query("SELECT 1 FROM adjudications WHERE pair_id = ?", [last["pair_id"]])):
            raise RuleError("undo_adjudicated", pair_id=last["pair_id"])
        db.execute("DELETE FROM ratings WHERE id = ?", [last["id"]])
        # The pair on screen goes back to the pool; the undone one is what this annotator holds now.
        db.execute("DELETE FROM assignments WHERE annotator_id = ?", [me])
        db.execute("INSERT INTO assignments (pair_id, annotator_id, assigned_at) VALUES (?, ?, ?)",
                   [last["pair_id"], me, time.time()])
        record(db, actor=annotator, action="rating.undo", entity="pair", entity_id=last["pair_id"],
               before={"rating": last["rating"], "note": last["note"]})
    return last["pair_id"]


def progress(db: Database, annotator: str | None = None) -> Progress:
    """Ratings by `annotator` today and in total, what is left in their queue, and project-wide completion."""
    totals = next(db.query(
        """SELECT count(*) AS total,
                  sum(CASE WHEN (SELECT count(*) FROM ratings r WHERE r.pair_id = p.id) >= 2 THEN 1 ELSE 0 END)
                      AS done
           FROM pairs p WHERE p.in_queue = 1"""))
    mine_today = mine_total = queue_left = 0
    if annotator:
        me = get_annotator(db, annotator)["id"]
        mine = next(db.query(
            """SELECT count(*) AS total,
                      sum(CASE WHEN date(created_at) = date('now') THEN 1 ELSE 0 END) AS today
               FROM ratings WHERE annotator_id = ?""", [me]))
        mine_total, mine_today = mine["total"], mine["today"] or 0
        queue_left = next(db.query(
            f"SELECT count(*) AS n FROM pairs p WHERE {_AVAILABLE} AND {_TAKEN} < 2", {"me": me}))["n"]
    return Progress(mine_today, mine_total, queue_left, totals["done"] or 0, totals["total"])
