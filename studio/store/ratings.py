"""Blind double annotation: serve the next pair, save a rating, skip, undo, progress.

Every pair needs two ratings by two different annotators. An annotator only ever sees the query and the
document, never another rating. Serving a pair reserves one of its two slots (table ``assignments``) inside a
``BEGIN IMMEDIATE`` transaction, so concurrent annotators and tabs never push a pair past two raters; the
``UNIQUE(pair_id, annotator_id)`` constraint and the ``ratings_at_most_two`` trigger back this up.

Time per pair is the server's own: a hold records when it first showed the pair (``shown_at``; a reload or a second
tab keeps it), and a rating stores the seconds from then to the rating, capped at ``RATING_SECONDS_CAP``. Nothing
the client sends changes it.

Control pairs (:mod:`studio.store.controls`) are served through the same functions and look the same to the person
rating them: a control is held in ``control_holds``, never in ``assignments``, and its answer goes to
``control_answers``, never to ``ratings`` — so it is never one of a pair's two ratings and never enters agreement,
gold or training data. The regular lanes never serve a control.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from sqlite_utils import Database

from studio.config import ASSIGNMENT_TTL_SECONDS, RATING_SECONDS_CAP
from studio.errors import NotFoundError, RuleError, StudioError
from studio.store import controls
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
# Controls are served only as controls (one primary-key probe per candidate; controls are a few hundred pairs).
_NOT_CONTROL = "NOT EXISTS (SELECT 1 FROM controls c WHERE c.pair_id = p.id)"
# One index seek per person on the team: the first pair each of the others holds or rated alone.
_LANE_ONE = f"""
    SELECT p.id FROM annotators o JOIN pairs p ON p.id = (
        SELECT p.id FROM pairs p
        WHERE p.in_queue = 1 AND p.ratings_n + p.holds_n = 1 AND p.occupant_id = o.id AND {_NOT_SKIPPED}
              AND {_NOT_CONTROL}
        ORDER BY {_ORDER} LIMIT 1)
    WHERE o.id != :me ORDER BY {_ORDER} LIMIT 1"""
_LANE_ZERO = f"""
    SELECT p.id FROM pairs p WHERE p.in_queue = 1 AND p.ratings_n + p.holds_n = 0 AND {_NOT_SKIPPED} AND {_NOT_CONTROL}
    ORDER BY {_ORDER} LIMIT 1"""


def next_pair(db: Database, annotator: str, *, session: str | None = None,
              rng: random.Random | None = None) -> PairView | None:
    """The pair this annotator should rate next, reserved for them; None when their queue is empty.

    Returns the pair they already hold if there is one (a reload or a second tab shows the same pair, and keeps
    the time it was first shown). Otherwise, while regular pairs are left for them, a control pair may be served
    instead (:func:`studio.store.controls.choose_control`: the qualification's first N, then ``controls.rate`` of the
    pairs; `rng` seeds that draw), looking exactly like a pair. Regular pairs with one slot taken come first, so
    pairs get completed, then pairs of the query being worked on. The choice reads a few index entries per person on
    the team, not the project: the write lock is held for microseconds. `session` names the browser session the
    reservation belongs to, so that closing it frees the pair (:func:`release_session`).
    """
    me = get_annotator(db, annotator)["id"]
    now = time.time()
    with immediate(db, durable=False):  # a reservation lost in a power cut is only a pair served again
        db.execute("DELETE FROM assignments WHERE assigned_at < ?", [now - ASSIGNMENT_TTL_SECONDS])
        db.execute("DELETE FROM control_holds WHERE assigned_at < ?", [now - ASSIGNMENT_TTL_SECONDS])
        control = list(db.query("SELECT pair_id FROM control_holds WHERE annotator_id = ?", [me]))
        if control:  # the control on screen, kept (and its shown_at) through reloads
            pair_id = control[0]["pair_id"]
            db.execute("UPDATE control_holds SET assigned_at = ?, session = coalesce(?, session) "
                       "WHERE annotator_id = ?", [now, session, me])
            return get_pair_view(db, pair_id, annotator)
        held = list(db.query(
            "SELECT a.pair_id AS id FROM assignments a JOIN pairs p ON p.id = a.pair_id "
            "WHERE a.annotator_id = :me AND p.in_queue = 1 ORDER BY a.assigned_at LIMIT 1", {"me": me}))
        chosen = held or list(db.query(_LANE_ONE, {"me": me})) or list(db.query(_LANE_ZERO, {"me": me}))
        if not chosen:
            return None  # no control either: a control served after the queue ran out would give itself away
        if not held:
            control_id = controls.choose_control(db, me, rng=rng)
            if control_id is not None:
                db.execute("INSERT INTO control_holds (annotator_id, pair_id, shown_at, assigned_at, session) "
                           "VALUES (?, ?, ?, ?, ?)", [me, control_id, now, now, session])
                return get_pair_view(db, control_id, annotator)
        pair_id = chosen[0]["id"]
        # shown_at is set when the hold is created; a reload (the conflict) keeps it
        db.execute(
            """INSERT INTO assignments (pair_id, annotator_id, assigned_at, session, shown_at) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (pair_id, annotator_id) DO UPDATE SET assigned_at = excluded.assigned_at,
               session = coalesce(excluded.session, assignments.session)""",
            [pair_id, me, now, session, now],
        )
    return get_pair_view(db, pair_id, annotator)


def release_session(db: Database, session: str) -> int:
    """Free the pairs (and controls) reserved by a browser session that ended (tab closed); returns how many."""
    with immediate(db):
        return (db.execute("DELETE FROM assignments WHERE session = ?", [session]).rowcount
                + db.execute("DELETE FROM control_holds WHERE session = ?", [session]).rowcount)


def get_pair_view(db: Database, pair_id: int, annotator: str | None = None) -> PairView:
    """The query and document of a pair, with `annotator`'s own rating (or control answer) if they made one."""
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
               WHERE r.pair_id = :pair AND a.name = :name
               UNION ALL SELECT x.rating, x.note FROM control_answers x JOIN annotators a ON a.id = x.annotator_id
               WHERE x.pair_id = :pair AND a.name = :name LIMIT 1""", {"pair": pair_id, "name": annotator}))
    row = rows[0]
    return PairView(row["id"], row["query"], row["title"], row["document"],
                    mine[0]["rating"] if mine else None, mine[0]["note"] if mine else "")


def _seconds(shown_at: float | None, now: float) -> float | None:
    """Shown → rated in seconds, capped (a lunch break is not a slow rating); None without a hold."""
    if shown_at is None:
        return None
    return round(min(max(0.0, now - shown_at), float(RATING_SECONDS_CAP)), 3)


def _answers_a_control(db: Database, me: int, pair_id: int) -> bool:
    """Whether `me` rating `pair_id` answers a control, never a rating: they hold it as a control; or, not holding
    it as a regular pair, they answered it before (a second tab) or it is a control they never rated (a hold that
    expired)."""
    args = {"pair": pair_id, "me": me}
    if list(db.query("SELECT 1 FROM control_holds WHERE annotator_id = :me AND pair_id = :pair", args)):
        return True
    if list(db.query("SELECT 1 FROM assignments WHERE annotator_id = :me AND pair_id = :pair", args)):
        return False
    if list(db.query("SELECT 1 FROM control_answers WHERE annotator_id = :me AND pair_id = :pair", args)):
        return True
    return bool(list(db.query(
        "SELECT 1 FROM controls c WHERE c.pair_id = :pair "
        "AND NOT EXISTS (SELECT 1 FROM ratings r WHERE r.pair_id = :pair AND r.annotator_id = :me)", args)))


def _answer_control(db: Database, annotator: str, me: int, pair_id: int, rating: int, note: str,
                    now: float) -> int:
    """Save a control answer (inside the caller's transaction): ``control_answers``, never ``ratings``."""
    expected = controls.label_of(db, pair_id)
    old = list(db.query("SELECT id, rating, note, expected, seconds FROM control_answers "
                        "WHERE pair_id = ? AND annotator_id = ?", [pair_id, me]))
    hold = list(db.query("SELECT shown_at FROM control_holds WHERE annotator_id = ? AND pair_id = ?", [me, pair_id]))
    seconds = _seconds(hold[0]["shown_at"], now) if hold else None
    if old:
        prior = old[0]
        db.execute("UPDATE control_answers SET rating = ?, note = ?, seconds = coalesce(?, seconds), "
                   "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
                   [rating, note, seconds, prior["id"]])
        record(db, actor=annotator, action="control.update", entity="control", entity_id=pair_id,
               before={"rating": prior["rating"], "note": prior["note"]}, after={"rating": rating, "note": note})
        answer_id = prior["id"]
    else:  # a hold or an unanswered control: the control exists (clearing controls drops their holds too)
        answer_id = db.execute(
            "INSERT INTO control_answers (pair_id, annotator_id, rating, expected, note, seconds) "
            "VALUES (?, ?, ?, ?, ?, ?)", [pair_id, me, rating, expected, note, seconds]).lastrowid
    db.execute("DELETE FROM control_holds WHERE annotator_id = ? AND pair_id = ?", [me, pair_id])
    db.execute("DELETE FROM skips WHERE pair_id = ? AND annotator_id = ?", [pair_id, me])
    return answer_id


def submit_rating(db: Database, annotator: str, pair_id: int, rating: int, note: str = "") -> int:
    """Save `annotator`'s rating of a pair; committed (and fsynced) when this returns. Returns the rating id.

    Rating a pair twice (a second tab, or after undo) replaces the annotator's own earlier rating and is
    audited. A pair that already has two ratings by other annotators is refused with RuleError. The seconds from
    when the held pair was shown to now are stored (capped at ``RATING_SECONDS_CAP``; None without a hold; a
    re-rating without a hold keeps the earlier seconds). A control pair's answer is stored as a control answer
    (``control_answers``, with the expected label), never as a rating; its id is returned.
    """
    if rating not in (0, 1, 2):
        raise StudioError("bad_rating", value=rating)
    me = get_annotator(db, annotator)["id"]
    note = (note or "").strip()
    with immediate(db):
        now = time.time()
        if not list(db.query("SELECT 1 FROM pairs WHERE id = ?", [pair_id])):
            raise NotFoundError("pair_not_found", pair_id=pair_id)
        if _answers_a_control(db, me, pair_id):
            return _answer_control(db, annotator, me, pair_id, rating, note, now)
        hold = list(db.query("SELECT shown_at FROM assignments WHERE pair_id = ? AND annotator_id = ?", [pair_id, me]))
        seconds = _seconds(hold[0]["shown_at"], now) if hold else None
        existing = list(db.query("SELECT id, annotator_id, rating, note FROM ratings WHERE pair_id = ?", [pair_id]))
        mine = [r for r in existing if r["annotator_id"] == me]
        if mine:
            old = mine[0]
            db.execute(
                "UPDATE ratings SET rating = ?, note = ?, seconds = coalesce(?, seconds), "
                "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?", [rating, note, seconds, old["id"]])
            record(db, actor=annotator, action="rating.update", entity="pair", entity_id=pair_id,
                   before={"rating": old["rating"], "note": old["note"]}, after={"rating": rating, "note": note})
            rating_id = old["id"]
        else:
            if len(existing) >= 2:
                raise RuleError("pair_full", pair_id=pair_id)
            rating_id = db.execute(
                "INSERT INTO ratings (pair_id, annotator_id, rating, note, seconds) VALUES (?, ?, ?, ?, ?)",
                [pair_id, me, rating, note, seconds]).lastrowid
        db.execute("DELETE FROM assignments WHERE pair_id = ? AND annotator_id = ?", [pair_id, me])
        db.execute("DELETE FROM skips WHERE pair_id = ? AND annotator_id = ?", [pair_id, me])
    return rating_id


def skip_pair(db: Database, annotator: str, pair_id: int) -> None:
    """Pass on a pair: it leaves this annotator's queue and its slot goes to someone else (a control: it is
    released, and not served to them again)."""
    me = get_annotator(db, annotator)["id"]
    with immediate(db):
        db.execute("DELETE FROM assignments WHERE pair_id = ? AND annotator_id = ?", [pair_id, me])
        db.execute("DELETE FROM control_holds WHERE pair_id = ? AND annotator_id = ?", [pair_id, me])
        db.execute("INSERT INTO skips (pair_id, annotator_id) VALUES (?, ?) ON CONFLICT DO NOTHING", [pair_id, me])


@dataclass(frozen=True)
class Undone:
    """What an undo took back: a rating (with its value and note, to show them again) or a skip."""

    pair_id: int
    kind: str                 # "rating" | "skip"
    rating: int | None = None
    note: str = ""


def undo_last(db: Database, annotator: str) -> Undone:
    """Take back this annotator's last action — a rating, a control answer or a skip (audited) — and hand that pair
    back to them.

    The pair is what :func:`next_pair` serves next (a control as a control, with a new shown time); an undone
    rating's value and note come back in the result, so the view can offer them again. A control answer comes
    back exactly as a rating does. Raises StudioError when there is nothing to undo.
    """
    me = get_annotator(db, annotator)["id"]
    with immediate(db):
        # seq: one order over ratings, control answers and skips (schemas m006, m007), kept by triggers
        last = [row for row in (
            next(db.query("SELECT 'rating' AS kind, id, pair_id, rating, note, seq, created_at, seconds, "
                          "NULL AS expected FROM ratings WHERE annotator_id = ? ORDER BY seq DESC LIMIT 1", [me]), None),
            next(db.query("SELECT 'control' AS kind, id, pair_id, rating, note, seq, created_at, seconds, expected "
                          "FROM control_answers WHERE annotator_id = ? ORDER BY seq DESC LIMIT 1", [me]), None),
            next(db.query("SELECT 'skip' AS kind, NULL AS id, pair_id, NULL AS rating, '' AS note, seq, "
                          "NULL AS created_at, NULL AS seconds, NULL AS expected FROM skips "
                          "WHERE annotator_id = ? ORDER BY seq DESC LIMIT 1", [me]), None),
        ) if row is not None]
        if not last:
            raise StudioError("nothing_to_undo")
        top = max(last, key=lambda row: row["seq"])
        pair_id = top["pair_id"]
        if top["kind"] == "skip":
            undone = Undone(pair_id, "skip")
            db.execute("DELETE FROM skips WHERE pair_id = ? AND annotator_id = ?", [pair_id, me])
            record(db, actor=annotator, action="skip.undo", entity="pair", entity_id=pair_id)
        elif top["kind"] == "control":
            undone = Undone(pair_id, "rating", top["rating"], top["note"])
            db.execute("DELETE FROM control_answers WHERE id = ?", [top["id"]])
            # when it was made and its time, too: the report as of an earlier moment puts it back (rater_stats)
            record(db, actor=annotator, action="control.undo", entity="control", entity_id=pair_id,
                   before={"rating": top["rating"], "note": top["note"], "expected": top["expected"],
                           "created_at": top["created_at"], "seconds": top["seconds"]})
        else:
            if list(db.query("SELECT 1 FROM adjudications WHERE pair_id = ?", [pair_id])):
                raise RuleError("undo_adjudicated", pair_id=pair_id)
            undone = Undone(pair_id, "rating", top["rating"], top["note"])
            db.execute("DELETE FROM ratings WHERE id = ?", [top["id"]])
            record(db, actor=annotator, action="rating.undo", entity="pair", entity_id=pair_id,
                   before={"rating": top["rating"], "note": top["note"], "created_at": top["created_at"],
                           "seconds": top["seconds"]})
        # The pair on screen goes back to the pool; the undone one is what this annotator holds now, shown anew.
        db.execute("DELETE FROM assignments WHERE annotator_id = ?", [me])
        db.execute("DELETE FROM control_holds WHERE annotator_id = ?", [me])
        now = time.time()
        if top["kind"] == "control" or (top["kind"] == "skip" and controls.label_of(db, pair_id) is not None):
            db.execute("INSERT INTO control_holds (annotator_id, pair_id, shown_at, assigned_at) VALUES (?, ?, ?, ?)",
                       [me, pair_id, now, now])
        else:
            db.execute("INSERT INTO assignments (pair_id, annotator_id, assigned_at, shown_at) VALUES (?, ?, ?, ?)",
                       [pair_id, me, now, now])
    return undone


def progress(db: Database, annotator: str | None = None) -> Progress:
    """Ratings by `annotator` today and in total, what is left in their queue, and project-wide completion.

    Reads counters the schema's triggers keep (schema m004), so it costs the same at a million pairs as at a
    thousand (plus one read per control pair); "today" counts the annotator's own ratings since midnight (UTC) through an index range. A person's
    control answers count as their ratings; control pairs are never work left (they are not served as pairs), so
    the queue's totals leave out the controls in it that lack two ratings. What is left counts a person's
    expected share of rate-served controls (``controls.rate_allowance``), so answering a control lowers it by one
    like a rating; a person still in their qualification has its controls left in their queue.
    """
    totals = next(db.query("SELECT queued, double_rated FROM queue_counts WHERE id = 1"))
    mine_today = mine_total = queue_left = 0
    if not annotator:
        total_pairs = max(0, totals["queued"] - controls.open_controls(db))
    else:
        person = next(db.query("SELECT id, ratings_n, waiting_n FROM annotators WHERE name = ?", [annotator.strip()]),
                      None)
        if person is None:
            raise NotFoundError("annotator_not_found", name=annotator)
        me = person["id"]
        # waiting_n counts this person's ratings on queued pairs with one rating; those on controls are no work left
        open_controls, waiting_controls = controls.queued_controls(db, me)
        total_pairs = max(0, totals["queued"] - open_controls)
        answers = next(db.query(
            "SELECT count(*) AS n, coalesce(sum(created_at >= strftime('%Y-%m-%d', 'now')), 0) AS today "
            "FROM control_answers WHERE annotator_id = ?", [me]))
        mine_total = person["ratings_n"] + answers["n"]
        mine_today = answers["today"] + next(db.query(
            "SELECT count(*) AS n FROM ratings WHERE annotator_id = ? AND created_at >= strftime('%Y-%m-%d', 'now')",
            [me]))["n"]
        skipped = next(db.query(f"SELECT count(*) AS n FROM skips s JOIN pairs p ON p.id = s.pair_id "
                                f"WHERE s.annotator_id = :me AND p.in_queue = 1 AND p.ratings_n < 2 "
                                f"AND {_NOT_CONTROL}", {"me": me}))["n"]
        regular = max(0, total_pairs - totals["double_rated"] - (person["waiting_n"] - waiting_controls) - skipped)
        if regular:  # controls are served only while regular pairs are (one would give itself away otherwise)
            queue_left = controls.due(db, me) + max(1, regular + controls.rate_allowance(db, me, total_pairs))
    return Progress(mine_today, mine_total, queue_left, totals["double_rated"], total_pairs)
