"""CLI verb: calibrate."""

from __future__ import annotations

import click

from studio.actions import calibrate as actions
from studio.cli.base import Context, cli, emit, friendly, json_option


@cli.command(name="calibrate")
@click.option("--model", default="default", show_default=True,
              help="Embedder or reranker: a name in models/, 'default' (the * model of `studio models`), "
                   "all-MiniLM-L6-v2 (the embedded one), a folder or a hub id.")
@click.option("--kind", type=click.Choice(["auto", "dense", "reranker"]), default="auto", show_default=True,
              help="How the model scores a pair: cosine similarity (dense) or a cross-encoder (reranker); auto "
                   "tells them apart by the model's config.json.")
@click.option("--exclude-train", type=click.Path(exists=True, dir_okay=False),
              help="Leave out the queries of this training file and of its .valid.jsonl beside it (a fine-tune "
                   "looks better separated on the queries it learned from).")
@click.option("--include-trained", is_flag=True,
              help="Also calibrate on the queries the model was trained or validated on (left out by default).")
@click.option("--precision", "target_precision", type=click.FloatRange(0, 1, min_open=True), default=0.9,
              show_default=True, help="Also report the lowest threshold that reaches this precision.")
@json_option
@click.pass_obj
@friendly
def calibrate(ctx: Context, model: str, kind: str, exclude_train: str | None, include_trained: bool,
              target_precision: float, as_json: bool) -> None:
    """The score threshold that best separates the gold 'relevant' from 'irrelevant' pairs (max F1), and the one
    for a target precision, each with its precision and recall. Partially relevant pairs are left out.

    \b
    A pair scoring at least the threshold counts as relevant.
    Example:
        studio calibrate --model medical-v1 --exclude-train exports/train.jsonl --precision 0.95
        studio calibrate --model bge-reranker-ft --json
    """
    result = actions.calibrate(ctx.project, ctx.actor, model, exclude=exclude_train,
                               target_precision=target_precision, kind=kind,
                               include_trained=include_trained, existing=True)
    emit(result.as_dict(), as_json, "\n".join(actions.summary_lines(result, "en")))
