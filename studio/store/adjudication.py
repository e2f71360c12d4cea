"""Disagreements, expert decisions and gold labels."""

from __future__ import annotations

from sqlite_utils import Database

from studio.agreement import RatingRow, agreement_report
from studio.errors import RuleError, StudioError
from studio.store.annotators import get_annotator
from studio.store.audit import record
from studio.store.connection import immediate

_DISAGREEMENTS = """
    SELECT p.id AS pair_id, q.text AS query, d.title, d.text AS document,
           r1.rating AS rating_a, a1.name AS annotator_a, r1.note AS note_a,
           r2.rating AS rating_b, a2.name AS annotator_b, r2.note AS note_b,
           adj.label AS decision, ex.name AS expert, adj.note AS decision_note, adj.created_at AS decided_at
    FROM pairs p
    JOIN queries q ON q.id = p.query_id
    JOIN documents d ON d.id = p.document_id
    JOIN ratings r1 ON r1.pair_id = p.id
    JOIN ratings r2 ON r2.pair_id = p.id AND r2.id > r1.id
    JOIN annotators a1 ON a1.id = r1.annotator_id
    JOIN annotators a2 ON a2.id = r2.annotator_id
    LEFT JOIN adjudications adj ON adj.pair_id = p.id
    LEFT JOIN annotators ex ON ex.id = adj.expert_id
    WHERE r1.rating != r2.rating
"""


def disagreements(db: Database, *, include_decided: bool = False) -> list[dict]:
    """Pairs whose two ratings differ, with both ratings, notes and names; undecided ones by default.

    Widest disagreements (2 vs 0) come first: they matter most for training data.
    """
    sql = _DISAGREEMENTS + ("" if include_decided else " AND adj.label IS NULL")
    return list(db.query(sql + " ORDER BY abs(r1.rating - r2.rating) DESC, p.id"))


def adjudicate(db: Database, expert: str, pair_id: int, label: int, note: str = "") -> dict:
    """Set the final label of a disagreeing pair; records who, when, before and after in the audit log.

    Deciding again overwrites the earlier decision (also audited). Only experts and admins may decide.
    """
    if label not in (0, 1, 2):
        raise StudioError("bad_rating", value=label)
    person = get_annotator(db, expert)
    if person["role"] not in ("expert", "admin"):
        raise RuleError("not_expert", name=expert)
    with immediate(db):
        rows = list(db.query(_DISAGREEMENTS + " AND p.id = ?", [pair_id]))
        if not rows:
            raise RuleError("not_disagreement", pair_id=pair_id)
        row = rows[0]
        before = None if row["decision"] is None else {"label": row["decision"], "expert": row["expert"]}
        db.execute(
            """INSERT INTO adjudications (pair_id, label, expert_id, note) VALUES (?, ?, ?, ?)
               ON CONFLICT (pair_id) DO UPDATE SET label = excluded.label, expert_id = excluded.expert_id,
               note = excluded.note, created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')""",
            [pair_id, label, person["id"], (note or "").strip()])
        after = {"label": label, "expert": expert, "note": (note or "").strip(),
                 "ratings": {row["annotator_a"]: row["rating_a"], row["annotator_b"]: row["rating_b"]}}
        record(db, actor=expert, action="adjudicate", entity="pair", entity_id=pair_id, before=before, after=after)
    return after


def rating_rows(db: Database) -> list[RatingRow]:
    """Every rating in the order it was made, for the agreement report."""
    return [RatingRow(r["pair_id"], r["name"], r["rating"]) for r in db.query(
        "SELECT r.pair_id, a.name, r.rating FROM ratings r JOIN annotators a ON a.id = r.annotator_id "
        "ORDER BY r.created_at, r.id")]


def pooled_kappa(db: Database) -> float | None:
    """Cohen's kappa over every double-rated pair (None while undefined), the figure the 0.6 gate is about."""
    return agreement_report(rating_rows(db)).pooled.kappa


def gold_counts(db: Database) -> dict:
    """How many gold labels there are, by label and by origin, and how many pairs still lack one."""
    by_label = {str(k): 0 for k in (0, 1, 2)}
    by_origin = {"agreed": 0, "adjudicated": 0, "reference": 0}
    missing = 0
    for row in db.query("SELECT label, origin, count(*) AS n FROM gold GROUP BY label, origin"):
        if row["label"] is None:
            missing += row["n"]
            continue
        by_label[str(row["label"])] += row["n"]
        by_origin[row["origin"]] += row["n"]
    return {"total": sum(by_label.values()), "by_label": by_label, "by_origin": by_origin,
            "pending": missing, "queries": next(db.query(
                "SELECT count(DISTINCT query_id) AS n FROM gold WHERE label IS NOT NULL"))["n"]}
