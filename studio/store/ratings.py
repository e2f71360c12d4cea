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


# Serving order: pairs with one slot taken first (so pairs get completed), then untouched pairs; within each, the
# pair's priority (NULL: imported order, the pairs of one query together) and id. Both lanes are partial indexes
# (schema m004), kept up to date by triggers; the WHERE terms below match their definitions so SQLite uses them.
_ORDER = "coalesce(p.priority, p.query_id), p.id"
_NOT_SKIPPED = "NOT EXISTS (SELECT 1 FROM skips s WHERE s.pair_id = p.id AND s.annotator_id = :me)"
# One index seek per person on the team: the first pair each of the others holds or rated alone.
_LANE_ONE = f"""
    SELECT p.id FROM annotators o JOIN pairs p ON p.id = (
        SELECT p.id FROM pairs p
        WHERE p.in_queue = 1 AND p.ratings_n + p.holds_n = 1 AND p.occupant_id = o.id AND {_NOT_SKIPPED}
        ORDER BY {_ORDER} LIMIT 1)
    WHERE o.id != :me ORDER BY {_ORDER} LIMIT 1"""
_LANE_ZERO = f"""
    SELECT p.id FROM pairs p WHERE p.in_queue = 1 AND p.ratings_n + p.holds_n = 0 AND {_NOT_SKIPPED}
    ORDER BY {_ORDER} LIMIT 1"""


def next_pair(db: Database, annotator: str, *, session: str | None = None) -> PairView | None:
    """The pair this annotator should rate next, reserved for them; None when their queue is empty.

    Returns the pair they already hold if there is one (a reload or a second tab shows the same pair). Pairs with one
    slot taken come first, so pairs get completed, then pairs of the query being worked on. The choice reads a few
    index entries per person on the team, not the project: the write lock is held for microseconds. `session` names
    the browser session the reservation belongs to, so that closing it frees the pair (:func:`release_session`).
    """
    me = get_annotator(db, annotator)["id"]
    now = time.time()
    with immediate(db, durable=False):  # a reservation lost in a power cut is only a pair served again
        db.execute("DELETE FROM assignments WHERE assigned_at < ?", [now - ASSIGNMENT_TTL_SECONDS])
        held = list(db.query(
            "SELECT a.pair_id AS id FROM assignments a JOIN pairs p ON p.id = a.pair_id "
            "WHERE a.annotator_id = :me AND p.in_queue = 1 ORDER BY a.assigned_at LIMIT 1", {"me": me}))
        chosen = held or list(db.query(_LANE_ONE, {"me": me})) or list(db.query(_LANE_ZERO, {"me": me}))
        if not chosen:
            return None
        pair_id = chosen[0]["id"]
        db.execute(
            """INSERT INTO assignments (pair_id, annotator_id, assigned_at, session) VALUES (?, ?, ?, ?)
               ON CONFLICT (pair_id, annotator_id) DO UPDATE SET assigned_at = excluded.assigned_at,
               session = coalesce(excluded.session, assignments.session)""",
            [pair_id, me, now, session],
        )
    return get_pair_view(db, pair_id, annotator)


def release_session(db: Database, session: str) -> int:
    """Free the pairs reserved by a browser session that ended (tab closed); returns how many."""
    with immediate(db):
        return db.execute("DELETE FROM assignments WHERE session = ?", [session]).rowcount


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


@dataclass(frozen=True)
class Undone:
    """What an undo took back: a rating (with its value and note, to show them again) or a skip."""

    pair_id: int
    kind: str                 # "rating" | "skip"
    rating: int | None = None
    note: str = ""


def undo_last(db: Database, annotator: str) -> Undone:
    """Take back this annotator's last action — a rating or a skip (audited) — and hand that pair back to them.

    The pair is what :func:`next_pair` serves next; an undone rating's value and note come back in the result, so
    the view can offer them again. Raises StudioError when there is nothing to undo.
    """
    me = get_annotator(db, annotator)["id"]
    with immediate(db):
        # seq: one order over ratings and skips (schema m006), kept by triggers
        rating = list(db.query("SELECT id, pair_id, rating, note, seq FROM ratings WHERE annotator_id = ? "
                               "ORDER BY seq DESC LIMIT 1", [me]))
        skip = list(db.query("SELECT pair_id, seq FROM skips WHERE annotator_id = ? ORDER BY seq DESC LIMIT 1", [me]))
        if not rating and not skip:
            raise StudioError("nothing_to_undo")
        if skip and (not rating or skip[0]["seq"] > rating[0]["seq"]):
            undone = Undone(skip[0]["pair_id"], "skip")
            db.execute("DELETE FROM skips WHERE pair_id = ? AND annotator_id = ?", [undone.pair_id, me])
            record(db, actor=annotator, action="skip.undo", entity="pair", entity_id=undone.pair_id)
        else:
            last = rating[0]
            if list(db.query("SELECT 1 FROM adjudications WHERE pair_id = ?", [last["pair_id"]])):
                raise RuleError("undo_adjudicated", pair_id=last["pair_id"])
            undone = Undone(last["pair_id"], "rating", last["rating"], last["note"])
            db.execute("DELETE FROM ratings WHERE id = ?", [last["id"]])
            record(db, actor=annotator, action="rating.undo", entity="pair", entity_id=last["pair_id"],
                   before={"rating": last["rating"], "note": last["note"]})
        # The pair on screen goes back to the pool; the undone one is what this annotator holds now.
        db.execute("DELETE FROM assignments WHERE annotator_id = ?", [me])
        db.execute("INSERT INTO assignments (pair_id, annotator_id, assigned_at) VALUES (?, ?, ?)",
                   [undone.pair_id, me, time.time()])
    return undone


def progress(db: Database, annotator: str | None = None) -> Progress:
    """Ratings by `annotator` today and in total, what is left in their queue, and project-wide completion.

    Reads counters the schema's triggers keep (schema m004), so it costs the same at a million pairs as at a
    thousand; "today" counts the annotator's own ratings since midnight (UTC) through an index range.
    """
    totals = next(db.query("SELECT queued, double_rated FROM queue_counts WHERE id = 1"))
    mine_today = mine_total = queue_left = 0
    if annotator:
        person = next(db.query("SELECT id, ratings_n, waiting_n FROM annotators WHERE name = ?", [annotator.strip()]),
                      None)
        if person is None:
            raise NotFoundError("annotator_not_found", name=annotator)
        me = person["id"]
        mine_total = person["ratings_n"]
        mine_today = next(db.query("SELECT count(*) AS n FROM ratings WHERE annotator_id = ? AND created_at >= "
                                   "strftime('%Y-%m-%d', 'now')", [me]))["n"]
        skipped = next(db.query("SELECT count(*) AS n FROM skips s JOIN pairs p ON p.id = s.pair_id "
                                "WHERE s.annotator_id = ? AND p.in_queue = 1 AND p.ratings_n < 2", [me]))["n"]
        queue_left = max(0, totals["queued"] - totals["double_rated"] - person["waiting_n"] - skipped)
    return Progress(mine_today, mine_total, queue_left, totals["double_rated"], totals["queued"])
