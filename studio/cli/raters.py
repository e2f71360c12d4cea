"""CLI verb: `studio annotators report` — each person's (and model rater's) speed, accuracy, bias and agreement."""

from __future__ import annotations

import click

from studio.actions import raters
from studio.cli.base import Context, emit, friendly, json_option, pad
from studio.cli.team import annotators

FLAG_MEANING = {
    "low_control_accuracy": "control accuracy below {min_accuracy:.0%} (at least {min_items} control answers)",
    "fast": "median seconds per pair under a third of the team's median (at least {min_items} timed pairs)",
    "lenient": "rates above the gold label on average by {lean} or more (at least {min_items} gold items)",
    "strict": "rates below the gold label on average by {lean} or more (at least {min_items} gold items)",
    "failed_qualification": "scored below the pass mark ({pass_mark:.0%}) on the first {qualify_first} controls",
}


def _num(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def _kappa(entry: dict) -> str:
    return f"{_num(entry['kappa'])} (n={entry['n']})"


def report_text(data: dict) -> str:
    """The report as a table for a terminal: one row per person / model rater, then κ against the others, the team's
    figures and what each raised flag means."""
    lines = [f"{'name':<28} {'kind':<7} {'ratings':>7} {'skips':>5} {'med s':>6} {'ctrl':>5} "
             f"{'accuracy [95% CI]':<20} {'κ gold':<14} {'lean':>6}  flags"]
    for a in data["annotators"]:
        ci = a["control_accuracy_ci"]
        accuracy = "—" if a["control_accuracy"] is None else \
            f"{a['control_accuracy']:.0%} [{ci[0]:.0%}–{ci[1]:.0%}]"
        lines.append(f"{pad(a['name'], 28)} {a['kind']:<7} {a['ratings']:>7} {a['skips']:>5} "
                     f"{_num(a['median_seconds'], '.1f'):>6} {a['control_answers']:>5} {accuracy:<20} "
                     f"{_kappa(a['kappa_vs_gold']):<14} {_num(a['leniency'], '+.2f'):>6}  "
                     f"{', '.join(a['flags']) or '-'}")
    if not data["annotators"]:
        lines.append("(nobody has rated, skipped or answered a control yet)")
    if data.get("as_of"):
        lines.append(f"\nUp to yesterday: as of {raters.as_of_label(data['as_of'])} (work since then shows tomorrow)")
    shared = [a for a in data["annotators"] if a["kappa_vs_others"]]
    if shared:
        lines.append("\nκ against the others (unweighted Cohen's κ on the pairs both rated):")
        for a in shared:
            others = ", ".join(f"{name} {_kappa(k)}" for name, k in a["kappa_vs_others"].items())
            lines.append(f"  {a['name']}: {others}")
    team, settings = data["team"], data["settings"]
    share = team["label_share"]
    pace = "no timed pairs yet" if team["median_seconds"] is None else \
        f"median of medians {team['median_seconds']:.1f} s per pair"
    lines.append(f"\nTeam: {pace}"
                 + ("" if share is None else
                    f"; labels 0/1/2 = {share['0']:.0%} / {share['1']:.0%} / {share['2']:.0%}"))
    raised = sorted({flag for a in data["annotators"] for flag in a["flags"]})
    params = {**settings, "min_items": team["min_items"], "lean": team["lean"]}
    for flag in raised:
        lines.append(f"  {flag}: {FLAG_MEANING[flag].format(**params)}")
    return "\n".join(lines)


@annotators.command(name="report")
@click.option("--block", type=click.IntRange(min=1), default=25, show_default=True,
              help="Ratings/control answers per point of the drift figures (in the JSON's `drift`).")
@click.option("--seen-by", metavar="NAME", default=None,
              help="What annotator NAME is shown: their own line, up to yesterday (as of 00:00 UTC today).")
@json_option
@click.pass_obj
@friendly
def annotators_report(ctx: Context, block: int, seen_by: str | None, as_json: bool) -> None:
    """Per person: ratings, skips, median seconds per pair, control accuracy (95% Wilson interval), κ against
    each other person and against gold, leniency (mean of rating − gold), label shares, drift and flags
    (low_control_accuracy, fast, lenient, strict, failed_qualification). Model raters are listed beside the people.

    An annotator sees only their own line, and only up to yesterday (so refreshing it never tells which pair was a
    control); --seen-by NAME prints that view, with `as_of` (the start of today, UTC) in the JSON.

    \b
    Example:
        studio annotators report
        studio annotators report --json > report.json
        studio annotators report --seen-by alice --json
    """
    data = raters.annotator_report(ctx.project, ctx.actor, block=block, existing=True, seen_by=seen_by).to_json()
    emit(data, as_json, report_text(data))
