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


@action("expert", why_no_cli="the case-by-case view of ④ (the CLI lists them with `studio agreement --json`)")
def open_cases(project: Project, actor: Actor) -> list[dict]:
    """Undecided disagreements, widest first, with both ratings, notes and names."""
    with project.db() as db:
        return store_adjudication.disagreements(db)


@action("expert", cli="adjudicate")
def adjudicate(project: Project, actor: Actor, pair_id: int, label: int, note: str = "") -> dict:
    """Set the final label of a disagreeing pair as the actor (audited: who, when, before, after)."""
    with project.db() as db:
        return store_adjudication.adjudicate(db, actor.name, int(pair_id), int(label), note or "")


@action("expert", cli="audit")
def audit_log(project: Project, actor: Actor, *, entity: str | None = "pair", limit: int = 100,
              existing: bool = False) -> list[dict]:
    """Newest-first audit entries (rating changes, decisions, refusals…)."""
    with project.db(existing=existing) as db:
        return history(db, entity=entity, limit=limit)
