"""Model raters and their judgments, and what the judgments feed: second looks (④) and triage (the queue's back).

A model rater (``model_raters``: a name, its kind from :data:`studio.raters.KINDS`, the model or endpoint, its
settings as JSON) judges pairs blind; each judgment is one row of ``judgments`` per (rater, pair), written again
when the rater judges the pair again. Judgments never touch ``ratings``, ``adjudications`` or the ``gold`` view: a
model's label becomes gold only when an expert decides a second look in ④ (an adjudication).

* **Second look**: pairs two people agreed on (two equal ratings, no adjudication yet) where the model's label is
  two levels away (0 against 2) become rows of ``second_looks``, which ④ shows as cases.
* **Triage**: queued pairs nobody has touched that the model confidently rates irrelevant get the priority
  ``TRIAGE_BACK + id`` (behind every other pair; :func:`studio.store.queue.apply_order` keeps it when a strategy is
  chosen), except a seeded random audit share, which is recorded (``triage.audit = 1``) and served as before.

Both are counted (:func:`counts`) and undone per rater (the rows removed; triaged priorities back to NULL, the
imported order), each change one audited transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from sqlite_utils import Database

from studio.errors import NotFoundError
from studio.store.audit import record
from studio.store.connection import immediate
from studio.store.queue import TRIAGE_BACK

_PAIRS = """SELECT p.id AS pair_id, q.key AS query_key, q.text AS query, d.key AS doc_key, d.title, d.text,
                   g.label AS gold
            FROM pairs p JOIN queries q ON q.id = p.query_id JOIN documents d ON d.id = p.document_id
            JOIN gold g ON g.pair_id = p.id"""
_OPEN = "AND pair_id NOT IN (SELECT pair_id FROM adjudications)"  # a decided second look is settled


# --------------------------------------------------------------------------------------------------- the raters

def ensure_rater(db: Database, name: str, kind: str, spec: str, settings: dict, *, actor: str) -> int:
    """The id of rater `name`, created (audited) if new; an existing rater's kind, spec and settings are kept."""
    row = rater(db, name)
    if row is not None:
        return row["id"]
    with immediate(db):
        rater_id = db.execute("INSERT INTO model_raters (name, kind, spec, settings, created_by) "
                              "VALUES (?, ?, ?, ?, ?)",
                              [name, kind, spec, json.dumps(settings, ensure_ascii=False), actor]).lastrowid
        record(db, actor=actor, action="judge.rater", entity="model_raters", entity_id=rater_id,
               after={"name": name, "kind": kind, "spec": spec})
    return rater_id


def update_settings(db: Database, rater_id: int, settings: dict) -> None:
    """Replace a rater's stored settings (thresholds, the prompt, unreadable answers …)."""
    with immediate(db):
        db.execute("UPDATE model_raters SET settings = ? WHERE id = ?",
                   [json.dumps(settings, ensure_ascii=False), rater_id])


def _row(r: dict) -> dict:
    return {**r, "settings": json.loads(r["settings"] or "{}")}


def rater(db: Database, name: str) -> dict | None:
    """The rater called `name` (id, name, kind, spec, settings as a dict, created_by, created_at), or None."""
    rows = list(db.query("SELECT * FROM model_raters WHERE name = ?", [name]))
    return _row(rows[0]) if rows else None


def require_rater(db: Database, name: str) -> dict:
    """:func:`rater`, or NotFoundError ``rater_not_found`` naming the raters there are."""
    found = rater(db, name)
    if found is None:
        have = ", ".join(r["name"] for r in raters(db)) or "-"
        raise NotFoundError("rater_not_found", name=name, have=have)
    return found


def raters(db: Database) -> list[dict]:
    """Every model rater, oldest first, with how many pairs it judged."""
    return [_row(r) for r in db.query(
        "SELECT m.*, (SELECT count(*) FROM judgments j WHERE j.rater_id = m.id) AS judged FROM model_raters m "
        "ORDER BY m.id")]


# ------------------------------------------------------------------------------------------------ pairs to judge

def pairs_to_judge(db: Database, which: str, limit: int | None = None) -> list[dict]:
    """The pairs a rater judges, by pair id: ``gold`` — every pair with a gold label; ``queue`` — queued pairs
    without one (what people still have to rate). Each row: pair_id, query_key, query, doc_key, title, text, gold.

    Raises:
        ValueError: `which` is neither.
    """
    if which == "gold":
        where = "WHERE g.label IS NOT NULL"
    elif which == "queue":
        where = "WHERE p.in_queue = 1 AND g.label IS NULL"
    else:
        raise ValueError(f"which must be 'gold' or 'queue', not {which!r}")
    sql = f"{_PAIRS} {where} ORDER BY p.id" + (" LIMIT ?" if limit is not None else "")
    return list(db.query(sql, [int(limit)] if limit is not None else []))


def judged_ids(db: Database, rater_id: int) -> set[int]:
    """The pairs rater `rater_id` has a judgment of."""
    return {r["pair_id"] for r in db.query("SELECT pair_id FROM judgments WHERE rater_id = ?", [rater_id])}


# ------------------------------------------------------------------------------------------------- judgments

def save_judgments(db: Database, rater_id: int, rows: Sequence[tuple[int, int, float | None, str | None]], *,
                   actor: str, details: dict | None = None) -> int:
    """Store (pair id, label, score, answer) judgments of `rater_id`, replacing its earlier judgment of the same
    pair (idempotent per (rater, pair)); one transaction with one audit entry (written for a batch without a
    readable answer too: `details` counts them). Returns how many were written."""
    with immediate(db):
        db.conn.executemany(
            "INSERT INTO judgments (rater_id, pair_id, label, score, answer) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (rater_id, pair_id) DO UPDATE SET label = excluded.label, score = excluded.score, "
            "answer = excluded.answer, created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            [(rater_id, pair_id, label, score, answer) for pair_id, label, score, answer in rows])
        record(db, actor=actor, action="judge", entity="model_raters", entity_id=rater_id,
               after={"judged": len(rows), **(details or {})})
    return len(rows)


def judgments(db: Database, rater_id: int, pair_ids: Iterable[int] | None = None) -> list[dict]:
    """Rater `rater_id`'s judgments by pair id: pair_id, query_key, doc_key, label, score, answer and the pair's
    gold label now (None: none); only `pair_ids` when given."""
    rows = db.query(
        "SELECT j.pair_id, q.key AS query_key, d.key AS doc_key, j.label, j.score, j.answer, g.label AS gold "
        "FROM judgments j JOIN pairs p ON p.id = j.pair_id JOIN queries q ON q.id = p.query_id "
        "JOIN documents d ON d.id = p.document_id JOIN gold g ON g.pair_id = p.id "
        "WHERE j.rater_id = ? ORDER BY j.pair_id", [rater_id])
    wanted = None if pair_ids is None else set(pair_ids)
    return [r for r in rows if wanted is None or r["pair_id"] in wanted]


def shared_with_people(db: Database, rater_id: int) -> list[dict]:
    """Each person's rating beside the rater's judgment of the same pair: annotator, rating, label."""
    return list(db.query(
        "SELECT a.name AS annotator, r.rating, j.label FROM judgments j JOIN ratings r ON r.pair_id = j.pair_id "
        "JOIN annotators a ON a.id = r.annotator_id WHERE j.rater_id = ? ORDER BY a.name, j.pair_id", [rater_id]))


# ---------------------------------------------------------------------------------------------- second looks

def second_look(db: Database, rater_id: int, *, actor: str) -> dict:
    """Open a second look at every pair two people agreed on (two equal ratings, not adjudicated) whose judgment
    by `rater_id` is two levels away; pairs with an open second look stay as they are. One audited transaction.

    Returns:
        ``added`` (second looks opened now) and ``open`` (this rater's open second looks).
    """
    with immediate(db):
        candidates = list(db.query(
            "SELECT j.pair_id, j.label AS model_label, pr.lo AS agreed_label FROM judgments j "
            "JOIN pair_ratings pr ON pr.pair_id = j.pair_id "
            "WHERE j.rater_id = ? AND pr.n = 2 AND pr.lo = pr.hi AND abs(j.label - pr.lo) = 2 "
            "AND j.pair_id NOT IN (SELECT pair_id FROM adjudications) "
            "AND j.pair_id NOT IN (SELECT pair_id FROM second_looks) ORDER BY j.pair_id", [rater_id]))
        db.conn.executemany(
            "INSERT INTO second_looks (pair_id, rater_id, model_label, agreed_label, created_by) "
            "VALUES (?, ?, ?, ?, ?)",
            [(c["pair_id"], rater_id, c["model_label"], c["agreed_label"], actor) for c in candidates])
        opened = _open_looks(db, rater_id)
        record(db, actor=actor, action="judge.second_look", entity="model_raters", entity_id=rater_id,
               after={"added": len(candidates), "open": opened, "pairs": [c["pair_id"] for c in candidates]})
    return {"added": len(candidates), "open": opened}


def undo_second_look(db: Database, rater_id: int, *, actor: str) -> dict:
    """Close every open second look of `rater_id` (decided ones became adjudications and stay). Audited."""
    with immediate(db):
        removed = [r["pair_id"] for r in db.query(f"SELECT pair_id FROM second_looks WHERE rater_id = ? {_OPEN}",
                                                  [rater_id])]
        db.execute(f"DELETE FROM second_looks WHERE rater_id = ? {_OPEN}", [rater_id])
        record(db, actor=actor, action="judge.second_look_undo", entity="model_raters", entity_id=rater_id,
               before={"pairs": removed}, after={"removed": len(removed)})
    return {"removed": len(removed), "open": 0}


# ------------------------------------------------------------------------------------------------------ triage

def triage_candidates(db: Database, rater_id: int) -> list[dict]:
    """Queued pairs nobody has rated, skipped or holds, that are not controls and not triaged yet, which
    `rater_id` labelled 0: pair_id, score (the caller keeps the confident ones)."""
    return list(db.query(
        "SELECT j.pair_id, j.score, j.label FROM judgments j JOIN pairs p ON p.id = j.pair_id "
        "WHERE j.rater_id = ? AND j.label = 0 AND p.in_queue = 1 AND p.ratings_n + p.holds_n = 0 "
        "AND j.pair_id NOT IN (SELECT pair_id FROM skips) AND j.pair_id NOT IN (SELECT pair_id FROM controls) "
        "AND j.pair_id NOT IN (SELECT pair_id FROM triage) ORDER BY j.pair_id", [rater_id]))


def apply_triage(db: Database, rater_id: int, back: Sequence[int], audited: Sequence[int], *, actor: str,
                 details: dict | None = None) -> dict:
    """Send the pairs `back` to the back of the queue (priority ``TRIAGE_BACK + id``) and record the `audited`
    ones as the audit sample (served as before); one audited transaction. Returns :func:`counts`."""
    with immediate(db):
        db.conn.executemany("INSERT INTO triage (pair_id, rater_id, audit, created_by) VALUES (?, ?, ?, ?)",
                            [(p, rater_id, 0, actor) for p in back] + [(p, rater_id, 1, actor) for p in audited])
        db.conn.executemany("UPDATE pairs SET priority = ? WHERE id = ?", [(TRIAGE_BACK + p, p) for p in back])
        record(db, actor=actor, action="judge.triage", entity="model_raters", entity_id=rater_id,
               after={"back": len(back), "audit": len(audited), **(details or {})})
    return counts(db, rater_id)


def undo_triage(db: Database, rater_id: int, *, actor: str) -> dict:
    """Take back `rater_id`'s triage: its rows removed and the triaged pairs' priority back to NULL (imported
    order; choosing a strategy again orders them with the rest). One audited transaction."""
    with immediate(db):
        back = [r["pair_id"] for r in db.query("SELECT pair_id FROM triage WHERE rater_id = ? AND audit = 0",
                                               [rater_id])]
        total = _count(db, "triage", rater_id)
        db.conn.executemany("UPDATE pairs SET priority = NULL WHERE id = ?", [(p,) for p in back])
        db.execute("DELETE FROM triage WHERE rater_id = ?", [rater_id])
        record(db, actor=actor, action="judge.triage_undo", entity="model_raters", entity_id=rater_id,
               before={"back": back}, after={"removed": total})
    return {"removed": total, **counts(db, rater_id)}


def counts(db: Database, rater_id: int) -> dict:
    """A rater's judged pairs, open second looks, and triage: pairs at the back (and of those still untouched)
    and the audit sample."""
    triage = next(db.query(
        "SELECT coalesce(sum(t.audit = 0), 0) AS back, coalesce(sum(t.audit = 1), 0) AS audit, "
        "coalesce(sum(t.audit = 0 AND p.ratings_n + p.holds_n = 0), 0) AS waiting "
        "FROM triage t JOIN pairs p ON p.id = t.pair_id WHERE t.rater_id = ?", [rater_id]))
    judged = next(db.query("SELECT count(*) AS n FROM judgments WHERE rater_id = ?", [rater_id]))["n"]
    return {"judged": judged, "second_looks": _open_looks(db, rater_id), "triage_back": triage["back"],
            "triage_waiting": triage["waiting"], "triage_audit": triage["audit"]}


def _open_looks(db: Database, rater_id: int) -> int:
    """Second looks of `rater_id` no expert has decided yet."""
    return next(db.query(f"SELECT count(*) AS n FROM second_looks WHERE rater_id = ? {_OPEN}", [rater_id]))["n"]


def _count(db: Database, table: str, rater_id: int) -> int:
    return next(db.query(f"SELECT count(*) AS n FROM {table} WHERE rater_id = ?", [rater_id]))["n"]
