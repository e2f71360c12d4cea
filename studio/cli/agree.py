"""CLI verbs: agreement, gold."""

from __future__ import annotations


import click

from studio.cli.base import Context, cli, emit, friendly, json_option, pad

@cli.command()
@json_option
@click.pass_obj
@friendly
def agreement(ctx: Context, as_json: bool) -> None:
    """Cohen's kappa (unweighted, linear, quadratic), AC1 and the 0.6 gate, per annotator pair and pooled."""
    from dataclasses import asdict

    from studio.agreement import agreement_report
    from studio.i18n import t
    from studio.store.adjudication import rating_rows

    report = agreement_report(rating_rows(ctx.open(existing=True)))
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
    from studio.store.adjudication import gold_counts

    c = gold_counts(ctx.open(existing=True))
    emit(c, as_json, (
        f"{c['total']} gold labels over {c['queries']} queries: "
        f"{c['by_label']['2']} relevant, {c['by_label']['1']} partial, {c['by_label']['0']} irrelevant "
        f"({c['by_origin']['agreed']} agreed, {c['by_origin']['adjudicated']} adjudicated, "
        f"{c['by_origin']['reference']} from imported labels); {c['pending']} pairs still without a gold label"))
