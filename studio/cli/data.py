"""CLI verbs: quality, export triplets."""

from __future__ import annotations

from pathlib import Path

import click

from studio.actions import data
from studio.cli.base import Context, _Bar, cli, emit, friendly, json_option
from studio.errors import StudioError
from studio.i18n import t

@cli.command()
@click.option("--model", default=None, help="Model whose tokenizer and max length to check (default: the ★ model).")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), help="Also write the report as JSON.")
@json_option
@click.pass_obj
@friendly
def quality(ctx: Context, model: str | None, out_file: Path | None, as_json: bool) -> None:
    """Quality report of the gold labels: counts, duplicates, positive/negative similarity, lengths, warnings.

    \b
    Example:
        studio quality --json > quality.json
    """
    ctx.require_db()
    with _Bar("quality") as bar:
        report = data.quality(ctx.project, ctx.actor, model, bar, out_path=out_file, existing=True).report
    if as_json:
        emit(report.as_dict(), True, "")
        return
    c = report.counts
    sim = "n/a" if report.similarity_mean is None else f"{report.similarity_mean:.3f} (max {report.similarity_max:.3f})"
    lines = [
        f"{c['queries']} queries, {c['labelled_pairs']} labelled pairs: {c['positives']} relevant, "
        f"{c['partials']} partial, {c['negatives']} irrelevant; {report.triplets} training examples",
        f"duplicate rate {report.duplicate_rate:.1%}, near-duplicate documents {report.near_duplicate_documents}, "
        f"positive/negative TF-IDF similarity {sim}",
        f"kappa {'undefined' if report.kappa is None else f'{report.kappa:.3f}'} "
        f"({'passes' if report.gate_passed else 'does not pass'} the 0.6 gate)",
        f"truncated at the model's max length: {report.lengths['queries_truncated']:.1%} of queries, "
        f"{report.lengths['documents_truncated']:.1%} of documents",
    ]
    lines += [f"WARNING: {t('quality.warn_' + f.code, 'en', **f.params)}" for f in report.findings]
    click.echo("\n".join(lines))


@cli.group(name="export")
def export() -> None:
    """Export training data."""


@export.command(name="triplets")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--valid-fraction", default=0.1, show_default=True, help="Share of queries held out for validation.")
@click.option("--test-fraction", default=0.2, show_default=True,
              help="Share of queries kept back for evaluation: no line is written for them, so `studio eval --db` "
                   "can measure a fine-tune of this file on them (0 keeps none back).")
@click.option("--hard-negatives", type=click.Choice(["none", "bm25", "dense", "hybrid"]), default="hybrid",
              show_default=True, help="How to mine negatives beyond the annotated ones.")
@click.option("--negatives", default=7, show_default=True, help="Negatives per query line.")
@click.option("--partial", type=click.Choice(["drop", "positive"]), default="drop", show_default=True,
              help="What a 'partially relevant' label becomes.")
@click.option("--seed", default=42, show_default=True)
@click.option("--model", default=None, help="Embedder for dense mining (default: the ★ model of `studio models`).")
@click.option("--rank-window", default="10-100", show_default=True, help="Ranks to sample mined negatives from.")
@click.option("--scores", type=click.Choice(["none", "ratings"]), default="none", show_default=True,
              help="Add pos_scores/neg_scores from the ratings (for distillation).")
@click.option("--prompt", default="", help="Query instruction written on every line.")
@json_option
@click.pass_obj
@friendly
def export_triplets_cmd(ctx: Context, out: Path | None, valid_fraction: float, test_fraction: float,
                        hard_negatives: str, negatives: int,
                        partial: str, seed: int, model: str | None, rank_window: str, scores: str, prompt: str,
                        as_json: bool) -> None:
    """Gold labels → FlagEmbedding JSONL ({"query", "pos", "neg"}), split by query, with hard negatives.

    \b
    Writes OUT (train; default exports/<timestamp>/train.jsonl), OUT's .valid.jsonl, a flat .csv and a
    .manifest.json beside it. A test share of the queries (--test-fraction) gets no line: the manifest names
    them, and `studio eval --db` measures a fine-tune of OUT on them.
    Example:
        studio export triplets exports/train.jsonl --hard-negatives hybrid --negatives 7
    """
    ctx.require_db()
    window = parse_window(rank_window)
    with _Bar("export") as bar:
        result = data.export_triplets(ctx.project, ctx.actor, out, valid_fraction=valid_fraction,
                                      test_fraction=test_fraction,
                                      hard_negatives=hard_negatives, negatives=negatives, partial=partial, seed=seed,
                                      model=model, rank_window=window, scores=scores, prompt=prompt, progress=bar,
                                      existing=True)
    c, checked = result.counts, result.manifest["checked_negatives"]
    summary = (f"{result.train_path}: {c['train_lines']} lines ({c['train_queries']} queries); "
               f"valid: {c['valid_lines']} lines; test (kept back for evaluation): {c['test_queries']} queries; "
               f"negatives: {c['annotated_negatives']} annotated, "
               f"{c['mined_negatives']} mined, {c['random_negatives']} random")
    if checked["queued"]:
        summary += (f"\nchecked negatives: {checked['queued']} queued, {checked['rated']} rated: "
                    f"{checked['flipped_to_positive']} flipped to positive, {checked['confirmed_negative']} "
                    f"confirmed negative, {checked['partial']} partially relevant")
    emit(result.manifest, as_json, summary)
    for warning in result.warning_texts("en"):
        click.echo(f"warning: {warning}", err=True)


def parse_window(value: str) -> tuple[int, int]:
    """'10-100' → (10, 100); anything else is refused with the option's name."""
    try:
        start, end = (int(x) for x in value.replace(",", "-").split("-"))
    except ValueError:
        raise StudioError("bad_rank_window", value=value) from None
    return start, end
