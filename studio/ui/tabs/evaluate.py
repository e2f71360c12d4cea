"""Evaluate: base vs fine-tuned on a BEIR folder or the database's gold labels, with significance."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from studio.config import DEMO_DIR
from studio.evaluation import runner
from studio.evaluation.report import evaluate_models
from studio.i18n import t
from studio.models.registry import scan
from studio.store.gold import gold_set
from studio.ui import charts, render
from studio.ui.context import UIContext, error_text
from studio.ui.tabs.train import training_files

HEADLINE = ["ndcg@10", "mrr@10", "recall@10", "p@5"]


def comparison_table(report: dict, lang: str) -> pd.DataFrame:
    rows = []
    for comparison in report["comparisons"]:
        for row in comparison["rows"]:
            rel = "" if row["relative"] is None else f"{row['relative']:+.1%}"
            rows.append((comparison["model"], row["metric"], f"{row['a']:.4f}", f"{row['b']:.4f}",
                         f"{row['delta']:+.4f}", rel, f"{row['p_holm']:.4f}", "★" if row["significant"] else "",
                         f"{row['wins']}/{row['ties']}/{row['losses']}"))
    columns = [t("evaluate.col_model", lang), t("evaluate.col_metric", lang), t("evaluate.col_base", lang),
               t("evaluate.col_tuned", lang), "Δ", t("evaluate.col_relative", lang), t("evaluate.col_p", lang),
               t("evaluate.col_significant", lang), t("evaluate.col_wtl", lang)]
    return pd.DataFrame(rows, columns=columns)


def errors_table(report: dict, lang: str) -> pd.DataFrame:
    buckets = ("complete_failure", "partial_failure", "ranking_issue")
    columns = [t("evaluate.col_model", lang)] + [t(f"evaluate.bucket_{b}", lang) for b in buckets] + \
              [t("evaluate.col_qps", lang)]
    return pd.DataFrame([(m["model"], *[m["errors"][b] for b in buckets], m["timings"].get("queries_per_s"))
                         for m in report["models"]], columns=columns)


def run(ctx: UIContext, models: list[str], source: str, folder: str, split: str, exclude: str | None, ks: str,
        lang: str, progress=gr.Progress()) -> tuple:
    try:
        cutoffs = tuple(int(k) for k in (ks or "1,5,10,20").split(","))
        if not models:
            raise ValueError(t("evaluate.pick_models", lang))
        if source == "beir":
            evalset = runner.from_beir(folder or DEMO_DIR, split or "test")
        else:
            with ctx.db() as db:
                gold = gold_set(db)
            evalset = runner.from_gold(gold, runner.training_queries(exclude) if exclude else None)
        report, comparisons = evaluate_models(evalset, models, cutoffs,
                                              progress=lambda f, what: progress(f, desc=what))
        shown = [m for m in HEADLINE if m in report["models"][0]["metrics"]]
        summary = render.message(t("evaluate.done", lang, evalset=report["evalset"], queries=report["queries"],
                                   documents=report["documents"]), "ok")
        significant = [r for c in report["comparisons"] for r in c["rows"] if r["significant"]]
        if report["comparisons"]:
            summary += render.message(t("evaluate.significant", lang, n=len(significant),
                                        total=sum(len(c["rows"]) for c in report["comparisons"])),
                                      "ok" if significant else "warn")
        delta = charts.delta_histogram(comparisons[0].per_query_delta, lang) if comparisons else None
        return (summary, charts.metric_bars(report, shown, lang), comparison_table(report, lang), delta,
                errors_table(report, lang), report)
    except Exception as exc:
        return render.message(error_text(exc, lang), "error"), None, None, None, None, None


def build(ctx: UIContext) -> dict:
    i18n = ctx.i18n
    gr.Markdown(i18n("evaluate.intro"))
    with gr.Row():
        models = gr.Dropdown(choices=["default"], value=["default"], multiselect=True, label=i18n("evaluate.models"),
                             info=i18n("evaluate.models_info"), scale=3)
        ks = gr.Textbox("1,5,10,20", label=i18n("evaluate.ks"), scale=1)
    with gr.Row():
        source = gr.Radio([(i18n("evaluate.source_beir"), "beir"), (i18n("evaluate.source_db"), "db")],
                          value="beir", label=i18n("evaluate.source"))
        folder = gr.Textbox(str(DEMO_DIR), label=i18n("evaluate.folder"))
        split = gr.Textbox("test", label=i18n("import.split"))
        exclude = gr.Dropdown(choices=[], label=i18n("evaluate.exclude"), info=i18n("evaluate.exclude_info"))
    run_btn = gr.Button(i18n("evaluate.run"), variant="primary", elem_id="rs-eval-run")
    summary = gr.HTML()
    with gr.Row():
        bars = gr.Plot(show_label=False)
        delta = gr.Plot(show_label=False)
    table = gr.Dataframe(label=i18n("evaluate.comparison"), interactive=False, wrap=True)
    errors = gr.Dataframe(label=i18n("evaluate.errors"), interactive=False)
    with gr.Accordion(i18n("evaluate.raw"), open=False):
        raw = gr.JSON()
    run_btn.click(lambda *a, progress=gr.Progress(): run(ctx, *a, progress=progress),
                  [models, source, folder, split, exclude, ks, ctx.lang], [summary, bars, table, delta, errors, raw],
                  concurrency_limit=1)

    def refresh(current: list[str] | None):
        names = [i.name for i in scan() if i.ok and i.kind != "reranker"]
        return gr.update(choices=names, value=[n for n in (current or ["default"]) if n in names] or ["default"]), \
            gr.update(choices=training_files())

    return {"refresh": (refresh, [models], [models, exclude])}
