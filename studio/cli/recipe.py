"""CLI verbs: recipe export."""

from __future__ import annotations

import json
from pathlib import Path

import click

from studio.cli.base import Context, cli, emit, friendly, json_option


@cli.group(name="recipe")
def recipe() -> None:
    """Deployment recipes: what an evaluation measured, as a recipe.json to run without the studio."""


@recipe.command(name="export")
@click.argument("spec")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--beir", "beir_dir", type=click.Path(exists=True, file_okay=False),
              help="The BEIR folder that was evaluated (with --tune-on: tune an unpinned fusion on its split).")
@click.option("--split", default="test", show_default=True, help="With --beir: the evaluated split.")
@click.option("--tune-on", metavar="SPLIT",
              help="With --beir: the qrels split whose labelled queries tune an unpinned fusion (never the "
                   "evaluated split). Without it (and without --report) a fusion is reciprocal rank, untuned.")
@click.option("--db", "use_db", is_flag=True,
              help="The database's gold labels were evaluated: the validation file beside --exclude-train tunes "
                   "an unpinned fusion.")
@click.option("--exclude-train", type=click.Path(exists=True, dir_okay=False),
              help="Leave out the queries of this training file and of its .valid.jsonl beside it (from the "
                   "tuning and from the threshold's calibration).")
@click.option("--report", "report_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A report of `studio eval --system ... --json`: the recipe takes the fusion, reranker depth "
                   "and metrics measured for SPEC from it.")
@click.option("--rerank-top", type=click.IntRange(min=1),
              help="With a reranker: how many first-stage candidates it rescores (default: as measured, else 100).")
@click.option("--precision", "target_precision", type=click.FloatRange(0, 1, min_open=True), default=0.9,
              show_default=True, help="Also record the lowest threshold that reaches this precision.")
@json_option
@click.pass_obj
@friendly
def export_cmd(ctx: Context, spec: str, out: Path, beir_dir: str | None, split: str, tune_on: str | None,
               use_db: bool, exclude_train: str | None, report_file: Path | None, rerank_top: int | None,
               target_precision: float, as_json: bool) -> None:
    """Write OUT/recipe.json: the system SPEC's models (by path), fusion method and weight, BM25 tokenizer,
    reranker and top N, and the score threshold calibrated on the project's gold labels (max F1, and one for
    --precision). README.md shows the Python that runs it.

    \b
    SPEC is a system as `studio eval --system` names it: bm25, NAME, NAME+bm25, NAME+bm25@0.7, NAME>RERANKER.
    Example:
        studio recipe export "medical-v1+bm25" deploy/ --beir ./scifact --tune-on train
        studio --db annotations.db recipe export "medical-v1+bm25>rr-v1" deploy/ --db \\
            --exclude-train exports/run/train.jsonl
        studio eval --system "medical-v1+bm25" --beir ./scifact --tune-on train --json > report.json
        studio recipe export "medical-v1+bm25" deploy/ --report report.json
    """
    from studio.actions import recipe as actions

    if beir_dir and use_db:
        raise click.UsageError("give at most one of --beir DIR or --db")
    if tune_on and not beir_dir:
        raise click.UsageError("--tune-on names a split of the --beir folder")
    if use_db:
        ctx.require_db()
    report = json.loads(report_file.read_text(encoding="utf-8")) if report_file else None
    path = actions.export_recipe(ctx.project, ctx.actor, spec, out, source="beir" if beir_dir else "db" if use_db
                                 else None, folder=beir_dir, split=split, tune_on=tune_on, exclude=exclude_train,
                                 measured=report, rerank_top=rerank_top, target_precision=target_precision,
                                 existing=True)
    if as_json:
        emit({"path": str(path), "recipe": json.loads(path.read_text(encoding="utf-8"))}, True, "")
        return
    click.echo("\n".join(actions.summary_lines(path, "en")))
