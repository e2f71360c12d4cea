"""Evaluate: base vs fine-tuned on a BEIR folder or the database's gold labels, with significance; optional BGE-M3
scoring modes and a reranker step; HTML/CSV downloads and an embedding map."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd

from studio.config import DEMO_DIR, EXPORTS_DIR
from studio.errors import StudioError
from studio.evaluation import embedding_map, export, runner
from studio.evaluation.metrics import parse_cutoffs
from studio.evaluation.report import evaluate_models, sample_size_line, significance_line, warning_lines
from studio.i18n import t
from studio.models.registry import get_default, scan, trained_on
from studio.store.gold import gold_set
from studio.ui import charts, render
from studio.ui.context import UIContext, error_text
from studio.ui.tabs.train import training_files

HEADLINE = list(export.HEADLINE)
_KIND_KEYS = {"model": "evaluate.kind_model", "reranker": "evaluate.kind_reranker"}


def comparison_table(report: dict, lang: str) -> pd.DataFrame:
    """One row per comparison × metric; a comparison whose headline metric drops is marked ⚠, a significant
    change ★ next to its p-value."""
    rows = []
    for comparison in report["comparisons"]:
        model = ("⚠ " if comparison.get("worse") else "") + comparison["model"]
        kind = t(_KIND_KEYS.get(comparison.get("kind", "model"), "evaluate.kind_model"), lang)
        for row in comparison["rows"]:
            rel = "" if row["relative"] is None else f" ({row['relative']:+.1%})"
            rows.append((kind, comparison["baseline"], model, row["metric"], f"{row['a']:.4f}", f"{row['b']:.4f}",
                         f"{row['delta']:+.4f}{rel}", f"{row['p_holm']:.4f}" + (" ★" if row["significant"] else ""),
                         export.verdict(row, lang), f"{row['wins']}/{row['ties']}/{row['losses']}"))
    columns = [t("evaluate.col_kind", lang), t("evaluate.col_baseline_model", lang), t("evaluate.col_model", lang),
               t("evaluate.col_metric", lang), t("evaluate.col_base_value", lang), t("evaluate.col_model_value", lang),
               t("evaluate.col_delta", lang), t("evaluate.col_p", lang), t("evaluate.col_verdict", lang),
               t("evaluate.col_wtl", lang)]
    return pd.DataFrame(rows, columns=columns)


def errors_table(report: dict, lang: str) -> pd.DataFrame:
    buckets = ("complete_failure", "partial_failure", "ranking_issue")
    columns = [t("evaluate.col_model", lang)] + [t(f"evaluate.bucket_{b}", lang) for b in buckets] + \
              [t("evaluate.col_qps", lang)]
    return pd.DataFrame([(m["model"], *[m["errors"][b] for b in buckets], m["timings"].get("queries_per_s"))
                         for m in report["models"]], columns=columns)


def load_evalset(ctx: UIContext, source: str, folder: str, split: str, exclude: str | None,
                 lang: str = "en") -> runner.EvalSet:
    """The evaluation set the form describes: a BEIR folder's split or the project's gold labels, without the
    queries of the training file `exclude`; its name says which, in `lang`."""
    held_out = runner.training_queries(exclude) if exclude else None
    folder = Path(folder or DEMO_DIR)
    name = f"{folder.name}/{split or 'test'}" if source == "beir" else t("evaluate.evalset_gold", lang)
    if held_out:
        name = t("evaluate.evalset_held_out", lang, evalset=name, file=Path(exclude).name)
    if source == "beir":
        return runner.from_beir(folder, split or "test", held_out, name=name)
    with ctx.db() as db:
        gold = gold_set(db)
    return runner.from_gold(gold, held_out, name=name)


def summary_html(report: dict, lang: str) -> str:
    """Done line, significance line (and why nothing can be significant on too few queries), then one red/amber
    line per comparison that makes ranking worse."""
    out = render.message(t("evaluate.done", lang, evalset=report["evalset"], queries=report["queries"],
                           documents=report["documents"]), "ok")
    significance = significance_line(report, lang)
    if significance:
        significant = any(r["significant"] for c in report["comparisons"] for r in c["rows"])
        out += render.message(significance, "ok" if significant else "warn")
    too_few = sample_size_line(report, lang)
    if too_few:
        out += render.message(too_few, "warn")
    for warning, line in zip(report["warnings"], warning_lines(report, lang)):
        out += render.message(line, "error" if warning["significant"] else "warn")
    if not report["comparisons"]:
        out += render.message(t("evaluate.add_model", lang), "info")
    return out


def export_files(report: dict, lang: str, queries: dict[str, str] | None = None, figure=None) -> tuple[str, ...]:
    """HTML report, metrics CSV and per-query CSV in a fresh folder under exports/; their paths."""
    EXPORTS_DIR.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="eval-", dir=EXPORTS_DIR))
    return (str(export.write_html(report, folder / "report.html", lang, embedding_map=figure)),
            str(export.write_csv(report, folder / "metrics.csv")),
            str(export.write_queries_csv(report, folder / "queries.csv", queries)))


def _downloads(paths: tuple[str, ...] | None) -> list:
    if paths is None:
        return [gr.update(value=None, interactive=False) for _ in range(3)]
    return [gr.update(value=p, interactive=True) for p in paths]


def run(ctx: UIContext, models: list[str], source: str, folder: str, split: str, exclude: str | None, ks: str,
        lang: str, mode: str = "dense", reranker: str | None = None, rerank_top: float = 20,
        progress=gr.Progress()) -> tuple:
    """Evaluate; returns summary, bars, comparison table, delta histogram, error table, report, three
    downloads (HTML, metrics CSV, per-query CSV) and the map's query choices."""
    try:
        cutoffs = parse_cutoffs(ks)
        if not models:
            raise StudioError("pick_models")
        evalset = load_evalset(ctx, source, folder, split, exclude, lang)
        step = {"compare": t("evaluate.progress_compare", lang)}  # the library's step names that are not models
        report, comparisons = evaluate_models(evalset, models, cutoffs, mode=mode or "dense",
                                              reranker=(reranker or "").strip() or None,
                                              rerank_top=int(rerank_top or 20),
                                              progress=lambda f, what: progress(f, desc=step.get(what, what)))
        first = next((c for c, e in zip(comparisons, report["comparisons"]) if e["kind"] == "model"),
                     comparisons[0] if comparisons else None)
        delta = charts.delta_histogram(first.per_query_delta, lang) if first else None
        picked = embedding_map.sample(evalset).query_ids
        choices = [(f"{q} · {evalset.queries[q][:60]}", q) for q in picked]
        return (summary_html(report, lang), charts.metric_bars(report, export.headline_metrics(report), lang),
                comparison_table(report, lang), delta, errors_table(report, lang), report,
                *_downloads(export_files(report, lang, evalset.queries)), gr.update(choices=choices, value=[]))
    except Exception as exc:
        return (render.message(error_text(exc, lang), "error"), None, None, None, None, None, *_downloads(None),
                gr.update(choices=[], value=[]))


def draw_map(ctx: UIContext, models: list[str], source: str, folder: str, split: str, exclude: str | None,
             picked: list[str] | None, report: dict | None, lang: str) -> tuple:
    """The embedding map of the baseline and the last model; rewrites the HTML report with it when there is one.

    Returns the figure, a status line and the HTML download.
    """
    try:
        if not models:
            raise StudioError("pick_models")
        evalset = load_evalset(ctx, source, folder, split, exclude, lang)
        panels = embedding_map.build_maps(evalset, [models[0], models[-1]], picked or None)
        figure = charts.embedding_map(panels, lang)
        n_docs = sum(k == "document" for k in panels[0].kinds)
        status = render.message(t("evaluate.map_done", lang, queries=len(panels[0].kinds) - n_docs,
                                  documents=n_docs), "ok")
        html_file = gr.update()
        if report and report.get("models"):
            html_file = _downloads(export_files(report, lang, evalset.queries, figure))[0]
        else:
            status += render.message(t("evaluate.run_first", lang), "warn")
        return figure, status, html_file
    except Exception as exc:
        return None, render.message(error_text(exc, lang), "error"), gr.update()


def _export_name(path: str) -> str:
    """A training file as the dropdown shows it: relative to the exports folder, where it normally is."""
    try:
        return str(Path(path).relative_to(EXPORTS_DIR))
    except ValueError:
        return path


def reranker_choices(lang: str, infos: list | None = None) -> list[tuple[str, str]]:
    """"none" plus every usable reranker in models/ (`infos`: a registry scan, made here when None)."""
    infos = scan() if infos is None else infos
    return [(t("evaluate.no_reranker", lang), "")] + [(i.name, i.name) for i in infos if i.ok and i.kind == "reranker"]


def first_models(names: list[str], starred: str | None = None) -> list[str]:
    """What ⑧ offers to compare before the user picks: the embedded model as the baseline, and the default model (★)
    beside it when another one is set — usually the fine-tune the analyst wants to judge."""
    starred = get_default() if starred is None else starred
    return ["default"] + ([starred] if starred != "default" and starred in names else [])


def suggested_exclusion(models: list[str] | None, source: str, current: str | None) -> str | None:
    """What "leave out the queries of" should hold: on the project's gold labels with nothing left out yet, the
    training file of the last picked studio-trained model (scored on its own training queries it would look better
    than it is: report.training_overlap); otherwise what the user chose."""
    if source != "db" or current:
        return current
    return next((files[0] for files in map(trained_on, reversed(models or [])) if files), current)


def _show_results(report: dict | None) -> tuple:
    """Results once a run has a report; the comparison parts only when it compared models."""
    compared = bool(report and report.get("comparisons"))
    return gr.update(visible=bool(report)), gr.update(visible=compared), gr.update(visible=compared)


def build(ctx: UIContext) -> dict:
    i18n = ctx.i18n
    gr.Markdown(i18n("evaluate.intro"))
    with gr.Row():
        models = gr.Dropdown(choices=["default"], value=[], multiselect=True, label=i18n("evaluate.models"),
                             info=i18n("evaluate.models_info"), scale=3)
        ks = gr.Textbox("1,5,10,20", label=i18n("evaluate.ks"), scale=1)
    with gr.Row():
        source = gr.Radio([(i18n("evaluate.source_beir"), "beir"), (i18n("evaluate.source_db"), "db")],
                          value="beir", label=i18n("evaluate.source"))
        folder = gr.Textbox(str(DEMO_DIR), label=i18n("evaluate.folder"))
        split = gr.Textbox("test", label=i18n("import.split"))
        exclude = gr.Dropdown(choices=[], label=i18n("evaluate.exclude"), info=i18n("evaluate.exclude_info"),
                              allow_custom_value=True)  # a training file outside exports/ can be typed
    with gr.Row():
        mode = gr.Radio([(i18n("evaluate.mode_dense"), "dense"), (i18n("evaluate.mode_sparse"), "sparse"),
                         (i18n("evaluate.mode_colbert"), "colbert"), (i18n("evaluate.mode_weighted"), "weighted")],
                        value="dense", label=i18n("evaluate.mode"), info=i18n("evaluate.mode_info"), scale=2)
        reranker = gr.Dropdown(choices=[(i18n("evaluate.no_reranker"), "")], value="", allow_custom_value=True,
                               label=i18n("evaluate.reranker"), info=i18n("evaluate.reranker_info"), scale=2)
        rerank_top = gr.Slider(5, 100, value=20, step=5, label=i18n("evaluate.rerank_top"), scale=1)
    run_btn = gr.Button(i18n("evaluate.run"), variant="primary", elem_id="rs-eval-run")
    summary = gr.HTML()
    with gr.Column(visible=False, elem_id="rs-eval-results") as results:  # shown once a run has a report
        with gr.Row():
            bars = gr.Plot(show_label=False)
            delta = gr.Plot(show_label=False)  # per-query change; hidden with a single model (nothing to compare)
        # Widths set here: measured from the cells alone, Gradio breaks the longer headers letter by letter.
        table = gr.Dataframe(label=i18n("evaluate.comparison"), interactive=False, wrap=True, max_height=560,
                             column_widths=["14%", "9%", "13%", "8%", "7%", "7%", "13%", "9%", "9%", "11%"],
                             elem_id="rs-eval-table")
        errors = gr.Dataframe(label=i18n("evaluate.errors"), interactive=False, wrap=True,
                              column_widths=["21%", "23%", "23%", "23%", "10%"], elem_id="rs-eval-errors")
        with gr.Row():
            html_file = gr.DownloadButton(i18n("evaluate.download_html"), interactive=False, elem_id="rs-eval-html")
            csv_file = gr.DownloadButton(i18n("evaluate.download_csv"), interactive=False)
            queries_file = gr.DownloadButton(i18n("evaluate.download_queries"), interactive=False)
        with gr.Accordion(i18n("evaluate.map"), open=False):
            gr.Markdown(i18n("evaluate.map_note"))
            picked = gr.Dropdown(choices=[], value=[], multiselect=True, label=i18n("evaluate.map_pick"))
            map_btn = gr.Button(i18n("evaluate.map_run"))
            map_status = gr.HTML()
            map_plot = gr.Plot(show_label=False)
        with gr.Accordion(i18n("evaluate.raw"), open=False):
            raw = gr.JSON()
    form = [models, source, folder, split, exclude]
    for picker in (models, source):
        picker.change(suggested_exclusion, [models, source, exclude], exclude, show_progress="hidden")
    run_btn.click(lambda *a, progress=gr.Progress(): run(ctx, *a, progress=progress),
                  [*form, ks, ctx.lang, mode, reranker, rerank_top],
                  [summary, bars, table, delta, errors, raw, html_file, csv_file, queries_file, picked],
                  concurrency_limit=1).then(_show_results, raw, [results, delta, table], show_progress="hidden")
    map_btn.click(lambda *a: draw_map(ctx, *a), [*form, picked, raw, ctx.lang], [map_plot, map_status, html_file],
                  concurrency_limit=1)

    def refresh(current: list[str] | None, current_reranker: str | None, lang: str):
        infos = scan()
        names = [i.name for i in infos if i.ok and i.kind != "reranker"]
        return gr.update(choices=names, value=[n for n in (current or []) if n in names] or first_models(names)), \
            gr.update(choices=[(_export_name(f), f) for f in training_files()]), \
            gr.update(choices=reranker_choices(lang, infos), value=current_reranker or "")

    return {"refresh": (refresh, [models, reranker, ctx.lang], [models, exclude, reranker])}
