"""Agreement and adjudication: kappa per annotator pair, the disagreements, expert decisions and the audit log.

Everything here shows who rated what, pair by pair, so it needs an expert: an annotator never sees another's
rating through any of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.actions.base import Actor, Project, action
from studio.agreement import AgreementReport, agreement_report
from studio.store import adjudication as store_adjudication
from studio.store.audit import history


@dataclass(frozen=True)
class Agreement:
    """The agreement report with its disagreements (decided ones included)."""

    report: AgreementReport
    disagreements: list[dict]


@action("expert", cli="agreement")
def agreement(project: Project, actor: Actor, *, existing: bool = False) -> Agreement:
    """Cohen's kappa (unweighted, linear, quadratic), AC1 and the gate per annotator pair and pooled."""
    with project.db(existing=existing) as db:
        return Agreement(agreement_report(store_adjudication.rating_rows(db)),
                         store_adjudication.disagreements(db, include_decided=True))


@action("expert", cli="gold")
def gold_counts(project: Project, actor: Actor, *, existing: bool = False) -> dict:
    """Gold labels by label and origin (agreed, adjudicated, imported), and pairs still without one."""
    with project.db(existing=existing) as db:
        return store_adjudication.gold_counts(db)


_CASE_VIEW = "the case-by-case view of ④ (the CLI lists disagreements with `studio agreement --json`)"
Annotators = tuple[str, str] | None


@dataclass(frozen=True)
class Cases:
    """What ④ shows: the open cases in the actor's order, the decided ones (newest first, to change), and every
    annotator pair that has a case (the filter's choices)."""

    open: list[dict]
    decided: list[dict]
    annotator_pairs: list[tuple[str, str]]


@action("expert", why_no_cli=_CASE_VIEW)
def open_cases(project: Project, actor: Actor, *, annotators: Annotators = None, query: str | None = None
               ) -> list[dict]:
    """Undecided disagreements and open second looks, widest first, the actor's skipped ones last; only those two
    `annotators` rated, or whose query contains `query`, when given."""
    with project.db() as db:
        return store_adjudication.open_cases(db, actor.name, annotators=annotators, query=query)


@action("expert", why_no_cli=_CASE_VIEW)
def cases(project: Project, actor: Actor, *, annotators: Annotators = None, query: str | None = None) -> Cases:
    """The open cases (as :func:`open_cases`) and the decided ones under the same filters, with the filter's
    choices."""
    with project.db() as db:
        return Cases(store_adjudication.open_cases(db, actor.name, annotators=annotators, query=query),
                     store_adjudication.decided_cases(db, annotators=annotators, query=query),
                     store_adjudication.annotator_pairs(db))


@action("expert", why_no_cli=_CASE_VIEW)
def case(project: Project, actor: Actor, pair_id: int) -> dict:
    """One case, open or decided, with both ratings, notes, names and the decision (to look at again or change)."""
    with project.db() as db:
        return store_adjudication.get_case(db, int(pair_id))


@action("expert", cli="adjudicate")
def adjudicate(project: Project, actor: Actor, pair_id: int, label: int, note: str = "") -> dict:
    """Set the final label of a case as the actor — a disagreement, a second look, or a change of a decision
    (audited: who, when, before, after)."""
    with project.db() as db:
        return store_adjudication.adjudicate(db, actor.name, int(pair_id), int(label), note or "")


@action("expert", why_no_cli=_CASE_VIEW)
def skip(project: Project, actor: Actor, pair_id: int) -> None:
    """Pass on an open case for now: it goes to the end of the actor's list (audited)."""
    with project.db() as db:
        store_adjudication.skip_case(db, actor.name, int(pair_id))


@action("expert", why_no_cli="④'s `u` key; from the CLI, `studio adjudicate PAIR LABEL` sets a decision again")
def undo(project: Project, actor: Actor) -> dict:
    """Take back the actor's last decision still in effect (audited): the case opens again, or the earlier
    decision comes back when it was a change."""
    with project.db() as db:
        return store_adjudication.undo_decision(db, actor.name)


@action("expert", cli="audit")
def audit_log(project: Project, actor: Actor, *, entity: str | None = "pair", limit: int = 100,
              existing: bool = False) -> list[dict]:
    """Newest-first audit entries (rating changes, decisions, refusals…)."""
    with project.db(existing=existing) as db:
        return history(db, entity=entity, limit=limit)
