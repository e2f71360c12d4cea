"""Data: the quality report of the gold labels, and the triplet export for fine-tuning."""

from __future__ import annotations

import json
import time
from pathlib import Path

import gradio as gr

from studio.config import EXPORTS_DIR
from studio.dataset.quality import THRESHOLDS, quality_report
from studio.dataset.triplets import ExportOptions, export_triplets
from studio.i18n import t
from studio.models.registry import get_default
from studio.store.adjudication import pooled_kappa
from studio.store.gold import gold_set
from studio.ui import charts, render
from studio.ui.context import UIContext, error_text


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def report_card(report, lang: str) -> str:
    c = report.counts
    ok, bad = "rs-pass", "rs-fail"
    tiles = render.stat_tiles([
        (t("data.queries", lang), str(c["queries"]), ""),
        (t("rating.2", lang), str(c["positives"]), ""),
        (t("rating.1", lang), str(c["partials"]), ""),
        (t("rating.0", lang), str(c["negatives"]), ""),
        (t("data.triplets", lang), str(report.triplets), bad if report.triplets < THRESHOLDS["min_triplets"] else ok),
        (t("data.duplicate_rate", lang), _pct(report.duplicate_rate),
         bad if report.duplicate_rate > THRESHOLDS["duplicate_rate"] else ok),
        (t("data.similarity", lang), _num(report.similarity_mean),
         bad if (report.similarity_mean or 0) > THRESHOLDS["pos_neg_similarity"] else ok),
        (t("data.kappa_gate", lang), _num(report.kappa), ok if report.gate_passed else bad),
    ])
    findings = "".join(render.message(t(f"quality.warn_{f.code}", lang, **f.params), "warn") for f in report.findings)
    return tiles + (findings or render.message(t("data.all_clear", lang), "ok"))


def run_quality(ctx: UIContext, model: str, lang: str, progress=gr.Progress()) -> tuple:
    try:
        with ctx.db() as db:
            gold = gold_set(db)
            kappa = pooled_kappa(db)
        report = quality_report(gold, kappa=kappa, model=model or "default",
                                progress=lambda f, stage: progress(f, desc=t(f"data.stage_{stage}", lang)))
        EXPORTS_DIR.mkdir(parents=True, exist_ok=True)
        out = EXPORTS_DIR / f"quality-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
        return (report_card(report, lang), charts.length_histogram(report.lengths, lang),
                charts.similarity_histogram(report.similarity_by_query, THRESHOLDS["pos_neg_similarity"], lang),
                str(out))
    except Exception as exc:
        return render.message(error_text(exc, lang), "error"), None, None, None


def default_export_path() -> str:
    return str(EXPORTS_DIR / time.strftime("%Y%m%d-%H%M%S") / "train.jsonl")


def run_export(ctx: UIContext, out: str, valid_fraction: float, hard_negatives: str, negatives: float, partial: str,
               seed: float, scores: str, prompt: str, model: str, lang: str, progress=gr.Progress()) -> tuple:
    try:
        options = ExportOptions(valid_fraction=float(valid_fraction), hard_negatives=hard_negatives,
                                negatives=int(negatives), partial=partial, seed=int(seed), scores=scores,
                                prompt=prompt or "", model=model or "default")
        with ctx.db() as db:
            gold = gold_set(db)
        result = export_triplets(gold, Path(out or default_export_path()), options,
                                 progress=lambda f, stage: progress(f, desc=t(f"data.stage_{stage}", lang)))
        c = result.counts
        message = render.message(t("data.exported", lang, path=str(result.train_path), train=c["train_lines"],
                                   valid=c["valid_lines"], annotated=c["annotated_negatives"],
                                   mined=c["mined_negatives"], random=c["random_negatives"]), "ok")
        message += "".join(render.message(text, "warn") for text in result.warning_texts(lang))
        files = [str(p) for p in (result.train_path, result.valid_path, result.csv_path, result.manifest_path) if p]
        with open(result.train_path, encoding="utf-8") as f:
            preview = [json.loads(line) for _, line in zip(range(2), f)]
        return message, files, preview, gr.update(value=default_export_path())
    except Exception as exc:
        return render.message(error_text(exc, lang), "error"), None, None, gr.update()


def build(ctx: UIContext) -> dict:
    i18n = ctx.i18n
    gr.Markdown(i18n("data.intro"))
    with gr.Row(equal_height=True):
        model = gr.Textbox(label=i18n("data.model"), value=get_default, info=i18n("data.model_info"), scale=3)
        check = gr.Button(i18n("data.run_quality"), variant="primary", scale=1, elem_id="rs-quality-run")
    card = gr.HTML(elem_id="rs-quality-card")
    # Result widgets stay hidden until there is something in them: empty plot frames read as broken.
    with gr.Column(visible=False) as quality_results:
        with gr.Row():
            lengths = gr.Plot(show_label=False)
            similarity = gr.Plot(show_label=False)
        report_file = gr.File(label=i18n("data.report_file"), interactive=False)
    gr.Markdown(i18n("data.export_title"))
    with gr.Row():
        out = gr.Textbox(label=i18n("data.out"), value=default_export_path, scale=3)
        hard = gr.Radio([(i18n(f"data.hn_{m}"), m) for m in ("none", "bm25", "dense", "hybrid")], value="hybrid",
                        label=i18n("data.hard_negatives"), scale=3)
    with gr.Row():
        valid = gr.Slider(0, 0.45, value=0.1, step=0.05, label=i18n("data.valid_fraction"))
        negatives = gr.Slider(1, 32, value=7, step=1, label=i18n("data.negatives"))
        seed = gr.Number(value=42, precision=0, label=i18n("data.seed"))
    with gr.Row():
        partial = gr.Radio([(i18n(f"data.partial_{p}"), p) for p in ("drop", "positive")], value="drop",
                           label=i18n("data.partial"))
        scores = gr.Radio([(i18n(f"data.scores_{s}"), s) for s in ("none", "ratings")], value="none",
                          label=i18n("data.scores"))
        prompt = gr.Textbox(label=i18n("data.prompt"), placeholder=i18n("data.prompt_placeholder"))
    export_btn = gr.Button(i18n("data.export"), variant="primary", elem_id="rs-export-run")
    export_msg = gr.HTML(elem_id="rs-export-message")
    with gr.Column(visible=False) as export_results:
        files = gr.File(label=i18n("data.files"), file_count="multiple", interactive=False)
        preview = gr.JSON(label=i18n("data.preview"))

    check.click(lambda m, lg, progress=gr.Progress(): run_quality(ctx, m, lg, progress), [model, ctx.lang],
                [card, lengths, similarity, report_file], concurrency_limit=1
                ).then(lambda f: gr.update(visible=bool(f)), [report_file], [quality_results], show_progress="hidden")
    export_btn.click(lambda *a, progress=gr.Progress(): run_export(ctx, *a, progress=progress),
                     [out, valid, hard, negatives, partial, seed, scores, prompt, model, ctx.lang],
                     [export_msg, files, preview, out], concurrency_limit=1
                     ).then(lambda f: gr.update(visible=bool(f)), [files], [export_results], show_progress="hidden")
    return {"card": card, "export": export_btn}
