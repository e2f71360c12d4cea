"""CLI verbs: import (pairs, ratings, beir, logs), pool."""

from __future__ import annotations

from pathlib import Path

import click

from studio.actions import collect
from studio.cli.base import Context, cli, emit, friendly, json_option, plural
from studio.cli.index import encoding_bar


@cli.group(name="import")
def import_() -> None:
    """Import pairs, ratings, a BEIR folder or RAG logs (all-or-nothing)."""


def _run_import(ctx: Context, kind: str, path: Path, as_json: bool, queue: bool | None = None, **options) -> None:
    summary = collect.import_file(ctx.project, ctx.actor, kind, path, queue=queue, **options)
    emit(summary.as_dict(), as_json,
         f"{path}: {plural(summary.pairs, 'new pair')} ({summary.existing_pairs} already there), "
         f"{plural(summary.documents, 'new document')}, {plural(summary.queries, 'new query', 'new queries')}"
         + (f", {plural(summary.ratings, 'rating')}" if kind == "ratings" else ""))


@import_.command(name="pairs")
@click.argument("file", type=click.Path(path_type=Path))
@json_option
@click.pass_obj
@friendly
def import_pairs(ctx: Context, file: Path, as_json: bool) -> None:
    """Query/document pairs to annotate, from CSV, TSV, JSONL or JSON.

    \b
    Columns: query, document (required); query_id, doc_id, title (optional).
    Example:
        studio import pairs pairs.csv
    """
    _run_import(ctx, "pairs", file, as_json)


@import_.command(name="ratings")
@click.argument("file", type=click.Path(path_type=Path))
@json_option
@click.pass_obj
@friendly
def import_ratings(ctx: Context, file: Path, as_json: bool) -> None:
    """Ratings made elsewhere: the pair columns plus annotator and rating (0/1/2), optional note.

    \b
    A pair already imported may be named by query_id and doc_id alone.
    \b
    Example:
        studio import ratings labels.jsonl
    """
    _run_import(ctx, "ratings", file, as_json)


@import_.command(name="beir")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--split", default="test", show_default=True, help="qrels/<split>.tsv to read.")
@click.option("--min-relevant", default=1, show_default=True, help="qrels score at or above which a pair is relevant.")
@click.option("--annotate", is_flag=True, help="Also queue the labelled pairs for double annotation.")
@json_option
@click.pass_obj
@friendly
def import_beir(ctx: Context, directory: Path, split: str, min_relevant: int, annotate: bool, as_json: bool) -> None:
    """A BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv; qrels become gold labels.

    \b
    Example:
        studio import beir ./scifact --split test
    """
    _run_import(ctx, "beir", directory, as_json, queue=annotate, split=split, min_relevant=min_relevant)


@import_.command(name="logs")
@click.argument("file", type=click.Path(path_type=Path))
@json_option
@click.pass_obj
@friendly
def import_logs(ctx: Context, file: Path, as_json: bool) -> None:
    """RAG query logs (JSONL: query, retrieved_docs, user_feedback.helpful_docs) as pairs to confirm.

    \b
    Any other key is refused; keep extra fields (time, session, scores) under "metadata".
    Example:
        studio import logs rag_queries.jsonl
    """
    _run_import(ctx, "logs", file, as_json)


@cli.command()
@click.option("--k", default=20, show_default=True, type=click.IntRange(min=1),
              help="Candidates per query (hybrid: the k best of BM25 and dense, merged).")
@click.option("--retriever", type=click.Choice(["bm25", "dense", "hybrid"]), default="hybrid", show_default=True)
@click.option("--model", default=None, help="Embedder for dense: a name in models/, a path, a hub id, 'default' (the ★ "
              "model of `studio models`, also used without --model) or all-MiniLM-L6-v2 (the embedded one).")
@click.option("--unjudged", is_flag=True,
              help="Judge the holes instead: queue the pairs without a gold label in the top --depth of each "
                   "--system, over the queries an evaluation on --db uses; served before other pairs.")
@click.option("--system", "systems", multiple=True, metavar="SPEC",
              help="With --unjudged: a system whose top --depth to pool, as in eval --system (bm25, NAME, NAME+bm25, "
                   "run:FILE, ...>RERANKER; an unpinned fusion is reciprocal-rank here). Repeat.")
@click.option("--depth", default=10, show_default=True, type=click.IntRange(min=1, max=1000),
              help="With --unjudged: how many of each system's top documents per query.")
@click.option("--exclude-train", type=click.Path(exists=True, dir_okay=False),
              help="With --unjudged: leave out the queries of this training file and of its .valid.jsonl, as "
                   "eval --exclude-train does.")
@json_option
@click.pass_obj
@friendly
def pool(ctx: Context, k: int, retriever: str, model: str | None, unjudged: bool, systems: tuple[str, ...],
         depth: int, exclude_train: str | None, as_json: bool) -> None:
    """Retrieve top-k documents for every query and add them as pairs to annotate; with --unjudged, the unjudged
    pairs of systems' top documents (the holes an evaluation counts as not relevant).

    \b
    --system, --depth and --exclude-train go with --unjudged only; --k, --retriever and --model without it.
    Example:
        studio pool --k 20 --retriever hybrid
        studio pool --unjudged --system bm25 --system medical-v1+bm25 --system run:prod.trec --depth 10
    """
    ctx.require_db()
    source = click.get_current_context().get_parameter_source
    if unjudged:
        given = [f"--{name}" for name in ("k", "retriever", "model")
                 if source(name) not in (None, click.core.ParameterSource.DEFAULT)]
        if given:
            raise click.UsageError(f"{', '.join(given)} pool candidates for every query; --unjudged pools --system "
                                   "SPEC's top --depth instead: give one or the other")
        if not systems:
            raise click.UsageError("--unjudged pools systems' top documents: name them with --system SPEC (repeat)")
        unjudged_pool(ctx, list(systems), depth, exclude_train, as_json)
        return
    given = [option for name, option in (("systems", "--system"), ("depth", "--depth"),
                                         ("exclude_train", "--exclude-train"))
             if source(name) not in (None, click.core.ParameterSource.DEFAULT)]
    if given:
        raise click.UsageError(f"{', '.join(given)} go with --unjudged (pool the unjudged pairs of systems' top "
                               "documents)")
    with encoding_bar():  # the corpus's vectors: only new or changed documents are encoded
        result = collect.pool(ctx.project, ctx.actor, k, retriever, model, existing=True)
    dense = f", model {result['model']}" if result["model"] else ""
    emit(result, as_json, f"{plural(result['added'], 'new pair')} from {plural(result['candidates'], 'candidate')} "
                          f"for {result['queries']} queries ({retriever}, k={k}{dense})"
                          + (f"; served in '{result['strategy']}' order (the default strategy)" if result["strategy"]
                             else ""))


def unjudged_pool(ctx: Context, systems: list[str], depth: int, exclude_train: str | None, as_json: bool) -> None:
    """`studio pool --unjudged`: queue the holes, then say how many were new and how judged each system's top is."""
    with encoding_bar():
        result = collect.pool_unjudged(ctx.project, ctx.actor, systems, depth=depth, exclude=exclude_train,
                                       existing=True)
    if as_json:
        emit(result, True, "")
        return
    if result["added"]:
        head = (f"{plural(result['added'], 'new pair')} to judge from the top {depth} of "
                f"{plural(len(result['systems']), 'system')} over {plural(result['queries'], 'query', 'queries')}, "
                f"served first (source '{result['source']}')")
    elif result["candidates"]:
        head = (f"no new pair: every unjudged pair in the top {depth} of these systems over "
                f"{plural(result['queries'], 'query', 'queries')} is already in the project")
    else:
        head = (f"nothing to judge: the top {depth} of these systems over "
                f"{plural(result['queries'], 'query', 'queries')} is fully labelled")
    extra = [f"{result['already_queued']} already queued"] if result["already_queued"] else []
    if result["judged"]:
        extra.append(f"{result['judged']} labelled meanwhile")
    if result["outside_queue"]:
        extra.append(f"{result['outside_queue']} kept out of the queue")
    if result["unknown_documents"]:
        extra.append(f"{plural(result['unknown_documents'], 'pair')} whose document the corpus lacks (not queued)")
    click.echo(head + (f"; {', '.join(extra)}" if extra else ""))
    for spec, row in result["systems"].items():
        fused = " (fused by reciprocal rank, untuned)" if (row["fusion"] or {}).get("chosen_by") == "untuned" else ""
        click.echo(f"  {spec}{fused}: {row['unjudged']} of {row['pairs']} top-{depth} pairs unjudged "
                   f"(judged@{depth} {row['judged_share']:.3f})")
