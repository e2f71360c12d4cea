"""CLI verbs: recipe export, recipe serve."""

from __future__ import annotations

import json
from pathlib import Path

import click

from studio.actions import recipe as recipes
from studio.actions import serve as serving
from studio.cli.base import Context, cli, emit, friendly, json_option
from studio.i18n import t


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
              help="With a reranker: how many first-stage candidates it rescores (default: as measured, else the evaluations' depth).")
@click.option("--precision", "target_precision", type=click.FloatRange(0, 1, min_open=True), default=0.9,
              show_default=True, help="Also record the lowest threshold that reaches this precision.")
@click.option("--int8-check", is_flag=True,
              help="Also measure int8 (dynamic quantisation of the models' Linear layers, CPU): its speed-up and "
                   "nDCG@10 change on the held-out labelled queries of --beir/--db (else the project's gold "
                   "labels), written as the recipe's \"int8\"; a drop above 0.01 is not advertised.")
@json_option
@click.pass_obj
@friendly
def export_cmd(ctx: Context, spec: str, out: Path, beir_dir: str | None, split: str, tune_on: str | None,
               use_db: bool, exclude_train: str | None, report_file: Path | None, rerank_top: int | None,
               target_precision: float, int8_check: bool, as_json: bool) -> None:
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
        studio --db annotations.db recipe export "medical-v1+bm25" deploy/ --int8-check
    """
    if beir_dir and use_db:
        raise click.UsageError("give at most one of --beir DIR or --db")
    if tune_on and not beir_dir:
        raise click.UsageError("--tune-on names a split of the --beir folder")
    if use_db:
        ctx.require_db()
    report = json.loads(report_file.read_text(encoding="utf-8")) if report_file else None
    path = recipes.export_recipe(ctx.project, ctx.actor, spec, out, source="beir" if beir_dir else "db" if use_db
                                 else None, folder=beir_dir, split=split, tune_on=tune_on, exclude=exclude_train,
                                 measured=report, rerank_top=rerank_top, target_precision=target_precision,
                                 int8_check=int8_check, existing=True)
    if as_json:
        emit({"path": str(path), "recipe": json.loads(path.read_text(encoding="utf-8"))}, True, "")
        return
    click.echo("\n".join(recipes.summary_lines(path, "en")))


@recipe.command(name="serve")
@click.argument("folder", type=click.Path(exists=True, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to serve on; anything but a loopback address needs --token.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--int8", is_flag=True,
              help="Serve the models quantised to int8 (CPU); refused when the recipe's --int8-check measured an "
                   "nDCG@10 drop above 0.01.")
@click.option("--documents", type=click.Path(exists=True, path_type=Path),
              help="The documents /search ranks: a JSONL corpus (_id or id, title, text) or a BEIR folder "
                   "(more can be POSTed to /documents).")
@click.option("--token", envvar="STUDIO_RECIPE_TOKEN", show_envvar=True,
              help="Bearer token every request but /health must carry (Authorization: Bearer TOKEN).")
@click.option("--max-batch", default=256, show_default=True, type=click.IntRange(min=1),
              help="Texts per /v1/embeddings or /rerank request.")
@click.pass_obj
@friendly
def serve_cmd(ctx: Context, folder: Path, host: str, port: int, int8: bool, documents: Path | None,
              token: str | None, max_batch: int) -> None:
    """Serve the recipe in FOLDER (written by `studio recipe export`) over HTTP: POST /v1/embeddings (OpenAI's
    API, the recipe's dense model), POST /rerank (text-embeddings-inference's, its reranker), POST /search (the
    documents held, ranked as the recipe's system ranks them), POST /documents, GET /health and GET /metrics.

    \b
    Example:
        studio recipe export "default+bm25" deploy/
        studio recipe serve deploy/ --port 8080 --documents assets/demo/corpus.jsonl
        curl -s localhost:8080/search -d '{"query": "糖尿病的并发症", "k": 5}' -H 'content-type: application/json'
        STUDIO_RECIPE_TOKEN=s3cret studio recipe serve deploy/ --host 0.0.0.0 --int8
    """
    service = serving.serve_recipe(ctx.project, ctx.actor, folder, host=host, port=port, int8=int8,
                                   documents=documents, token=token, max_batch=max_batch)
    for note in service.notes:
        click.echo(f"warning: {note}", err=True)
    click.echo(t("serve.listening", "en", spec=service.runtime.spec, host=service.host, port=service.port,
                 documents=len(service.index), int8="int8" if service.runtime.int8 else "fp32"), err=True)
    service.run()
