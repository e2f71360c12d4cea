"""Disagreements, second looks, expert decisions (decide, change, skip, undo) and gold labels.

An expert's skips and undos live in the audit log, like every decision: the order of an expert's list is read from
their skip entries, and an undo names the decision entry it takes back.
"""

from __future__ import annotations

import json

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


# Every case ④ shows: a pair with two ratings that differ (a disagreement), or an open second look (two people agreed,
# a model rater confidently did not), or one an expert already decided (which they may change or undo).
_COLUMNS = """
    SELECT p.id AS pair_id, q.key AS query_id, d.key AS doc_id, q.text AS query, d.title, d.text AS document,
           r1.rating AS rating_a, a1.name AS annotator_a, r1.note AS note_a,
           r2.rating AS rating_b, a2.name AS annotator_b, r2.note AS note_b,
           adj.label AS decision, ex.name AS expert, adj.note AS decision_note, adj.created_at AS decided_at,
           CASE WHEN sl.pair_id IS NOT NULL OR r1.rating = r2.rating THEN 'second_look' ELSE 'disagreement' END
               AS kind,
           sl.model_label, sl.agreed_label, mr.name AS model_rater,
           CASE WHEN sl.pair_id IS NOT NULL THEN abs(sl.model_label - sl.agreed_label)
                ELSE abs(r1.rating - r2.rating) END AS width"""
_FROM = """
    FROM pairs p
    JOIN queries q ON q.id = p.query_id
    JOIN documents d ON d.id = p.document_id
    JOIN ratings r1 ON r1.pair_id = p.id
    JOIN ratings r2 ON r2.pair_id = p.id AND r2.id > r1.id
    JOIN annotators a1 ON a1.id = r1.annotator_id
    JOIN annotators a2 ON a2.id = r2.annotator_id
    LEFT JOIN adjudications adj ON adj.pair_id = p.id
    LEFT JOIN annotators ex ON ex.id = adj.expert_id
    LEFT JOIN second_looks sl ON sl.pair_id = p.id
    LEFT JOIN model_raters mr ON mr.id = sl.rater_id
"""
_CASES = _COLUMNS + _FROM
_IS_CASE = "(r1.rating != r2.rating OR sl.pair_id IS NOT NULL OR adj.pair_id IS NOT NULL)"
_IS_OPEN = "((r1.rating != r2.rating AND adj.pair_id IS NULL) OR sl.pair_id IS NOT NULL)"
SKIP = "adjudicate.skip"
UNDO = "adjudicate.undo"


def _filters(annotators: tuple[str, str] | list[str] | None, query: str | None) -> tuple[str, list]:
    """SQL conditions (and their parameters) for one annotator pair (either order) and a query text fragment."""
    sql, params = "", []
    if annotators:
        a, b = annotators
        sql += " AND ((a1.name = ? AND a2.name = ?) OR (a1.name = ? AND a2.name = ?))"
        params += [a, b, b, a]
    if (query or "").strip():
        sql += " AND instr(lower(q.text), lower(?)) > 0"
        params.append(query.strip())
    return sql, params


def _expert(db: Database, name: str) -> dict:
    """The annotator row of `name`, who must be an expert or admin."""
    person = get_annotator(db, name)
    if person["role"] not in ("expert", "admin"):
        raise RuleError("not_expert", name=name)
    return person


def open_cases(db: Database, expert: str | None = None, *, annotators: tuple[str, str] | None = None,
               query: str | None = None) -> list[dict]:
    """What ④ serves: undecided disagreements and open second looks, widest first (2 vs 0 matters most for
    training data); the cases `expert` skipped go to the end, the one skipped last at the very end.

    Args:
        expert: whose skips order the list (None: no skips count).
        annotators: only cases these two people rated (in either order).
        query: only cases whose query text contains this (case-insensitive for Latin letters).
    """
    where, params = _filters(annotators, query)
    skips = ("LEFT JOIN (SELECT entity_id AS pair_id, max(id) AS skipped FROM audit_log WHERE action = ? "
             "AND entity = 'pair' AND actor = ? GROUP BY entity_id) sk ON sk.pair_id = p.id")
    sql = (f"{_COLUMNS}, sk.skipped {_FROM} {skips} WHERE {_IS_OPEN}{where} "
           "ORDER BY coalesce(sk.skipped, 0), width DESC, p.id")
    return [_case(row) for row in db.query(sql, [SKIP, expert or "", *params])]


def decided_cases(db: Database, *, annotators: tuple[str, str] | None = None, query: str | None = None,
                  limit: int = 200) -> list[dict]:
    """Cases an expert decided (disagreements and second looks), the newest decision first: what ④ lets an expert
    change."""
    where, params = _filters(annotators, query)
    sql = (f"{_CASES} WHERE adj.pair_id IS NOT NULL AND sl.pair_id IS NULL AND {_IS_CASE}{where} "
           "ORDER BY adj.created_at DESC, p.id DESC LIMIT ?")
    return [_case(row) for row in db.query(sql, [*params, limit])]


def get_case(db: Database, pair_id: int) -> dict:
    """One case, open or decided (``open`` says which).

    Raises:
        RuleError: the pair is not a case (no two differing ratings, no second look, no decision).
    """
    rows = list(db.query(f"{_CASES} WHERE p.id = ? AND {_IS_CASE}", [pair_id]))
    if not rows:
        raise RuleError("not_disagreement", pair_id=pair_id)
    return _case(rows[0])


def _case(row: dict) -> dict:
    row.pop("skipped", None)
    row["open"] = row["second_look_open"] = row["model_label"] is not None
    if row["kind"] == "disagreement" and row["decision"] is None:
        row["open"] = True
    return row


def annotator_pairs(db: Database) -> list[tuple[str, str]]:
    """Every pair of annotators who have a case (open or decided), names in order: the choices of ④'s filter."""
    rows = db.query(f"SELECT DISTINCT a1.name AS a, a2.name AS b {_FROM} WHERE {_IS_CASE}")
    return sorted({tuple(sorted((r["a"], r["b"]))) for r in rows})


def adjudicate(db: Database, expert: str, pair_id: int, label: int, note: str = "") -> dict:
    """Set the final label of a case — a disagreement, a second look, or one already decided (a change); records
    who, when, before and after in the audit log.

    Deciding a second look settles it: its row goes in the same transaction (the decision's audit entry keeps it,
    so an undo brings it back). The decision is gold like any other; a model's label never is until an expert
    decides so here. Only experts and admins may decide.

    Returns:
        The decision as audited ("after"), with ``before`` (the decision it replaced, or None).
    """
    if label not in (0, 1, 2):
        raise StudioError("bad_rating", value=label)
    person = _expert(db, expert)
    with immediate(db):
        row = get_case(db, pair_id)
        before = None if row["decision"] is None else {"label": row["decision"], "expert": row["expert"],
                                                       "note": row["decision_note"]}
        db.execute(
            """INSERT INTO adjudications (pair_id, label, expert_id, note) VALUES (?, ?, ?, ?)
               ON CONFLICT (pair_id) DO UPDATE SET label = excluded.label, expert_id = excluded.expert_id,
               note = excluded.note, created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')""",
            [pair_id, label, person["id"], (note or "").strip()])
        after = {"label": label, "expert": expert, "note": (note or "").strip(),
                 "ratings": {row["annotator_a"]: row["rating_a"], row["annotator_b"]: row["rating_b"]}}
        if row["second_look_open"]:
            look = next(db.query("SELECT * FROM second_looks WHERE pair_id = ?", [pair_id]))
            after["second_look"] = {**look, "rater": row["model_rater"]}
            db.execute("DELETE FROM second_looks WHERE pair_id = ?", [pair_id])
        record(db, actor=expert, action="adjudicate", entity="pair", entity_id=pair_id, before=before, after=after)
    return {**after, "before": before}


def skip_case(db: Database, expert: str, pair_id: int) -> None:
    """`expert` passes on an open case for now: it goes to the end of their list (audited; others' lists keep
    their order)."""
    _expert(db, expert)
    with immediate(db):
        if not get_case(db, pair_id)["open"]:
            raise RuleError("case_decided", pair_id=pair_id)
        record(db, actor=expert, action=SKIP, entity="pair", entity_id=pair_id)


def undo_decision(db: Database, expert: str) -> dict:
    """Take back `expert`'s last decision still in effect (audited): a first decision is removed, so the case is
    open again (a second look it settled comes back, while its model rater exists); a change puts the earlier
    decision back.

    A decision someone changed since is no longer this expert's to undo and is passed over; so is one already
    undone.

    Returns:
        ``pair_id``, ``label`` and ``note`` (the decision taken back) and ``restored`` (the earlier decision, or
        None when the case is open again).

    Raises:
        StudioError: ``nothing_to_undo_decision`` when the expert has no decision in effect.
    """
    person = _expert(db, expert)
    with immediate(db):
        undone: set[int] = set()
        target = None
        for entry in db.query("SELECT id, entity_id, action, before, after FROM audit_log WHERE entity = 'pair' "
                              "AND actor = ? AND action IN ('adjudicate', ?) ORDER BY id DESC", [expert, UNDO]):
            after = json.loads(entry["after"]) if entry["after"] else {}
            if entry["action"] == UNDO:
                undone.add(after.get("undoes"))
                continue
            if entry["id"] in undone:
                continue
            now = list(db.query("SELECT label, expert_id, note FROM adjudications WHERE pair_id = ?",
                                [entry["entity_id"]]))
            if now and (now[0]["label"], now[0]["expert_id"], now[0]["note"]) == (
                    after.get("label"), person["id"], after.get("note", "")):
                target = (entry, after)
                break
        if target is None:
            raise StudioError("nothing_to_undo_decision")
        entry, after = target
        pair_id = entry["entity_id"]
        restored = json.loads(entry["before"]) if entry["before"] else None
        if restored is None:
            db.execute("DELETE FROM adjudications WHERE pair_id = ?", [pair_id])
            look = after.get("second_look")
            if look and list(db.query("SELECT 1 FROM model_raters WHERE id = ?", [look["rater_id"]])):
                db.execute("INSERT OR REPLACE INTO second_looks (pair_id, rater_id, model_label, agreed_label, "
                           "created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                           [pair_id, look["rater_id"], look["model_label"], look["agreed_label"],
                            look["created_by"], look["created_at"]])
        else:
            earlier = get_annotator(db, restored["expert"])
            restored.setdefault("note", "")
            db.execute("UPDATE adjudications SET label = ?, expert_id = ?, note = ?, "
                       "created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE pair_id = ?",
                       [restored["label"], earlier["id"], restored["note"], pair_id])
        record(db, actor=expert, action=UNDO, entity="pair", entity_id=pair_id,
               before={"label": after["label"], "expert": expert, "note": after.get("note", "")},
               after={"undoes": entry["id"], **(restored or {})})
    return {"pair_id": pair_id, "label": after["label"], "note": after.get("note", ""), "restored": restored,
            "second_look": bool(after.get("second_look")) and restored is None}


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
