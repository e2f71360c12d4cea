"""What the annotator report reads: per-person counts, times, control answers, gold comparisons, shared pairs and
model raters' judgments — all as grouped queries, so the work done in Python is per person (or per person and label),
never per pair. :mod:`studio.raters.report` turns them into the report.

Which labels a rating is measured against ("expected"):

- a control answer: the label the control expected when it was served (``control_answers.expected``);
- a rating of a pair an expert *other than the rater* adjudicated: the expert's label (origin ``adjudicated``);
- otherwise a rating of a pair that came with a reference label (BEIR qrels …): that label (origin ``reference``),
  even after people rated the pair — it came with the data, not from them.

A pair whose gold is *agreed* is never used: its gold is the rater's own rating (both raters gave it), so it would
count as right every time and pull leniency towards 0. A pair the rater adjudicated themselves is skipped for the same
reason. A rating of a pair the rater also answered as a control counts once, as the control answer.

**As of a moment** (``until``): the report as it stood then — what an annotator is shown of their own line, as of the
start of the current UTC day, so that refreshing it after each pair never tells a control from a regular pair. Every
table is read as of that moment, for everyone (the team's median and label shares too, which an annotator's line is
compared with): ratings, skips, control answers, model judgments and expert decisions made before it; a rating or
control answer changed since counts with its value then (the ``before`` of its first change after the moment, from
the audit log), a decision changed or undone since as the one in force then (likewise). Times keep their current
value (a re-rating may have re-timed a pair; ratings and control answers are timed alike, so that tells nothing).
An item made before the moment and *undone* since is put back from its undo's audit entry (which keeps when it was
made and its time), so undoing an old item tells nothing either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlite_utils import Database

from studio.errors import StudioError
from studio.store.queue import get_setting

DEFAULT_MIN_ACCURACY = 0.7
DEFAULT_PASS_MARK = 0.8
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")  # as the store writes them

# The tables the report reads, under the names the queries use: as they are now ...
_LIVE = """rated AS (SELECT id, pair_id, annotator_id, rating, seconds, created_at FROM ratings),
answered AS (SELECT id, pair_id, annotator_id, rating, expected, seconds, created_at FROM control_answers),
skipped AS (SELECT pair_id, annotator_id FROM skips),
decided AS (SELECT pair_id, label, expert_id FROM adjudications),
model_judged AS (SELECT rater_id, pair_id, label FROM judgments),
golden AS (SELECT pair_id, label FROM gold)"""

# ... or as they stood at :until (see the module docstring). A row's value then is the `before` of its first audited
# change at or after :until; `golden` repeats the rules of the `gold` view (schema m001) over those tables.
_AS_OF = """rated AS (
    SELECT r.id, r.pair_id, r.annotator_id, r.seconds, r.created_at,
           CASE WHEN r.updated_at >= :until THEN coalesce((
               SELECT json_extract(l.before, '$.rating') FROM audit_log l
               WHERE l.entity = 'pair' AND l.entity_id = r.pair_id AND l.action = 'rating.update' AND l.at >= :until
                 AND l.actor = (SELECT name FROM annotators WHERE id = r.annotator_id)
               ORDER BY l.id LIMIT 1), r.rating) ELSE r.rating END AS rating
    FROM ratings r WHERE r.created_at < :until
    UNION ALL  -- made before :until and undone since: as it stood then (its value then: an update before the undo)
    SELECT -l.id, l.entity_id, a.id, json_extract(l.before, '$.seconds'), json_extract(l.before, '$.created_at'),
           coalesce((SELECT json_extract(u.before, '$.rating') FROM audit_log u
                     WHERE u.entity = 'pair' AND u.entity_id = l.entity_id AND u.action = 'rating.update'
                       AND u.at >= :until AND u.actor = l.actor AND u.id < l.id ORDER BY u.id LIMIT 1),
                    json_extract(l.before, '$.rating'))
    FROM audit_log l JOIN annotators a ON a.name = l.actor
    WHERE l.entity = 'pair' AND l.action = 'rating.undo' AND l.at >= :until
      AND json_extract(l.before, '$.created_at') < :until),
answered AS (
    SELECT c.id, c.pair_id, c.annotator_id, c.expected, c.seconds, c.created_at,
           CASE WHEN c.updated_at >= :until THEN coalesce((
               SELECT json_extract(l.before, '$.rating') FROM audit_log l
               WHERE l.entity = 'control' AND l.entity_id = c.pair_id AND l.action = 'control.update'
                 AND l.at >= :until AND l.actor = (SELECT name FROM annotators WHERE id = c.annotator_id)
               ORDER BY l.id LIMIT 1), c.rating) ELSE c.rating END AS rating
    FROM control_answers c WHERE c.created_at < :until
    UNION ALL  -- likewise for a control answer undone since
    SELECT -l.id, l.entity_id, a.id, json_extract(l.before, '$.expected'), json_extract(l.before, '$.seconds'),
           json_extract(l.before, '$.created_at'),
           coalesce((SELECT json_extract(u.before, '$.rating') FROM audit_log u
                     WHERE u.entity = 'control' AND u.entity_id = l.entity_id AND u.action = 'control.update'
                       AND u.at >= :until AND u.actor = l.actor AND u.id < l.id ORDER BY u.id LIMIT 1),
                    json_extract(l.before, '$.rating'))
    FROM audit_log l JOIN annotators a ON a.name = l.actor
    WHERE l.entity = 'control' AND l.action = 'control.undo' AND l.at >= :until
      AND json_extract(l.before, '$.created_at') < :until),
skipped AS (SELECT pair_id, annotator_id FROM skips WHERE created_at < :until),
decided AS (
    SELECT pair_id, label, expert_id FROM adjudications WHERE created_at < :until
    UNION ALL
    SELECT l.entity_id, json_extract(l.before, '$.label'),
           (SELECT id FROM annotators WHERE name = json_extract(l.before, '$.expert'))
    FROM audit_log l
    WHERE l.id IN (SELECT min(id) FROM audit_log WHERE entity = 'pair' AND at >= :until
                   AND action IN ('adjudicate', 'adjudicate.undo') GROUP BY entity_id)
      AND json_extract(l.before, '$.label') IS NOT NULL),
model_judged AS (SELECT rater_id, pair_id, label FROM judgments WHERE created_at < :until),
counted AS (SELECT pair_id, count(*) AS n, min(rating) AS lo, max(rating) AS hi FROM rated GROUP BY pair_id),
golden AS (
    SELECT p.id AS pair_id,
           CASE WHEN d.label IS NOT NULL THEN d.label
                WHEN c.n = 2 AND c.lo = c.hi THEN c.lo
                WHEN coalesce(c.n, 0) = 0 THEN p.reference_label END AS label
    FROM pairs p LEFT JOIN counted c ON c.pair_id = p.id LEFT JOIN decided d ON d.pair_id = p.id)"""

# The label a rating is measured against (see the module docstring); NULL when there is none. Aliases: r = rated,
# p = pairs, a = decided (LEFT JOIN).
_EXPECTED = """CASE
    WHEN EXISTS (SELECT 1 FROM answered c WHERE c.pair_id = r.pair_id AND c.annotator_id = r.annotator_id)
        THEN NULL
    WHEN a.pair_id IS NOT NULL THEN CASE WHEN a.expert_id != r.annotator_id THEN a.label END
    ELSE p.reference_label
END"""

# Every rating and control answer, with its time, label, expected label and when it was made (`at`; with `control`
# and `id`, the person's own order: the order they first did them in, which later changes do not reorder).
_ITEMS = f"""items AS (
    SELECT r.annotator_id, r.id, r.seconds, r.rating, {_EXPECTED} AS expected, 0 AS control, r.created_at AS at
    FROM rated r JOIN pairs p ON p.id = r.pair_id LEFT JOIN decided a ON a.pair_id = r.pair_id
    UNION ALL
    SELECT c.annotator_id, c.id, c.seconds, c.rating, c.expected, 1 AS control, c.created_at AS at
    FROM answered c)"""

# The median of `seconds` per group, in SQL: the middle row (odd count) or the mean of the two middle rows (even).
_MEDIAN = """SELECT {keys}, count(*) AS timed, avg(CASE WHEN k IN ((m + 1) / 2, (m + 2) / 2) THEN seconds END) AS median
    FROM (SELECT {keys}, seconds, row_number() OVER (PARTITION BY {keys} ORDER BY seconds) AS k,
                 count(*) OVER (PARTITION BY {keys}) AS m
          FROM {source} WHERE seconds IS NOT NULL)
    GROUP BY {keys}"""


@dataclass
class Settings:
    """The report's thresholds, as an admin set them (table ``settings``)."""

    min_accuracy: float = DEFAULT_MIN_ACCURACY   # controls.min_accuracy: below it (with enough answers) is flagged
    qualify_first: int = 0                       # controls.qualify_first: a new person's first N pairs are controls
    pass_mark: float = DEFAULT_PASS_MARK         # controls.pass_mark: accuracy needed to pass those


@dataclass
class RaterStats:
    """Everything the annotator report needs, read in one snapshot (as of :attr:`until`, when set). Keys are annotator
    ids / model rater ids; confusion-style rows carry a count ``n``."""

    people: list[dict]                       # id, name, role, removed (0/1)
    labels: dict[int, dict[int, int]]        # annotator → label → ratings
    skips: dict[int, int]                    # annotator → skips
    times: dict[int, tuple[int, float]]      # annotator → (timed ratings + answers, median seconds)
    judged: list[dict]                       # annotator_id, control (0/1), rating, expected, n
    shared: list[dict]                       # a, b (a < b), rating_a, rating_b, n: pairs both rated
    qualification: dict[int, tuple[int, int]]  # annotator → (answered of the first N controls, right)
    models: list[dict]                       # id, name, kind
    model_labels: dict[int, dict[int, int]]  # model rater → label → judgments
    model_vs_people: list[dict]              # rater_id, annotator_id, label, rating, n
    model_vs_gold: list[dict]                # rater_id, label, expected, n
    drift: list[dict]                        # annotator_id, block, items, started_at, ended_at, median_seconds,
                                             # control_answers, control_right, judged, lean_sum
    settings: Settings = field(default_factory=Settings)
    block: int = 25
    until: str | None = None                 # read as of this moment (None: as now)


def _number(db: Database, key: str, default: float, *, integer: bool = False, upper: float | None = None) -> float:
    """A numeric setting; a value that is not a number in range is refused, naming the setting."""
    raw = get_setting(db, key)
    if raw is None or not str(raw).strip():
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise StudioError("raters_bad_setting", key=key, value=raw) from None
    if value < 0 or (upper is not None and value > upper):
        raise StudioError("raters_bad_setting", key=key, value=raw)
    return value


def read_settings(db: Database) -> Settings:
    """``controls.min_accuracy`` (default 0.7), ``controls.qualify_first`` (0: off), ``controls.pass_mark`` (0.8).

    Raises:
        StudioError: ``raters_bad_setting`` when a stored value is not a number in range.
    """
    return Settings(min_accuracy=_number(db, "controls.min_accuracy", DEFAULT_MIN_ACCURACY, upper=1),
                    qualify_first=int(_number(db, "controls.qualify_first", 0, integer=True)),
                    pass_mark=_number(db, "controls.pass_mark", DEFAULT_PASS_MARK, upper=1))


def _nested(rows, outer: str, inner: str) -> dict[int, dict[int, int]]:
    out: dict[int, dict[int, int]] = {}
    for row in rows:
        out.setdefault(row[outer], {})[row[inner]] = row["n"]
    return out


def start_of_utc_day(now: datetime | None = None) -> str:
    """The start of `now`'s UTC day (default: today's), as the store writes timestamps (``…T00:00:00.000Z``)."""
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT00:00:00.000Z")


def read_stats(db: Database, *, block: int = 25, until: str | None = None) -> RaterStats:
    """Read everything the annotator report needs, in one read transaction (a consistent snapshot).

    Args:
        block: items (ratings and control answers, in the person's own order) per point of the drift chart.
        until: a moment as the store writes timestamps (``2026-08-14T00:00:00.000Z``, see
            :func:`start_of_utc_day`): read every table as it stood then (see the module docstring); None: as now.

    Raises:
        StudioError: ``raters_bad_setting`` (a stored threshold is not a number), ``raters_bad_block`` (block < 1),
            ``raters_bad_until`` (`until` is not such a timestamp).
    """
    if block < 1:
        raise StudioError("raters_bad_block", block=block)
    if until is not None and not _TIMESTAMP.fullmatch(until):
        raise StudioError("raters_bad_until", until=until)
    tables = "WITH " + (_LIVE if until is None else _AS_OF)
    args = {"until": until, "block": block}
    with db.atomic():
        settings = read_settings(db)
        people = list(db.query("SELECT id, name, role, removed_at IS NOT NULL AS removed FROM annotators "
                               "ORDER BY name"))
        labels = _nested(db.query(f"{tables} SELECT annotator_id, rating, count(*) AS n FROM rated "
                                  "GROUP BY annotator_id, rating", args), "annotator_id", "rating")
        skips = {r["annotator_id"]: r["n"] for r in db.query(
            f"{tables} SELECT annotator_id, count(*) AS n FROM skipped GROUP BY annotator_id", args)}
        times = {r["annotator_id"]: (r["timed"], r["median"]) for r in db.query(
            f"{tables}, {_ITEMS} " + _MEDIAN.format(keys="annotator_id", source="items"), args)}
        judged = list(db.query(
            f"""{tables}, {_ITEMS} SELECT annotator_id, control, rating, expected, count(*) AS n FROM items
                WHERE expected IS NOT NULL GROUP BY annotator_id, control, rating, expected""", args))
        shared = list(db.query(
            f"""{tables} SELECT r1.annotator_id AS a, r2.annotator_id AS b, r1.rating AS rating_a,
                       r2.rating AS rating_b, count(*) AS n
                FROM rated r1 JOIN rated r2 ON r2.pair_id = r1.pair_id AND r2.annotator_id > r1.annotator_id
                GROUP BY r1.annotator_id, r2.annotator_id, r1.rating, r2.rating""", args))
        qualification: dict[int, tuple[int, int]] = {}
        if settings.qualify_first > 0:
            qualification = {r["annotator_id"]: (r["answered"], r["correct"]) for r in db.query(
                f"""{tables} SELECT annotator_id, count(*) AS answered, sum(rating = expected) AS correct FROM (
                       SELECT annotator_id, rating, expected,
                              row_number() OVER (PARTITION BY annotator_id ORDER BY id) AS k
                       FROM answered)
                   WHERE k <= :first GROUP BY annotator_id""", {**args, "first": settings.qualify_first})}
        models = list(db.query("SELECT id, name, kind FROM model_raters ORDER BY name"))
        model_labels = _nested(db.query(f"{tables} SELECT rater_id, label, count(*) AS n FROM model_judged "
                                        "GROUP BY rater_id, label", args), "rater_id", "label")
        model_vs_people = list(db.query(
            f"""{tables} SELECT j.rater_id, r.annotator_id, j.label, r.rating, count(*) AS n
                FROM model_judged j JOIN rated r ON r.pair_id = j.pair_id
                GROUP BY j.rater_id, r.annotator_id, j.label, r.rating""", args))
        model_vs_gold = list(db.query(
            f"""{tables} SELECT j.rater_id, j.label, g.label AS expected, count(*) AS n
                FROM model_judged j JOIN golden g ON g.pair_id = j.pair_id WHERE g.label IS NOT NULL
                GROUP BY j.rater_id, j.label, g.label""", args))
        drift = list(db.query(
            f"""{tables}, {_ITEMS},
                numbered AS (SELECT *, (row_number() OVER (PARTITION BY annotator_id ORDER BY at, control, id) - 1)
                                       / :block AS block FROM items),
                medians AS ({_MEDIAN.format(keys="annotator_id, block", source="numbered")})
                SELECT n.annotator_id, n.block, count(*) AS items, min(n.at) AS started_at, max(n.at) AS ended_at,
                       md.median AS median_seconds, sum(n.control) AS control_answers,
                       coalesce(sum(n.control AND n.rating = n.expected), 0) AS control_right,
                       count(n.expected) AS judged, sum(n.rating - n.expected) AS lean_sum
                FROM numbered n LEFT JOIN medians md ON md.annotator_id = n.annotator_id AND md.block = n.block
                GROUP BY n.annotator_id, n.block ORDER BY n.annotator_id, n.block""", args))
    return RaterStats(people=people, labels=labels, skips=skips, times=times, judged=judged, shared=shared,
                      qualification=qualification, models=models, model_labels=model_labels,
                      model_vs_people=model_vs_people, model_vs_gold=model_vs_gold, drift=drift,
                      settings=settings, block=block, until=until)
