"""CLI verbs: eval, search."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from studio.actions import curve as curves
from studio.actions import evaluate as actions
from studio.actions import search as searching
from studio.actions import wording  # the report's sentences (one door, not a forwarding action each)
from studio.actions.evaluate import RERANK_TOP  # the one reranker depth (studio/retrieval/systems.py)
from studio.cli.base import Context, cli, emit, friendly, json_option, pad, parse_cutoffs
from studio.cli.index import encoding_bar


@cli.command(name="eval")
@click.option("--model", "models_", multiple=True,
              help="Model to evaluate: a name in models/, 'default' (the * model of `studio models`), "
                   "all-MiniLM-L6-v2 (the embedded one), a folder or a hub id. Repeat: the first is the baseline "
                   "the others are compared with.")
@click.option("--system", "systems", multiple=True, metavar="SPEC",
              help="A system to evaluate (after the --model ones): bm25, NAME (dense), NAME:MODE (BGE-M3), "
                   "NAME+bm25 (fusion, tuned with --tune-on), NAME+bm25@0.7 or @rrf (fixed fusion), NAME>RERANKER, "
                   "run:FILE (a TREC run file in runs/ or a path, keyed by the project's ids; fusable, rerankable). "
                   "Repeat. The report names the recommended system.")
@click.option("--tune-on", metavar="SPLIT",
              help="With --beir: the qrels split whose labelled queries tune fusion weights (never the evaluated "
                   "split; queries a fine-tune was trained on are left out). With --db the validation file beside "
                   "--exclude-train tunes them.")
@click.option("--beir", "beir_dir", type=click.Path(file_okay=False), help="Evaluate on a BEIR folder.")
@click.option("--split", default="test", show_default=True)
@click.option("--db", "use_db", is_flag=True, help="Evaluate on the database's gold labels.")
@click.option("--exclude-train", type=click.Path(exists=True, dir_okay=False),
              help="Leave out the queries of this training file and of its .valid.jsonl beside it (the gold "
                   "labels of --db hold a fine-tune's own training and validation queries).")
@click.option("--include-trained", is_flag=True,
              help="Also score the queries a model of the evaluated systems was trained or validated on (left out by "
                   "default). They flatter it: the report then recommends no system and no recipe can be exported.")
@click.option("--k", "ks", default="1,5,10,20", show_default=True, callback=parse_cutoffs,
              help="Cut-offs, comma-separated.")
@click.option("--mode", type=click.Choice(["dense", "sparse", "colbert", "weighted"]), default="dense",
              show_default=True, help="Scoring: dense cosine (any embedder) or a BGE-M3 mode (M3 models only).")
@click.option("--weights", default="0.4,0.2,0.4", show_default=True,
              help="With --mode weighted: dense, sparse and colbert weights.")
@click.option("--reranker", help="Cross-encoder that rescores each model's top documents (each model is also "
                                 "reported without it).")
@click.option("--rerank-top", default=RERANK_TOP, show_default=True)
@click.option("--rerank-only", is_flag=True, help="With --reranker: leave out the runs without it.")
@click.option("--run-out", type=click.Path(file_okay=False, path_type=Path), help="Write TREC run files here.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a self-contained HTML report (opens offline).")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write one CSV row per model and metric (and FILE's stem + '.queries.csv' per query).")
@click.option("--lang", type=click.Choice(["en", "zh-CN"]), default="en", show_default=True,
              envvar="STUDIO_LANG", help="Language of the HTML report.")
@click.option("--learning-curve", "curve", is_flag=True,
              help="Would more labels help? Fine-tune the recipe on 25/50/100 %% of --exclude-train's queries "
                   "(from the first --model, default *), each in a worker process, and plot held-out nDCG@10 "
                   "against the number of labelled queries (admin; takes one training run per point).")
@click.option("--fractions", default="25,50,100", show_default=True, help="With --learning-curve: the samples.")
@click.option("--seeds", default="42", show_default=True,
              help="With --learning-curve: seeds, comma-separated (several show the spread).")
@click.option("--epochs", type=float, help="With --learning-curve: epochs per run (default: the recipe's).")
@click.option("--curve-html", type=click.Path(dir_okay=False, path_type=Path),
              help="With --learning-curve: write the chart as a self-contained HTML file.")
@json_option
@click.pass_obj
@friendly
def eval_(ctx: Context, models_: tuple[str, ...], systems: tuple[str, ...], tune_on: str | None,
          beir_dir: str | None, split: str, use_db: bool,
          exclude_train: str | None, include_trained: bool, ks: tuple[int, ...], mode: str, weights: str, reranker: str | None, rerank_top: int,
          rerank_only: bool, run_out: Path | None, html_out: Path | None, csv_out: Path | None, lang: str,
          curve: bool, fractions: str, seeds: str, epochs: float | None, curve_html: Path | None,
          as_json: bool) -> None:
    """P@K, Recall@K, MRR@K, NDCG@K per model; with two or more models, the change and its significance.

    \b
    Significance: paired randomisation test per metric, Holm-corrected across metrics.
    A reranker (or model) that lowers nDCG@10 is reported as a warning.
    Example:
        studio eval --model default --model medical-v1 --beir ./scifact --split test
        studio eval --model bge-m3 --mode weighted --beir ./scifact --html report.html --csv report.csv
        studio eval --system bm25 --system medical-v1 --system "medical-v1+bm25" --beir ./scifact --tune-on train
    """
    if bool(beir_dir) == use_db:
        raise click.UsageError("give exactly one of --beir DIR or --db")
    if curve:
        if not exclude_train:
            raise click.UsageError("--learning-curve trains on --exclude-train FILE (and leaves its queries out)")
        learning_curve(ctx, models_[0] if models_ else "default", exclude_train, beir_dir, split, fractions, seeds,
                       epochs, curve_html, lang, as_json)
        return
    if not models_ and not systems:
        raise click.UsageError("name what to evaluate: --model NAME or --system SPEC (repeat either)")
    try:
        mode_weights = tuple(float(w) for w in weights.split(","))
    except ValueError:
        mode_weights = ()
    if len(mode_weights) != 3:
        raise click.UsageError("--weights takes three numbers: dense,sparse,colbert")
    with encoding_bar():  # a corpus encoding (a model's first evaluation on it) shows done / total and an ETA
        result = actions.evaluate(ctx.project, ctx.actor, list(models_), "beir" if beir_dir else "db",
                                  systems=list(systems), tune_on=tune_on, folder=beir_dir,
                                  split=split, exclude=exclude_train, ks=ks, mode=mode, weights=mode_weights,
                                  reranker=reranker, rerank_top=rerank_top, include_first_stage=not rerank_only,
                                  run_out=run_out, include_trained=include_trained, lang=lang, existing=True)
    report, comparisons = result.report, result.comparisons
    written = []
    if html_out or csv_out:
        files = actions.write_reports(ctx.project, ctx.actor, report, lang=lang, queries=result.evalset.queries,
                                      html=html_out, csv=csv_out)
        written = [path for path in (files.html, files.csv, files.queries) if path]
    for path in written:
        click.echo(f"wrote {path}", err=True)
    if as_json:
        emit(report, True, "")
        return
    click.echo(f"{report['evalset']}: {report['queries']} queries, {report['documents']} documents")
    held_out = wording.held_out_line(report, "en")
    if held_out:
        click.echo(held_out)
    names = [m["model"] for m in report["models"]]
    metric_names = list(report["models"][0]["metrics"])
    click.echo(f"{'metric':<12}" + "".join(f"{pad(n[-22:], 24)}" for n in names))
    for metric in metric_names:
        click.echo(f"{metric:<12}" + "".join(f"{m['metrics'][metric]:<24.4f}" for m in report["models"]))
    for comparison, cmp in zip(report["comparisons"], comparisons):
        click.echo(f"\n{comparison['model']} vs {comparison['baseline']} (paired randomisation, Holm-corrected):")
        for row in cmp.rows:
            rel = "" if row.relative is None else f" ({row.relative:+.1%})"
            mark = " *" if row.significant else ""
            click.echo(f"  {row.metric:<12} {row.delta:+.4f}{rel:<10} p={row.p_holm:.4f}{mark}  "
                       f"wins/ties/losses {row.wins}/{row.ties}/{row.losses}")
    for line in wording.warning_lines(report, "en"):
        click.echo("\n" + line)
    for model in report["models"]:
        fusion = wording.fusion_line(model.get("system"), "en")
        if fusion:
            click.echo(f"\n{model['model']}: {fusion}")
    recommendation = wording.recommendation_line(report, "en")
    if recommendation:
        click.echo("\n" + recommendation)
    planner = wording.planner_line(report, "en")
    if planner:
        click.echo(planner)


def learning_curve(ctx: Context, base: str, train_file: str, beir_dir: str | None, split: str, fractions: str,
                   seeds: str, epochs: float | None, html: Path | None, lang: str, as_json: bool) -> None:
    """`studio eval --learning-curve`: the curve's points with a progress bar, then its verdict."""
    with click.progressbar(length=1000, label="learning curve", file=sys.stderr) as bar:
        done = [0]

        def on_progress(share: float, what: str) -> None:
            bar.label = what[:40]
            step = int(1000 * min(max(share, 0.0), 1.0))
            if step > done[0]:
                bar.update(step - done[0])
                done[0] = step

        result = curves.learning_curve(ctx.project, ctx.actor, train_file, "beir" if beir_dir else "db",
                                       folder=beir_dir, split=split, base=base,
                                       fractions=curves.parse_fractions(fractions), seeds=curves.parse_seeds(seeds),
                                       options={"epochs": epochs} if epochs else None, lang=lang, existing=True,
                                       progress=on_progress)
    if html:
        curves.figure(result, lang).write_html(str(html), include_plotlyjs=True)
        click.echo(f"wrote {html}", err=True)
    if as_json:
        emit(result.as_dict(), True, "")
        return
    click.echo(f"0 labelled queries (base {base}): nDCG@10 {result.base_ndcg:.4f}")
    for level in result.levels:
        spread = f" ± {level.std:.4f} [{level.low:.4f}–{level.high:.4f}]" if level.runs > 1 else ""
        click.echo(f"{level.queries:>5} labelled queries ({level.fraction:.0%}): nDCG@10 {level.mean:.4f}{spread}, "
                   f"recall@10 {level.recall:.4f}")
    click.echo(curves.verdict_line(result, lang))


@cli.command(name="search")
@click.argument("query")
@click.option("--system", metavar="SPEC",
              help="What searches: bm25, a model, NAME:sparse (BGE-M3), NAME+bm25 (fused by reciprocal rank; "
                   "NAME+bm25@0.7 pins a weight), run:FILE (a TREC run file's ranking for a query of the project), "
                   "each optionally >RERANKER. The same spec as eval --system and ⑨ Compare.")
@click.option("--model", help="Embedder (the older form of --system NAME): a name in models/, 'default' (the * model, "
                               "also when nothing is named), all-MiniLM-L6-v2, a folder or a hub id.")
@click.option("--reranker", help="Cross-encoder that rescores the first stage's top --depth documents "
                                  "(adds >RERANKER).")
@click.option("--k", default=10, show_default=True, type=click.IntRange(min=1), help="Results to show.")
@click.option("--depth", type=click.IntRange(min=1),
              help="With a reranker: how many first-stage candidates it rescores (default: as many as ⑨ Compare).")
@json_option
@click.pass_obj
@friendly
def search(ctx: Context, query: str, system: str | None, model: str | None, reranker: str | None, k: int,
           depth: int | None, as_json: bool) -> None:
    """The project's documents that best match QUERY (what ⑨ Compare shows for one side), with their gold labels.

    \b
    Example:
        studio search "糖尿病的主要并发症有哪些？" --system "medical-v1+bm25>rr-v1" --k 5
        studio search "糖尿病的主要并发症有哪些？" --model medical-v1 --k 5
    """
    if system and model:
        raise click.UsageError("give --system SPEC or --model NAME, not both")
    found = searching.search(ctx.project, ctx.actor, query, system or model or "default", k=k, reranker=reranker,
                             depth=depth)
    side = found.side
    rows = [{"rank": h.rank, "key": h.doc_key, "score": h.score, "gold": found.gold.get(h.doc_key),
             "title": found.documents[h.doc_key]["title"]} for h in side.hits]
    details = side.details  # how it searched: studio.retrieval.system_search.Details
    fusion = details.fusion and {"method": details.fusion, "weight": details.weight, "pinned": details.pinned,
                                 "depth": details.depth}
    if as_json:
        emit({"query": found.query, "system": side.name, "model": side.name, "ms": round(side.ms, 1),
              "fusion": fusion or None, "reranker": details.reranker, "rerank_depth": details.rerank_depth,
              "results": rows}, True, "")
        return
    click.echo(f"{side.name}: {len(rows)} results in {side.ms:.0f} ms")
    if details.pin_example:
        click.echo(f"fused by reciprocal rank; pin a tuned weight as {details.pin_example}")
    for row in rows:
        gold = "-" if row["gold"] is None else str(row["gold"])
        title = row["title"] or found.documents[row["key"]]["text"][:60]
        click.echo(f"{row['rank']:>3}  {row['score']:8.3f}  gold {gold}  {pad(row['key'], 12)}  {title}")
