"""Control pairs: gold pairs served like any pair, whose answers measure each rater against the expected label.

An admin turns gold pairs into controls (:func:`add_from_gold`; the expected label is the gold label at that time,
frozen) and sets the share of served pairs that are controls (:func:`set_rate`, ``controls.rate``), optionally with a
qualification: a new person's first N pairs are controls (:func:`set_qualification`). Serving, answering, skipping
and undoing a control go through :mod:`studio.store.ratings` (``next_pair`` asks :func:`choose_control`), so a person
cannot tell a control from a pair; answers live in ``control_answers``, never in ``ratings``.

A failed qualification never blocks anyone: :func:`qualification` lists each person's result for the admins (the
status here, and the annotator report).
"""

from __future__ import annotations

import math
import random

from sqlite_utils import Database

from studio.errors import StudioError
from studio.store.audit import record
from studio.store.connection import immediate

RATE_KEY = "controls.rate"
QUALIFY_FIRST_KEY = "controls.qualify_first"
PASS_MARK_KEY = "controls.pass_mark"
MIN_ACCURACY_KEY = "controls.min_accuracy"
DEFAULTS = {RATE_KEY: 0.0, QUALIFY_FIRST_KEY: 0, PASS_MARK_KEY: 0.8, MIN_ACCURACY_KEY: 0.7}
MAX_RATE = 0.5
MAX_QUALIFY_FIRST = 1000
# Which gold labels make the best controls: an expert's decision, then two raters' agreement, then the data's own.
ORIGIN_PREFERENCE = ("adjudicated", "agreed", "reference")


def settings(db: Database) -> dict:
    """The controls' settings: ``rate`` (share of served pairs), ``qualify_first`` (N; 0 = off), ``pass_mark`` and
    ``min_accuracy`` (the report's flag threshold). One read; a value never set is its default."""
    stored = {r["key"]: r["value"] for r in db.query(
        "SELECT key, value FROM settings WHERE key IN (?, ?, ?, ?)", list(DEFAULTS))}
    values = {}
    for key, default in DEFAULTS.items():
        try:
            values[key] = float(stored[key]) if key in stored else float(default)
        except ValueError:  # a hand-edited setting: the default rather than a broken queue
            values[key] = float(default)
    return {"rate": values[RATE_KEY], "qualify_first": int(values[QUALIFY_FIRST_KEY]),
            "pass_mark": values[PASS_MARK_KEY], "min_accuracy": values[MIN_ACCURACY_KEY]}


def _put(db: Database, key: str, value: float | int) -> None:
    db.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
               [key, str(value)])


def _fraction(value: float, *, low: float, high: float, code: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise StudioError(code, value=value, low=low, high=high) from None
    if math.isnan(number) or not low <= number <= high:
        raise StudioError(code, value=value, low=low, high=high)
    return number


def add_from_gold(db: Database, *, n: int | None = None, seed: int = 0, actor: str) -> dict:
    """Turn gold pairs into controls, the expected label being each pair's gold label now (frozen) and its origin.

    Chooses `n` gold pairs (all of them when None): adjudicated ones first, then agreed, then reference labels,
    shuffled by `seed` within each origin. The same `n` and `seed` choose the same pairs, so running it again adds
    nothing: pairs already controls are counted (``existing``), not duplicated. One audited transaction.

    Returns:
        ``selected``, ``added``, ``existing``, ``controls`` (how many now), ``by_origin`` (of the selected pairs)
        and ``gold`` (gold pairs the project has).

    Raises:
        StudioError: `n` below 1, or a project without gold labels.
    """
    if n is not None and int(n) < 1:
        raise StudioError("controls_bad_n", n=n)
    # Read before the write transaction: the gold view reads every pair, and annotators wait for the write lock.
    gold = list(db.query("SELECT pair_id, label, origin FROM gold WHERE label IS NOT NULL ORDER BY pair_id"))
    if not gold:
        raise StudioError("controls_no_gold")
    rng = random.Random(seed)
    ordered = []
    for origin in ORIGIN_PREFERENCE:
        group = [g for g in gold if g["origin"] == origin]
        rng.shuffle(group)
        ordered += group
    chosen = ordered if n is None else ordered[:int(n)]
    with immediate(db):
        existing = {r["pair_id"] for r in db.query("SELECT pair_id FROM controls")}
        new = [g for g in chosen if g["pair_id"] not in existing]
        db.conn.executemany("INSERT INTO controls (pair_id, label, origin, added_by) VALUES (?, ?, ?, ?)",
                            [(g["pair_id"], g["label"], g["origin"], actor) for g in new])
        by_origin = {o: sum(g["origin"] == o for g in chosen) for o in ORIGIN_PREFERENCE}
        result = {"selected": len(chosen), "added": len(new), "existing": len(chosen) - len(new),
                  "controls": len(existing) + len(new), "by_origin": by_origin, "gold": len(gold)}
        record(db, actor=actor, action="controls.add", entity="controls", entity_id=None,
               before={"controls": len(existing)}, after={**result, "n": n, "seed": seed})
    return result


def clear_controls(db: Database, *, actor: str) -> dict:
    """Turn every control back into a plain gold pair; the answers given so far stay (for the report), and the
    controls people are looking at now are released. Audited. Returns ``removed`` and ``answers_kept``."""
    with immediate(db):
        removed = db.execute("DELETE FROM controls").rowcount
        db.execute("DELETE FROM control_holds")
        kept = next(db.query("SELECT count(*) AS n FROM control_answers"))["n"]
        record(db, actor=actor, action="controls.clear", entity="controls", entity_id=None,
               before={"controls": removed}, after={"controls": 0, "answers_kept": kept})
    return {"removed": removed, "answers_kept": kept}


def set_rate(db: Database, rate: float, *, actor: str) -> dict:
    """Serve controls as this share of the pairs served (0 to 0.5; 0 turns them off). Audited; returns
    :func:`settings`.

    Raises:
        StudioError: a rate outside 0..0.5 (``controls_rate_range``).
    """
    value = _fraction(rate, low=0.0, high=MAX_RATE, code="controls_rate_range")
    return _change(db, {RATE_KEY: value}, actor=actor, action="controls.rate")


def set_qualification(db: Database, first_n: int, pass_mark: float, *, actor: str) -> dict:
    """A new person's first `first_n` pairs are controls (0 turns it off), passed at `pass_mark` (0..1) correct.
    Failing is shown to admins (:func:`qualification`), never blocks anyone. Audited; returns :func:`settings`.

    Raises:
        StudioError: `first_n` outside 0..1000 or `pass_mark` outside 0..1.
    """
    try:
        number = float(first_n)
    except (TypeError, ValueError):
        raise StudioError("controls_first_range", value=first_n, high=MAX_QUALIFY_FIRST) from None
    if not number.is_integer() or not 0 <= number <= MAX_QUALIFY_FIRST:
        raise StudioError("controls_first_range", value=first_n, high=MAX_QUALIFY_FIRST)
    first = int(number)
    mark = _fraction(pass_mark, low=0.0, high=1.0, code="controls_pass_mark_range")
    return _change(db, {QUALIFY_FIRST_KEY: first, PASS_MARK_KEY: mark}, actor=actor, action="controls.qualify")


def set_min_accuracy(db: Database, value: float, *, actor: str) -> dict:
    """The control accuracy (0..1) below which the annotator report flags a person ``low_control_accuracy``.
    Audited; returns :func:`settings`."""
    number = _fraction(value, low=0.0, high=1.0, code="controls_min_accuracy_range")
    return _change(db, {MIN_ACCURACY_KEY: number}, actor=actor, action="controls.min_accuracy")


def _change(db: Database, values: dict, *, actor: str, action: str) -> dict:
    with immediate(db):
        before = settings(db)
        for key, value in values.items():
            _put(db, key, value)
        after = settings(db)
        record(db, actor=actor, action=action, entity="settings", entity_id=None,
               before={k: before[k.split(".", 1)[1]] for k in values},
               after={k: after[k.split(".", 1)[1]] for k in values})
    return after


# -- serving (called by studio.store.ratings.next_pair inside its write transaction) ------------------------------

# A control this person may be served: not answered, not rated (before it became a control), not skipped.
_AVAILABLE = """NOT EXISTS (SELECT 1 FROM control_answers x WHERE x.pair_id = c.pair_id AND x.annotator_id = :me)
    AND NOT EXISTS (SELECT 1 FROM ratings r WHERE r.pair_id = c.pair_id AND r.annotator_id = :me)
    AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.pair_id = c.pair_id AND s.annotator_id = :me)"""


def qualifying(db: Database, me: int, first: int) -> bool:
    """Whether annotator id `me` is still in their qualification: fewer than `first` control answers and no rating."""
    if first <= 0:
        return False
    if next(db.query("SELECT ratings_n FROM annotators WHERE id = ?", [me]))["ratings_n"]:
        return False
    answered = next(db.query("SELECT count(*) AS n FROM control_answers WHERE annotator_id = ?", [me]))["n"]
    return answered < first


def choose_control(db: Database, me: int, *, rng: random.Random | None = None) -> int | None:
    """The control to serve annotator id `me` instead of a regular pair, or None for a regular pair.

    Qualification first: a person with fewer than ``controls.qualify_first`` control answers and no rating yet gets
    a control while one is left for them. Otherwise a control with probability ``controls.rate``
    (``random.random()``, or `rng`: seed it for a reproducible run). The control is a random one this person has not
    answered, rated or skipped. Reads nothing when controls are off (rate 0, no qualification).
    """
    s = settings(db)
    if s["rate"] <= 0 and s["qualify_first"] <= 0:
        return None
    draw = rng.random if rng is not None else random.random
    if not qualifying(db, me, s["qualify_first"]) and not draw() < s["rate"]:
        return None
    return _random_control(db, me, draw)


def _random_control(db: Database, me: int, draw) -> int | None:
    """A random control available to `me`: from a random starting control, the first available one after it,
    wrapping around (uniform while few are unavailable; reads the controls' index, not the project)."""
    total = next(db.query("SELECT count(*) AS n FROM controls"))["n"]
    if not total:
        return None
    start = next(db.query("SELECT pair_id FROM controls ORDER BY pair_id LIMIT 1 OFFSET ?",
                          [min(total - 1, int(draw() * total))]))["pair_id"]
    for where in ("c.pair_id >= :start", "c.pair_id < :start"):
        row = list(db.query(f"SELECT c.pair_id FROM controls c WHERE {where} AND {_AVAILABLE} "
                            "ORDER BY c.pair_id LIMIT 1", {"me": me, "start": start}))
        if row:
            return row[0]["pair_id"]
    return None


def label_of(db: Database, pair_id: int) -> int | None:
    """The expected label of control `pair_id`, or None when the pair is not a control."""
    rows = list(db.query("SELECT label FROM controls WHERE pair_id = ?", [pair_id]))
    return rows[0]["label"] if rows else None


def due(db: Database, me: int) -> int:
    """Qualification controls annotator id `me` will still be served (0 when not qualifying)."""
    s = settings(db)
    if not qualifying(db, me, s["qualify_first"]):
        return 0
    answered = next(db.query("SELECT count(*) AS n FROM control_answers WHERE annotator_id = ?", [me]))["n"]
    left = next(db.query(f"SELECT count(*) AS n FROM controls c WHERE {_AVAILABLE}", {"me": me}))["n"]
    return min(s["qualify_first"] - answered, left)


def rate_allowance(db: Database, me: int, regular_pairs: int) -> int:
    """Rate-served controls still counted as work left for annotator id `me` (negative once they had more than
    expected): K − A.

    K = min(controls, round(E · r / (1 − r))), with E = min(regular_pairs, 2 · regular_pairs / team) a person's
    expected share of the ratings, comes from project constants only (pairs, team size, rate), and A counts this
    person's rate-served control answers. So "left in my queue" drops by one for a control answered as for a pair
    rated: the counter cannot tell them apart.
    """
    s = settings(db)
    rate = min(s["rate"], MAX_RATE)
    # Answers given before a person's first rating (their qualification, capped at N) are counted by due().
    row = next(db.query(
        """SELECT (SELECT count(*) FROM controls) AS controls, (SELECT count(*) FROM annotators) AS team,
                  (SELECT count(*) FROM control_answers WHERE annotator_id = :me) AS answered,
                  (SELECT count(*) FROM control_answers WHERE annotator_id = :me AND created_at < coalesce(
                      (SELECT min(created_at) FROM ratings WHERE annotator_id = :me), '9')) AS before_rating""",
        {"me": me}))
    share = min(regular_pairs, 2 * regular_pairs / max(2, row["team"]))
    expected = min(row["controls"], round(share * rate / (1 - rate))) if rate > 0 else 0
    served = row["answered"] - min(row["before_rating"], max(0, s["qualify_first"]))
    return expected - served


def open_controls(db: Database) -> int:
    """Controls that sit in the annotation queue with fewer than two ratings: never served as regular pairs, so
    never work left (``progress`` leaves them out of the queue's totals)."""
    return queued_controls(db)[0]


def queued_controls(db: Database, me: int | None = None) -> tuple[int, int]:
    """(open controls (:func:`open_controls`), of those the ones with one rating, by annotator id `me`): what the
    queue's counters count as work that is not. One pass over the controls (a few hundred primary-key reads)."""
    # CROSS JOIN: SQLite keeps the controls as the outer loop (a plain JOIN may scan a million pairs)
    row = next(db.query(
        """SELECT coalesce(sum(p.ratings_n < 2), 0) AS open,
                  coalesce(sum(CASE WHEN p.ratings_n = 1 AND :me IS NOT NULL THEN EXISTS (
                      SELECT 1 FROM ratings r WHERE r.pair_id = c.pair_id AND r.annotator_id = :me) END), 0) AS mine
           FROM controls c CROSS JOIN pairs p ON p.id = c.pair_id WHERE p.in_queue = 1""", {"me": me}))
    return row["open"], row["mine"]


# -- what admins see ----------------------------------------------------------------------------------------------

def qualification(db: Database) -> list[dict]:
    """Each person's qualification, for the admins: their first ``controls.qualify_first`` control answers.

    One dict per person with a control answer: ``name``, ``answered`` (of the first N), ``correct``, ``accuracy``
    (None before any answer), ``status``: ``passed`` / ``failed`` once N are answered (pass mark reached or not),
    ``pending`` before. Empty when qualification is off. Failing blocks nobody; it is shown here and in the report.
    """
    s = settings(db)
    first = s["qualify_first"]
    if first <= 0:
        return []
    people: dict[str, dict] = {}
    for row in db.query(
            """SELECT a.name, x.rating = x.expected AS ok FROM control_answers x
               JOIN annotators a ON a.id = x.annotator_id ORDER BY a.name, x.created_at, x.id"""):
        person = people.setdefault(row["name"], {"name": row["name"], "answered": 0, "correct": 0})
        if person["answered"] < first:
            person["answered"] += 1
            person["correct"] += row["ok"]
    for person in people.values():
        person["accuracy"] = round(person["correct"] / person["answered"], 4) if person["answered"] else None
        person["status"] = ("pending" if person["answered"] < first else
                            "passed" if person["correct"] / first >= s["pass_mark"] - 1e-9 else "failed")
    return list(people.values())


def status(db: Database) -> dict:
    """Everything about the controls: how many by expected label and origin, the settings, answers so far (how
    many, correct, people) and each person's qualification (:func:`qualification`)."""
    by_label = {str(label): 0 for label in (0, 1, 2)}
    for row in db.query("SELECT label, count(*) AS n FROM controls GROUP BY label"):
        by_label[str(row["label"])] = row["n"]
    by_origin = {r["origin"]: r["n"] for r in db.query(
        "SELECT origin, count(*) AS n FROM controls GROUP BY origin ORDER BY origin")}
    answers = next(db.query("SELECT count(*) AS n, coalesce(sum(rating = expected), 0) AS correct, "
                            "count(DISTINCT annotator_id) AS people FROM control_answers"))
    holds = next(db.query("SELECT count(*) AS n FROM control_holds"))["n"]
    return {"controls": sum(by_label.values()), "by_label": by_label, "by_origin": by_origin, **settings(db),
            "answers": answers["n"], "correct": answers["correct"], "people": answers["people"], "held_now": holds,
            "accuracy": round(answers["correct"] / answers["n"], 4) if answers["n"] else None,
            "qualification": qualification(db)}
