"""The annotator report: per person (and per model rater) how much, how fast, how right, which way they lean, how
well they agree with each other — and flags a team lead acts on. Pure computation over
:class:`studio.store.rater_stats.RaterStats` (read there with grouped queries).

Definitions (``n`` is always stated beside a figure):

- **control accuracy**: the share of a person's control answers equal to the control's expected label, with a 95 %
  Wilson score interval.
- **κ vs others**: Cohen's κ, unweighted (:func:`studio.agreement.cohen_kappa`, equal to scikit-learn's), against each
  person they share rated pairs with; a model rater's line has it against each person on the pairs both judged.
- **κ vs gold** and **leniency**: over the person's control answers and the gold pairs they rated whose gold does not
  come from their own rating (see :mod:`studio.store.rater_stats`); leniency = mean(rating − expected label), so
  positive is lenient, negative strict. A model rater is measured against every gold label of the pairs it judged.
- **label share**: a person's share of 0/1/2 among their ratings, beside the team's (every person's ratings pooled).

Flags (:data:`FLAGS`): ``low_control_accuracy`` (accuracy below ``controls.min_accuracy`` with at least
:data:`MIN_ITEMS` control answers), ``fast`` (median seconds per pair under a third of the team's median of medians;
only people with at least :data:`MIN_ITEMS` timed ratings/answers count, on both sides), ``lenient`` / ``strict``
(\\|leniency\\| ≥ :data:`LEAN` over at least :data:`MIN_ITEMS` items) and ``failed_qualification`` (the first
``controls.qualify_first`` control answers scored below ``controls.pass_mark``). Model raters get only ``lenient`` /
``strict``: they have no times, no controls and no qualification.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from statistics import median

from studio.agreement import LABELS, cohen_kappa
from studio.store.rater_stats import RaterStats, Settings

MIN_ITEMS = 10        # answers / timed items / judged items a flag needs
FAST_SHARE = 1 / 3    # `fast`: median seconds under this share of the team's
LEAN = 0.3            # `lenient` / `strict`: |leniency| at least this
Z95 = 1.959963984540054
FLAGS = ("low_control_accuracy", "fast", "lenient", "strict", "failed_qualification")


def wilson_interval(right: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion ``right / n``: ``(c ± h) / (1 + z²/n)`` with
    ``c = p + z²/2n`` and ``h = z·sqrt(p(1 − p)/n + z²/4n²)``; None for n = 0."""
    if n <= 0:
        return None
    p = right / n
    denominator = 1 + z * z / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - half) / denominator), min(1.0, (centre + half) / denominator)


def as_of_label(as_of: str) -> str:
    """A report's ``as_of`` for people: ``2026-08-14T00:00:00.000Z`` → ``2026-08-14 00:00 UTC``."""
    return f"{as_of[:10]} {as_of[11:16]} UTC"


def kappa_from_counts(cells: dict[tuple[int, int], int]) -> dict:
    """``{"kappa", "n"}`` from counts of (label a, label b): unweighted Cohen's κ of the sequences the counts stand
    for (None when undefined, e.g. both used one label)."""
    a: list[int] = []
    b: list[int] = []
    for (x, y), n in sorted(cells.items()):
        a += [x] * n
        b += [y] * n
    return {"kappa": cohen_kappa(a, b), "n": len(a)}


def _shares(counts: dict[int, int]) -> dict[str, float] | None:
    total = sum(counts.values())
    return {str(label): counts.get(label, 0) / total for label in LABELS} if total else None


def _lean(cells: dict[tuple[int, int], int]) -> tuple[float | None, int]:
    n = sum(cells.values())
    return (sum((x - y) * k for (x, y), k in cells.items()) / n if n else None), n


@dataclass
class AnnotatorLine:
    """One row of the report: a person (``kind="person"``) or a model rater (``kind="model"``)."""

    name: str
    kind: str = "person"
    role: str | None = None              # a person: their role; a model rater: its kind (model, reranker, llm …)
    ratings: int = 0                      # a model: its judgments
    skips: int = 0
    timed: int = 0                        # ratings and control answers with a time
    median_seconds: float | None = None
    control_answers: int = 0
    control_accuracy: float | None = None
    control_accuracy_ci: tuple[float, float] | None = None
    kappa_vs_others: dict[str, dict] = field(default_factory=dict)   # other name → {"kappa", "n"}
    kappa_vs_gold: dict = field(default_factory=lambda: {"kappa": None, "n": 0})
    leniency: float | None = None
    gold_items: int = 0                   # items leniency and κ vs gold are over
    label_share: dict[str, float] | None = None
    qualification: dict | None = None     # {first, answered, correct, accuracy, pass_mark, passed}
    flags: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        out = asdict(self)
        out["control_accuracy_ci"] = list(self.control_accuracy_ci) if self.control_accuracy_ci else None
        return out


@dataclass
class AnnotatorReport:
    """The lines (people by name, then model raters), the team's reference figures, the thresholds used, each
    person's drift (name → blocks of :attr:`block` items in their own order) and the moment it is as of (None: now;
    an annotator's own view lags, see :mod:`studio.store.rater_stats`)."""

    lines: list[AnnotatorLine]
    team: dict
    settings: Settings
    drift: dict[str, list[dict]]
    block: int
    as_of: str | None = None

    def to_json(self) -> dict:
        """``{"annotators": [...], "team": ..., "settings": ..., "block": ..., "drift": ..., "as_of": ...}``; each
        line has the issue's keys (name, ratings, median_seconds, control_answers, control_accuracy, leniency,
        kappa_vs_others, flags) and more. ``as_of`` is the moment every figure stands at (``…T00:00:00.000Z``, UTC),
        or None for a live report."""
        return {"annotators": [line.to_json() for line in self.lines], "team": self.team,
                "settings": asdict(self.settings), "block": self.block, "drift": self.drift, "as_of": self.as_of}


def _qualification(stats: RaterStats, person: int) -> dict | None:
    first = stats.settings.qualify_first
    if first <= 0:
        return None
    answered, right = stats.qualification.get(person, (0, 0))
    accuracy = right / answered if answered else None
    done = answered >= first
    return {"first": first, "answered": answered, "correct": right, "accuracy": accuracy,
            "pass_mark": stats.settings.pass_mark,
            "passed": (accuracy >= stats.settings.pass_mark) if done and accuracy is not None else None}


def _drift(stats: RaterStats, names: dict[int, str]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in stats.drift:
        name = names.get(row["annotator_id"])
        if name is None:
            continue
        controls, judged = row["control_answers"] or 0, row["judged"] or 0
        out.setdefault(name, []).append({
            "block": row["block"], "first_item": row["block"] * stats.block + 1,
            "last_item": row["block"] * stats.block + row["items"], "items": row["items"],
            "started_at": row["started_at"], "ended_at": row["ended_at"], "median_seconds": row["median_seconds"],
            "control_answers": controls, "control_accuracy": row["control_right"] / controls if controls else None,
            "judged": judged, "leniency": row["lean_sum"] / judged if judged else None})
    return out


def build_report(stats: RaterStats, *, only: str | None = None) -> AnnotatorReport:
    """The annotator report from `stats` (as of the moment they were read at, ``stats.until``).

    Args:
        only: a person's name: their line alone (made even when they have done nothing yet), their drift and no
            model raters — what an annotator may see. The team's figures (median, label shares) stay the whole team's.

    Returns:
        Every person with a rating, skip or control answer (sorted by name), then every model rater with a
        judgment; or `only`'s line (none when the name is not on the team).
    """
    settings = stats.settings
    names = {p["id"]: p["name"] for p in stats.people}

    controls: dict[int, dict[tuple[int, int], int]] = {}
    against_gold: dict[int, dict[tuple[int, int], int]] = {}
    for row in stats.judged:
        cell = (row["rating"], row["expected"])
        if row["control"]:
            controls.setdefault(row["annotator_id"], {})[cell] = row["n"]
        bucket = against_gold.setdefault(row["annotator_id"], {})
        bucket[cell] = bucket.get(cell, 0) + row["n"]
    shared: dict[int, dict[int, dict[tuple[int, int], int]]] = {}
    for row in stats.shared:
        shared.setdefault(row["a"], {}).setdefault(row["b"], {})[(row["rating_a"], row["rating_b"])] = row["n"]
        shared.setdefault(row["b"], {}).setdefault(row["a"], {})[(row["rating_b"], row["rating_a"])] = row["n"]

    # The team's reference figures: the median of the medians of everyone timed enough, and the pooled label shares.
    medians = [m for timed, m in stats.times.values() if timed >= MIN_ITEMS and m is not None]
    team_median = median(medians) if medians else None
    pooled: dict[int, int] = {}
    for counts in stats.labels.values():
        for label, n in counts.items():
            pooled[label] = pooled.get(label, 0) + n
    team = {"median_seconds": team_median, "fast_below": team_median * FAST_SHARE if team_median else None,
            "timed_people": len(medians), "label_share": _shares(pooled), "min_items": MIN_ITEMS, "lean": LEAN}

    lines: list[AnnotatorLine] = []
    for person in stats.people:
        pid, name = person["id"], person["name"]
        active = stats.labels.get(pid) or stats.skips.get(pid) or controls.get(pid) or stats.times.get(pid)
        if (only is None and not active) or (only is not None and name != only):
            continue
        line = AnnotatorLine(name=name, role=person["role"], ratings=sum(stats.labels.get(pid, {}).values()),
                             skips=stats.skips.get(pid, 0), label_share=_shares(stats.labels.get(pid, {})))
        line.timed, line.median_seconds = stats.times.get(pid, (0, None))
        answers = controls.get(pid, {})
        line.control_answers = sum(answers.values())
        right = sum(n for (x, y), n in answers.items() if x == y)
        line.control_accuracy = right / line.control_answers if line.control_answers else None
        line.control_accuracy_ci = wilson_interval(right, line.control_answers)
        line.kappa_vs_others = {names[other]: kappa_from_counts(cells)
                                for other, cells in sorted(shared.get(pid, {}).items(), key=lambda o: names[o[0]])}
        gold_cells = against_gold.get(pid, {})
        line.kappa_vs_gold = kappa_from_counts(gold_cells)
        line.leniency, line.gold_items = _lean(gold_cells)
        line.qualification = _qualification(stats, pid)

        if line.control_answers >= MIN_ITEMS and line.control_accuracy < settings.min_accuracy:
            line.flags.append("low_control_accuracy")
        if (team_median and line.timed >= MIN_ITEMS and line.median_seconds is not None
                and line.median_seconds < team_median * FAST_SHARE):
            line.flags.append("fast")
        line.flags += _lean_flags(line)
        if line.qualification and line.qualification["passed"] is False:
            line.flags.append("failed_qualification")
        lines.append(line)

    if only is None:
        lines += _model_lines(stats, names)
    drift = _drift(stats, names)
    if only is not None:
        drift = {only: drift[only]} if only in drift else {}
    return AnnotatorReport(lines=lines, team=team, settings=settings, drift=drift, block=stats.block,
                           as_of=stats.until)


def _lean_flags(line: AnnotatorLine) -> list[str]:
    if line.leniency is None or line.gold_items < MIN_ITEMS:
        return []
    if line.leniency >= LEAN:
        return ["lenient"]
    if line.leniency <= -LEAN:
        return ["strict"]
    return []


def _model_lines(stats: RaterStats, names: dict[int, str]) -> list[AnnotatorLine]:
    vs_people: dict[int, dict[int, dict[tuple[int, int], int]]] = {}
    for row in stats.model_vs_people:
        vs_people.setdefault(row["rater_id"], {}).setdefault(row["annotator_id"], {})[
            (row["label"], row["rating"])] = row["n"]
    vs_gold: dict[int, dict[tuple[int, int], int]] = {}
    for row in stats.model_vs_gold:
        vs_gold.setdefault(row["rater_id"], {})[(row["label"], row["expected"])] = row["n"]
    lines = []
    for model in stats.models:
        mid = model["id"]
        counts = stats.model_labels.get(mid, {})
        if not counts:
            continue
        line = AnnotatorLine(name=model["name"], kind="model", role=model["kind"], ratings=sum(counts.values()),
                             label_share=_shares(counts))
        line.kappa_vs_others = {names[p]: kappa_from_counts(cells)
                                for p, cells in sorted(vs_people.get(mid, {}).items(), key=lambda o: names[o[0]])}
        line.kappa_vs_gold = kappa_from_counts(vs_gold.get(mid, {}))
        line.leniency, line.gold_items = _lean(vs_gold.get(mid, {}))
        line.flags = _lean_flags(line)
        lines.append(line)
    return lines
