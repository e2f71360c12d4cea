"""CLI verbs: agreement, gold, adjudicate, audit."""

from __future__ import annotations

from dataclasses import asdict

import click

from studio.actions import Actor, agree
from studio.cli.base import Context, cli, emit, friendly, json_option, pad
from studio.i18n import t


@cli.command()
@json_option
@click.pass_obj
@friendly
def agreement(ctx: Context, as_json: bool) -> None:
    """Cohen's kappa (unweighted, linear, quadratic), AC1 and the 0.6 gate, per annotator pair and pooled."""
    result = agree.agreement(ctx.project, ctx.actor, existing=True)
    report = result.report
    if as_json:
        emit(asdict(report), True, "")
        return

    def fmt(x):
        return "undefined" if x is None else f"{x:.3f}"

    lines = [f"{'annotators':<44} {'n':>4} {'agree':>6} {'kappa':>9} {'linear':>9} {'quadr.':>9} {'AC1':>9}  band"]
    for s in [report.pooled, *report.by_pair]:
        name = "pooled (all double-rated pairs)" if s.annotators == ("*", "*") else " × ".join(s.annotators)
        lines.append(f"{pad(name, 44)} {s.n:>4} {fmt(s.observed):>6} {fmt(s.kappa):>9} {fmt(s.kappa_linear):>9} "
                     f"{fmt(s.kappa_quadratic):>9} {fmt(s.ac1):>9}  {t('band.' + s.band)}")
    gate = "PASSES" if report.pooled.passes_gate else "DOES NOT PASS"
    lines.append(f"\nGate (pooled kappa >= 0.6): {gate}. {len(report.disagreements)} disagreements, "
                 f"{report.double_rated} pairs double-rated, {report.single_rated} single-rated.")
    click.echo("\n".join(lines))


@cli.command()
@json_option
@click.pass_obj
@friendly
def gold(ctx: Context, as_json: bool) -> None:
    """Gold-label counts: agreed, adjudicated or imported with the data."""
    c = agree.gold_counts(ctx.project, ctx.actor, existing=True)
    emit(c, as_json, (
        f"{c['total']} gold labels over {c['queries']} queries: "
        f"{c['by_label']['2']} relevant, {c['by_label']['1']} partial, {c['by_label']['0']} irrelevant "
        f"({c['by_origin']['agreed']} agreed, {c['by_origin']['adjudicated']} adjudicated, "
        f"{c['by_origin']['reference']} from imported labels); {c['pending']} pairs still without a gold label"))


@cli.command()
@click.argument("pair_id", type=int)
@click.argument("label", type=click.IntRange(0, 2))
@click.option("--expert", required=True, help="The expert deciding (an expert or admin on the team).")
@click.option("--note", default="", help="Why: shown in the audit log.")
@click.pass_obj
@friendly
def adjudicate(ctx: Context, pair_id: int, label: int, expert: str, note: str) -> None:
    """Set the final label (0/1/2) of a pair the two annotators disagree on, as EXPERT (audited).

    \b
    Example:
        studio adjudicate 42 2 --expert dr-wang --note "answers the dosage question"
    """
    # At this machine the CLI is trusted (a local admin) to name the deciding expert; the store checks their role.
    decided = agree.adjudicate(ctx.project, Actor(expert, ctx.actor.role), pair_id, label, note)
    click.echo(f"pair {pair_id}: final label {decided['label']} by {decided['expert']}")


@cli.command()
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--all", "everything", is_flag=True, help="Every entry, not only those about pairs.")
@json_option
@click.pass_obj
@friendly
def audit(ctx: Context, limit: int, everything: bool, as_json: bool) -> None:
    """The audit log, newest first: who changed what, when, before and after (refusals included)."""
    rows = agree.audit_log(ctx.project, ctx.actor, entity=None if everything else "pair", limit=limit, existing=True)
    emit(rows, as_json, "\n".join(
        f"{r['at'][:19].replace('T', ' ')}  {pad(r['actor'], 16)} {r['action']:<18} {r['entity']} "
        f"{r['entity_id'] if r['entity_id'] is not None else ''}  {r['before'] or ''} -> {r['after'] or ''}"
        for r in rows) or "the audit log is empty")
