"""`studio` / `python -m studio`: one verb per stage, calling the same library functions as the UI."""

from __future__ import annotations

import json
import sys
import time
from functools import wraps
from pathlib import Path

import click

from studio.config import DEFAULT_DB
from studio.errors import StudioError
from studio.training.config import TrainConfig

_D = TrainConfig.default  # `studio train` shows the recipe's defaults (one place: TrainConfig)


class Context:
    def __init__(self, db_path: Path):
        self.db_path = db_path

    def open(self, *, existing: bool = False):
        """The database; `existing` for verbs that only read it, so that a mistyped path is an error, not a new,
        empty database reporting zeros."""
        from studio.store import connect

        if existing and not Path(self.db_path).is_file():
            verb = " ".join(click.get_current_context().command_path.split()[1:])
            raise click.ClickException(f"no database at {self.db_path} (the --db option goes before the verb: "
                                       f"studio --db FILE {verb})")
        return connect(self.db_path)


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """'1 pair', '2 pairs'."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def parse_cutoffs(ctx, param, value: str) -> tuple[int, ...]:
    """--k 1,5,10 → (1, 5, 10) (:func:`studio.evaluation.metrics.parse_cutoffs`); a bad value is a usage error."""
    from studio.evaluation.metrics import parse_cutoffs as parse

    try:
        return parse(value)
    except StudioError as exc:
        raise click.BadParameter(exc.message("en")) from None


def friendly(fn):
    """Turn the studio's own errors into a one-line message and exit code 1, never a traceback."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StudioError as exc:
            raise click.ClickException(exc.message("en")) from exc

    return wrapper


def pad(text: str, width: int) -> str:
    """Left-justify for a terminal, where CJK characters take two columns."""
    import unicodedata

    shown = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - shown)


def emit(data, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else text)


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_DB,
              show_default=True, envvar="STUDIO_DB", help="SQLite database file (created if missing).")
@click.pass_context
def cli(ctx: click.Context, db_path: Path) -> None:
    """Relevance Studio: collect, annotate and agree on query/document relevance labels."""
    ctx.obj = Context(db_path)


@cli.group(name="import")
def import_() -> None:
    """Import pairs, ratings, a BEIR folder or RAG logs (all-or-nothing)."""


def _run_import(ctx: Context, kind: str, path: Path, as_json: bool, queue: bool = True, **options) -> None:
    from studio.ingest import read_any
    from studio.store.imports import import_batch

    batch = read_any(kind, path, **options)
    summary = import_batch(ctx.open(), batch, queue=queue, actor=f"cli:{kind}")
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
    Example:
        studio import logs rag_queries.jsonl
    """
    _run_import(ctx, "logs", file, as_json)


@cli.command()
@click.option("--k", default=20, show_default=True, type=click.IntRange(min=1),
              help="Candidates per query (hybrid: the k best of BM25 and dense, merged).")
@click.option("--retriever", type=click.Choice(["bm25", "dense", "hybrid"]), default="hybrid", show_default=True)
@click.option("--model", default=None, help="Embedder for dense: a name in models/, a path, a hub id or 'default' (the "
              "embedded model). Without it: the default model (★ in `studio models`).")
@json_option
@click.pass_obj
@friendly
def pool(ctx: Context, k: int, retriever: str, model: str | None, as_json: bool) -> None:
    """Retrieve top-k documents for every query and add them as pairs to annotate.

    \b
    Example:
        studio pool --k 20 --retriever hybrid
    """
    from studio.retrieval.pooling import pool_candidates

    result = pool_candidates(ctx.open(existing=True), k=k, retriever=retriever, model=model)
    dense = f", model {result['model']}" if result["model"] else ""
    emit(result, as_json, f"{plural(result['added'], 'new pair')} from {plural(result['candidates'], 'candidate')} "
                          f"for {result['queries']} queries ({retriever}, k={k}{dense})")


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


class _Bar:
    """Adapts the library's progress(fraction, stage) callback to a click progress bar on stderr (a terminal only:
    piped or logged, a bar leaves only its stage names behind)."""

    def __init__(self, label: str):
        self.bar = click.progressbar(length=100, label=label, file=sys.stderr, show_eta=False) \
            if sys.stderr.isatty() else None
        self.done = 0

    def __call__(self, fraction: float, stage: str) -> None:
        if self.bar is None:
            return
        self.bar.label = stage
        step = int(fraction * 100) - self.done
        if step > 0:
            self.bar.update(step)
            self.done += step

    def __enter__(self):
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc) if self.bar is not None else None


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
    from studio.dataset.quality import quality_report
    from studio.i18n import t
    from studio.models.registry import get_default
    from studio.store.adjudication import pooled_kappa
    from studio.store.gold import gold_set

    db = ctx.open(existing=True)
    with _Bar("quality") as bar:
        report = quality_report(gold_set(db), kappa=pooled_kappa(db), model=model or get_default(), progress=bar)
    data = report.as_dict()
    if out_file:
        out_file.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    if as_json:
        emit(data, True, "")
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
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--valid-fraction", default=0.1, show_default=True, help="Share of queries held out for validation.")
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
def export_triplets_cmd(ctx: Context, out: Path, valid_fraction: float, hard_negatives: str, negatives: int,
                        partial: str, seed: int, model: str | None, rank_window: str, scores: str, prompt: str,
                        as_json: bool) -> None:
    """Gold labels → FlagEmbedding JSONL ({"query", "pos", "neg"}), split by query, with hard negatives.

    \b
    Writes OUT (train), OUT's .valid.jsonl, a flat .csv and a .manifest.json beside it.
    Example:
        studio export triplets exports/train.jsonl --hard-negatives hybrid --negatives 7
    """
    from studio.dataset.triplets import ExportOptions, export_triplets
    from studio.models.registry import get_default
    from studio.store.gold import gold_set

    options = ExportOptions(valid_fraction=valid_fraction, hard_negatives=hard_negatives, negatives=negatives,
                            partial=partial, seed=seed, model=model or get_default(),
                            rank_window=parse_window(rank_window), scores=scores, prompt=prompt)
    with _Bar("export") as bar:
        result = export_triplets(gold_set(ctx.open(existing=True)), out, options, progress=bar)
    c = result.counts
    emit(result.manifest, as_json,
         f"{result.train_path}: {c['train_lines']} lines ({c['train_queries']} queries); "
         f"valid: {c['valid_lines']} lines; negatives: {c['annotated_negatives']} annotated, "
         f"{c['mined_negatives']} mined, {c['random_negatives']} random")
    for warning in result.warning_texts("en"):
        click.echo(f"warning: {warning}", err=True)


def parse_window(value: str) -> tuple[int, int]:
    """'10-100' → (10, 100); anything else is refused with the option's name."""
    from studio.errors import StudioError

    try:
        start, end = (int(x) for x in value.replace(",", "-").split("-"))
    except ValueError:
        raise StudioError("bad_rank_window", value=value) from None
    return start, end


@cli.command()
@click.option("--task", type=click.Choice(["embedder", "reranker"]), required=True)
@click.option("--base", default="default", show_default=True, help="Model name in models/, a folder, a hub id, or 'default'.")
@click.option("--train", "train_file", type=click.Path(exists=True, dir_okay=False), required=True,
              help="FlagEmbedding JSONL from `studio export triplets`.")
@click.option("--valid", "valid_file", type=click.Path(exists=True, dir_okay=False),
              help="Validation JSONL (default: the .valid.jsonl beside --train, if any).")
@click.option("--name", required=True, help="Output folder under models/.")
@click.option("--method", type=click.Choice(["full", "lora"]), default=_D("method"), show_default=True)
@click.option("--epochs", default=_D("epochs"), show_default=True)
@click.option("--max-steps", default=_D("max_steps"), show_default=True, help="Stop after N steps (overrides --epochs).")
@click.option("--batch-size", default=_D("batch_size"), show_default=True, help="Queries per device per step.")
@click.option("--lr", type=float, help="Learning rate (default 5e-5 full, 1e-4 LoRA).")
@click.option("--group-size", default=_D("group_size"), show_default=True, help="1 positive + N-1 negatives per query.")
@click.option("--query-max-len", default=_D("query_max_len"), show_default=True)
@click.option("--passage-max-len", type=int, default=_D("passage_max_len"),
              help="Tokens per passage (default: the base model's max_seq_length, at most 512).")
@click.option("--temperature", default=_D("temperature"), show_default=True,
              help="Softmax temperature of the contrastive loss (embedder).")
@click.option("--warmup", default=_D("warmup_ratio"), show_default=True, help="Warm-up, as a share of the steps.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default=_D("precision"),
              show_default=True)
@click.option("--gradient-checkpointing", is_flag=True)
@click.option("--lora-r", default=_D("lora_r"), show_default=True)
@click.option("--lora-alpha", default=_D("lora_alpha"), show_default=True)
@click.option("--lora-dropout", default=_D("lora_dropout"), show_default=True)
@click.option("--lora-targets", default=",".join(_D("lora_targets")), show_default=True, help="Modules LoRA adapts.")
@click.option("--freeze-embeddings", is_flag=True, help="Keep the embedding layer fixed.")
@click.option("--freeze-layers", default=_D("freeze_layers"), show_default=True,
              help="Keep the lowest N transformer layers fixed.")
@click.option("--seed", default=_D("seed"), show_default=True, help="Random seed (data order, negatives drawn).")
@click.option("--gpus", default=1, show_default=True, help="Run under torchrun on this many GPUs.")
@click.pass_obj
@friendly
def train(ctx: Context, task: str, base: str, train_file: str, valid_file: str | None, name: str, method: str,
          epochs: float, max_steps: int, batch_size: int, lr: float | None, group_size: int, query_max_len: int,
          passage_max_len: int | None, temperature: float, warmup: float, precision: str,
          gradient_checkpointing: bool, lora_r: int, lora_alpha: int, lora_dropout: float, lora_targets: str,
          freeze_embeddings: bool, freeze_layers: int, seed: int, gpus: int) -> None:
    """Fine-tune an embedder or reranker in the foreground, with a progress bar; the model lands in models/NAME.

    \b
    The same worker the Train tab starts; Ctrl-C cancels and keeps the last checkpoint.
    Example:
        studio train --task embedder --base default --train exports/train.jsonl --name medical-v1
    """
    from studio.models.registry import resolve
    from studio.store import jobs as store_jobs
    from studio.training import jobs
    from studio.training.config import TrainConfig, read_metrics, too_few_steps

    if valid_file is None:
        beside = Path(train_file).with_suffix(".valid.jsonl")
        valid_file = str(beside) if beside.exists() else None
    config = TrainConfig(task=task, base=resolve(base), train=train_file, valid=valid_file, name=name, output_dir="",
                         method=method, epochs=epochs, max_steps=max_steps, batch_size=batch_size, lr=lr,
                         group_size=group_size, query_max_len=query_max_len, passage_max_len=passage_max_len,
                         temperature=temperature, warmup_ratio=warmup, precision=precision,
                         gradient_checkpointing=gradient_checkpointing, lora_r=lora_r, lora_alpha=lora_alpha,
                         lora_dropout=lora_dropout, lora_targets=[x.strip() for x in lora_targets.split(",") if x.strip()],
                         freeze_embeddings=freeze_embeddings, freeze_layers=freeze_layers, seed=seed)
    few = too_few_steps(train_file, batch_size, epochs, max_steps)
    if few is not None:
        steps, lines = few
        why = (f"--max-steps {max_steps}" if 0 < max_steps == steps else
               f"{lines} queries at batch size {batch_size} x {epochs:g} epoch(s)")
        advice = "" if 0 < max_steps == steps else "; label more pairs or raise --epochs"
        click.echo(f"warning: only {steps} training step(s) ({why}): too few for the model to change much{advice}",
                   err=True)
    db = ctx.open()
    job_id = jobs.create(db, config, created_by="cli")
    proc = jobs.launch(db, job_id, gpus=gpus)
    job_dir = Path(store_jobs.get_job(db, job_id)["job_dir"])
    click.echo(f"job {job_id}: {job_dir} (log: {job_dir / 'log.txt'})", err=True)
    shown = 0
    try:
        with click.progressbar(length=1, label="training", file=sys.stderr, show_eta=True) as bar:
            while proc.poll() is None:
                time.sleep(1)
                rows = [r for r in read_metrics(job_dir) if r.get("loss") is not None]
                if rows:
                    last = rows[-1]
                    bar.length = max(int(last.get("total_steps") or 1), 1)
                    bar.label = f"loss {last['loss']:.4f}"
                    bar.update(int(last["step"]) - shown)
                    shown = int(last["step"])
    except KeyboardInterrupt:
        click.echo("\ncancelling (keeps the last checkpoint)…", err=True)
        jobs.cancel(db, job_id, actor="cli")
    job = jobs.refresh(db, job_id)
    if job["status"] != "succeeded":
        raise click.ClickException(f"job {job_id} {job['status']}: {job['error'] or 'see ' + str(job_dir / 'log.txt')}")
    click.echo(f"model saved to {job['output_dir']}")


@cli.command(name="eval")
@click.option("--model", "models_", multiple=True, required=True,
              help="Model to evaluate (repeat: the first is the baseline the others are compared with).")
@click.option("--beir", "beir_dir", type=click.Path(file_okay=False), help="Evaluate on a BEIR folder.")
@click.option("--split", default="test", show_default=True)
@click.option("--db", "use_db", is_flag=True, help="Evaluate on the database's gold labels.")
@click.option("--exclude-train", type=click.Path(exists=True, dir_okay=False),
              help="With --db: leave out the queries of this training file.")
@click.option("--k", "ks", default="1,5,10,20", show_default=True, callback=parse_cutoffs,
              help="Cut-offs, comma-separated.")
@click.option("--mode", type=click.Choice(["dense", "sparse", "colbert", "weighted"]), default="dense",
              show_default=True, help="Scoring: dense cosine (any embedder) or a BGE-M3 mode (M3 models only).")
@click.option("--weights", default="0.4,0.2,0.4", show_default=True,
              help="With --mode weighted: dense, sparse and colbert weights.")
@click.option("--reranker", help="Cross-encoder that rescores each model's top documents (each model is also "
                                 "reported without it).")
@click.option("--rerank-top", default=100, show_default=True)
@click.option("--rerank-only", is_flag=True, help="With --reranker: leave out the runs without it.")
@click.option("--run-out", type=click.Path(file_okay=False, path_type=Path), help="Write TREC run files here.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a self-contained HTML report (opens offline).")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write one CSV row per model and metric (and FILE's stem + '.queries.csv' per query).")
@click.option("--lang", type=click.Choice(["en", "zh-CN"]), default="en", show_default=True,
              envvar="STUDIO_LANG", help="Language of the HTML report.")
@json_option
@click.pass_obj
@friendly
def eval_(ctx: Context, models_: tuple[str, ...], beir_dir: str | None, split: str, use_db: bool,
          exclude_train: str | None, ks: tuple[int, ...], mode: str, weights: str, reranker: str | None, rerank_top: int,
          rerank_only: bool, run_out: Path | None, html_out: Path | None, csv_out: Path | None, lang: str,
          as_json: bool) -> None:
    """P@K, Recall@K, MRR@K, NDCG@K per model; with two or more models, the change and its significance.

    \b
    Significance: paired randomisation test per metric, Holm-corrected across metrics.
    A reranker (or model) that lowers nDCG@10 is reported as a warning.
    Example:
        studio eval --model default --model medical-v1 --beir ./scifact --split test
        studio eval --model bge-m3 --mode weighted --beir ./scifact --html report.html --csv report.csv
    """
    from studio.evaluation import runner
    from studio.evaluation.report import evaluate_models, warning_lines

    if bool(beir_dir) == use_db:
        raise click.UsageError("give exactly one of --beir DIR or --db")
    cutoffs = ks
    try:
        mode_weights = tuple(float(w) for w in weights.split(","))
    except ValueError:
        mode_weights = ()
    if len(mode_weights) != 3:
        raise click.UsageError("--weights takes three numbers: dense,sparse,colbert")
    if beir_dir:
        evalset = runner.from_beir(beir_dir, split)
    else:
        from studio.store.gold import gold_set

        held_out = runner.training_queries(exclude_train) if exclude_train else None
        evalset = runner.from_gold(gold_set(ctx.open(existing=True)), held_out)
    report, comparisons = evaluate_models(evalset, models_, cutoffs, mode=mode, weights=mode_weights,
                                          reranker=reranker, rerank_top=rerank_top,
                                          include_first_stage=not rerank_only, run_out=run_out)
    written = []
    if html_out:
        from studio.evaluation.export import write_html

        written.append(write_html(report, html_out, lang))
    if csv_out:
        from studio.evaluation.export import write_csv, write_queries_csv

        written.append(write_csv(report, csv_out))
        written.append(write_queries_csv(report, csv_out.with_name(csv_out.stem + ".queries.csv"), evalset.queries))
    for path in written:
        click.echo(f"wrote {path}", err=True)
    if as_json:
        emit(report, True, "")
        return
    click.echo(f"{report['evalset']}: {report['queries']} queries, {report['documents']} documents")
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
    for line in warning_lines(report, "en"):
        click.echo("\n" + line)


@cli.group(invoke_without_command=True)
@json_option
@click.pass_context
def jobs(click_ctx: click.Context, as_json: bool) -> None:
    """List training jobs (`jobs cancel ID`, `jobs resume ID`)."""
    if click_ctx.invoked_subcommand is None:
        from studio.store import jobs as store_jobs
        from studio.training import jobs as training_jobs

        db = click_ctx.obj.open(existing=True)
        training_jobs.refresh_all(db)
        rows = store_jobs.list_jobs(db)
        emit(rows, as_json, "\n".join(
            f"{r['id']:>4}  {r['status']:<10} {r['task']:<9} {r['name']:<30} {r['created_at'][:19]}"
            + (f"  {r['error']}" if r["error"] else "") for r in rows) or "no jobs yet")


@jobs.command(name="cancel")
@click.argument("job_id", type=int)
@click.pass_obj
@friendly
def jobs_cancel(ctx: Context, job_id: int) -> None:
    """Stop a job after its current step, keeping the last checkpoint."""
    from studio.store import jobs as store_jobs
    from studio.training import jobs as training_jobs

    db = ctx.open(existing=True)
    status = store_jobs.get_job(db, job_id)["status"]
    if status not in ("queued", "running"):
        raise click.ClickException(f"job {job_id} has already ended ({status}): nothing to cancel")
    click.echo(f"job {job_id}: {training_jobs.cancel(db, job_id, actor='cli')['status']}")


@jobs.command(name="resume")
@click.argument("job_id", type=int)
@click.pass_obj
@friendly
def jobs_resume(ctx: Context, job_id: int) -> None:
    """Queue a failed or cancelled job again from its last checkpoint, and start it if there is room."""
    from studio.training import jobs as training_jobs

    db = ctx.open(existing=True)
    training_jobs.resume(db, job_id)
    started = training_jobs.start_queued(db)
    click.echo(f"job {job_id}: {'running' if job_id in started else 'queued'}")


@cli.group(invoke_without_command=True)
@json_option
@click.pass_context
def models(click_ctx: click.Context, as_json: bool) -> None:
    """List models in models/ with their problems (`models check PATH`, `models default NAME`, `models delete NAME`)."""
    if click_ctx.invoked_subcommand is None:
        from dataclasses import asdict

        from studio.i18n import t
        from studio.models.registry import scan

        infos = scan()
        if as_json:
            emit([asdict(i) for i in infos], True, "")
            return
        for info in infos:
            mark = "*" if info.is_default else " "
            click.echo(f"{mark} {info.name:<32} {info.kind:<9} {info.size_mb:>8.1f} MB  "
                       f"{'ok' if info.ok else 'PROBLEM'}  {', '.join(info.loads_with)}")
            for problem in info.problems:
                click.echo(f"    {problem.severity}: {t('models.problem_' + problem.code, 'en', **problem.params)}")


@models.command(name="check")
@click.argument("path")
@json_option
@friendly
def models_check(path: str, as_json: bool) -> None:
    """Validate a model folder's layout and load it with the library that fits (exit 1 on an error)."""
    from dataclasses import asdict

    from studio.i18n import t
    from studio.models.registry import check, resolve

    info = check(resolve(path))
    if as_json:
        emit(asdict(info), True, "")
    else:
        click.echo(f"{info.path}: {info.kind}, {info.size_mb:.1f} MB, loads with: {', '.join(info.loads_with) or '-'}")
        for problem in info.problems:
            click.echo(f"  {problem.severity}: {t('models.problem_' + problem.code, 'en', **problem.params)}")
    if not info.ok:
        sys.exit(1)


@models.command(name="default")
@click.argument("name")
@friendly
def models_default(name: str) -> None:
    """Make NAME the default model (used by pooling, mining and the demo views)."""
    from studio.models.registry import set_default

    set_default(name)
    click.echo(f"default model: {name}")


@models.command(name="delete")
@click.argument("name")
@click.confirmation_option(prompt="Delete this model folder?")
@friendly
def models_delete(name: str) -> None:
    """Delete models/NAME."""
    from studio.models.registry import delete

    delete(name)
    click.echo(f"deleted {name}")


@cli.group(invoke_without_command=True)
@json_option
@click.pass_context
def annotators(click_ctx: click.Context, as_json: bool) -> None:
    """List annotators, or add one / change a role (`annotators add NAME --role expert`)."""
    if click_ctx.invoked_subcommand is None:
        from studio.store.annotators import list_annotators

        rows = list_annotators(click_ctx.obj.open(existing=True))
        emit(rows, as_json, "\n".join(f"{pad(r['name'], 30)} {r['role']:<10} {r['ratings']} ratings" for r in rows)
             or "no annotators yet")


@annotators.command(name="add")
@click.argument("name")
@click.option("--role", type=click.Choice(["annotator", "expert", "admin"]),
              help="Role of a new person (default: annotator), or the new role of an existing one (unchanged "
                   "without --role).")
@click.pass_obj
@friendly
def annotators_add(ctx: Context, name: str, role: str | None) -> None:
    """Add an annotator, or change the role of an existing one."""
    from studio.store.annotators import ensure_annotator, find_annotator, set_role

    db = ctx.open()
    existing = find_annotator(db, name)
    if existing is None:
        row = ensure_annotator(db, name, role or "annotator")
    elif role is None or role == existing["role"]:
        row = existing
        click.echo(f"{row['name']} is already on the team", err=True)
    else:
        row = set_role(db, name, role)
    click.echo(f"{row['name']}: {row['role']}")


@cli.command()
@click.pass_obj
@friendly
def demo(ctx: Context) -> None:
    """Load the bundled bilingual medical demo project into an empty database."""
    from studio.demo import load_demo

    s = load_demo(ctx.open())
    click.echo(f"demo loaded into {ctx.db_path}: {s.pairs} pairs, {s.documents} documents, "
               f"{s.queries} queries, {s.ratings} ratings")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=7860, show_default=True)
@click.option("--share", is_flag=True, help="Gradio share link (requires --auth).")
@click.option("--auth", help="user:password[,user:password...] for logging in.")
@click.pass_obj
def serve(ctx: Context, host: str, port: int, share: bool, auth: str | None) -> None:
    """Start the web app (the same as `python studio.py`)."""
    from studio.ui.app import launch

    launch(db_path=ctx.db_path, host=host, port=port, share=share, auth=auth)


def main() -> None:
    cli(prog_name="studio")


if __name__ == "__main__":
    sys.exit(main())
