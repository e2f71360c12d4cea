"""The annotator report: per person ratings, skips, time per pair, control accuracy, κ against the others and gold,
leniency, label shares, drift and flags (:mod:`studio.raters.report`); model raters beside the people.

An annotator may read it, but only their own line and drift, and only **up to yesterday**: as of the start of the
current UTC day (:func:`studio.store.rater_stats.start_of_utc_day`). A live line would give controls away — answer a
pair, refresh, and a change in control answers (or in ratings against control answers, accuracy, drift) says it was
a control — so today's work shows tomorrow, mixed with the rest of the day's. Another person's figures, and the model
raters (whose κ against each person would show theirs), are for experts and admins, who see everything live.
"""

from __future__ import annotations

from studio.actions.base import Actor, Project, action
from studio.errors import StudioError
from studio.raters.charts import drift_figure  # noqa: F401  (③ draws the drift chart through this)
# FLAGS (the UI's legend) and as_of_label (the lag, in words) are for ③ and the CLI
from studio.raters.report import FLAGS, AnnotatorReport, as_of_label, build_report  # noqa: F401
from studio.store.rater_stats import read_stats, start_of_utc_day


@action("annotator", cli="annotators report")
def annotator_report(project: Project, actor: Actor, *, block: int = 25, existing: bool = False,
                     seen_by: str | None = None) -> AnnotatorReport:
    """The annotator report (``.to_json()`` is what ``studio annotators report --json`` prints).

    Args:
        block: ratings/control answers per point of the drift chart.
        existing: refuse a database file that is not there (the CLI).
        seen_by: an expert or admin asks for what this annotator is shown (their line, as of the start of today);
            an annotator may name only themselves.

    Returns:
        Every person and model rater, live, for an expert or admin; an annotator's own line (and drift) alone, as of
        the start of the current UTC day (``as_of``).

    Raises:
        StudioError: ``raters_own_view_only`` when an annotator asks for someone else's view.
    """
    viewer = seen_by.strip() if seen_by and seen_by.strip() else None
    if not actor.can("expert"):
        if viewer is not None and viewer != actor.name:
            raise StudioError("raters_own_view_only", name=viewer)
        viewer = actor.name
    until = None if viewer is None else start_of_utc_day()
    with project.db(existing=existing) as db:
        stats = read_stats(db, block=block, until=until)
    return build_report(stats, only=viewer)
