"""Data: the quality report of the gold labels, and the triplet export for fine-tuning."""

from __future__ import annotations

import json

import gradio as gr

from studio.actions import data as act
from studio.actions import files as page_files
from studio.actions.models import optional_model_field
from studio.errors import StudioError
from studio.i18n import t
from studio.ui import charts, render
from studio.ui.context import UIContext, error_text


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def report_card(report, thresholds: dict, lang: str) -> str:
    c = report.counts
    ok, bad = "rs-pass", "rs-fail"
    tiles = render.stat_tiles([
        (t("data.queries", lang), str(c["queries"]), ""),
        (t("rating.2", lang), str(c["positives"]), ""),
        (t("rating.1", lang), str(c["partials"]), ""),
        (t("rating.0", lang), str(c["negatives"]), ""),
        (t("data.triplets", lang), str(report.triplets), bad if report.triplets < thresholds["min_triplets"] else ok),
        (t("data.duplicate_rate", lang), _pct(report.duplicate_rate),
         bad if report.duplicate_rate > thresholds["duplicate_rate"] else ok),
        (t("data.similarity", lang), _num(report.similarity_mean),
         bad if (report.similarity_mean or 0) > thresholds["pos_neg_similarity"] else ok),
        (t("data.kappa_gate", lang), _num(report.kappa), ok if report.gate_passed else bad),
    ])
    findings = "".join(render.message(t(render.counted(f"quality.warn_{f.code}", f.params.get("count")), lang,
                                        **f.params), "warn") for f in report.findings)
    return tiles + (findings or render.message(t("data.all_clear", lang), "ok"))


def _stage(progress, lang: str):
    """The actions' progress(fraction, stage) as a Gradio progress bar with the stage named in `lang`."""
    def report(fraction: float, stage: str) -> None:
        if progress is not None:
            progress(fraction, desc=t(f"data.stage_{stage}", lang))

    return report


def run_quality(ctx: UIContext, model: str, lang: str, progress=None, request: gr.Request | None = None) -> tuple:
    """The score card, the two charts and the saved JSON report; an empty model box means the default model (★)."""
    try:
        model = optional_model_field(model, field=t("data.model", lang))
        result = act.quality(ctx.project, ctx.actor(request), model, _stage(progress, lang),
                             out_path=act.default_quality_path())
        report = result.report
        return (report_card(report, result.thresholds, lang), charts.length_histogram(report.lengths, lang),
                charts.similarity_histogram(report.similarity_by_query, result.thresholds["pos_neg_similarity"],
                                            lang),
                str(result.path))
    except Exception as exc:
        return render.message(error_text(exc, lang), "error"), None, None, None


def run_export(ctx: UIContext, out: str, valid_fraction: float, hard_negatives: str, negatives: float, partial: str,
               seed: float, scores: str, prompt: str, model: str, lang: str, progress=None,
               request: gr.Request | None = None, test_fraction: float = 0.2) -> tuple:
    """Export triplets to `out`, a name inside exports/ (empty: the default ``<timestamp>/train.jsonl``)."""
    try:
        actor = ctx.actor(request)
        path = page_files.export_path(out, field=t("data.out", lang))
        result = act.export_triplets(ctx.project, actor, path, valid_fraction=float(valid_fraction),
                                     test_fraction=float(test_fraction),
                                     hard_negatives=hard_negatives, negatives=int(negatives), partial=partial,
                                     seed=int(seed), scores=scores, prompt=prompt or "",
                                     model=optional_model_field(model, field=t("data.model", lang)),
                                     progress=_stage(progress, lang))
        c = result.counts
        message = render.message(t("data.exported", lang, path=str(result.train_path), train=c["train_lines"],
                                   valid=c["valid_lines"], test=c["test_queries"], annotated=c["annotated_negatives"],
                                   mined=c["mined_negatives"], random=c["random_negatives"]), "ok")
        checked = result.manifest.get("checked_negatives") or {}
        if checked.get("queued"):
            message += render.message(t("data.exported_checked", lang, queued=checked["queued"],
                                        rated=checked["rated"], flipped=checked["flipped_to_positive"],
                                        confirmed=checked["confirmed_negative"], partial=checked["partial"]), "ok")
        message += "".join(render.message(text, "warn") for text in result.warning_texts(lang))
        files = [str(p) for p in (result.train_path, result.valid_path, result.csv_path, result.manifest_path) if p]
        with open(result.train_path, encoding="utf-8") as f:
            preview = [json.loads(line) for _, line in zip(range(2), f)]
        return message, files, preview, gr.update(value=act.default_export_name())
    except Exception as exc:
        return render.message(error_text(exc, lang), "error"), None, None, gr.update()


def refresh(ctx: UIContext, lang: str, request: gr.Request | None = None):
    """The model box's hint names the default model (★) that an empty box stands for; blank below admin."""
    try:
        name = act.model_for_data(ctx.project, ctx.actor(request))
    except StudioError:
        return gr.update(placeholder="")
    return gr.update(placeholder=t("data.model_placeholder", lang, name=name))


def build(ctx: UIContext) -> dict:
    i18n = ctx.i18n
    gr.Markdown(i18n("data.intro"))
    with gr.Row(equal_height=True):
        model = gr.Textbox(label=i18n("data.model"), placeholder=i18n("data.model_default"),
                           info=i18n("data.model_info"), scale=3)
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
        out = gr.Textbox(label=i18n("data.out"), info=i18n("data.out_info"), scale=3)
        hard = gr.Radio([(i18n(f"data.hn_{m}"), m) for m in ("none", "bm25", "dense", "hybrid")], value="hybrid",
                        label=i18n("data.hard_negatives"), scale=3)
    with gr.Row():
        valid = gr.Slider(0, 0.45, value=0.1, step=0.05, label=i18n("data.valid_fraction"))
        test = gr.Slider(0, 0.45, value=0.2, step=0.05, label=i18n("data.test_fraction"),
                         info=i18n("data.test_fraction_info"))
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

    def on_quality(model_: str, lang: str, request: gr.Request, progress=gr.Progress()):
        return run_quality(ctx, model_, lang, progress, request)

    def on_export(out_: str, valid_: float, test_: float, hard_: str, negatives_: float, partial_: str, seed_: float,
                  scores_: str, prompt_: str, model_: str, lang: str, request: gr.Request, progress=gr.Progress()):
        return run_export(ctx, out_, valid_, hard_, negatives_, partial_, seed_, scores_, prompt_, model_, lang,
                          progress, request, test_fraction=test_)

    def show_if(value):
        return gr.update(visible=bool(value))

    def on_refresh(lang: str, request: gr.Request):
        return refresh(ctx, lang, request)

    def fill_out():
        # A page-load step (private), not value=callable, which would be a public endpoint of its own.
        return act.default_export_name()

    check.click(on_quality, [model, ctx.lang], [card, lengths, similarity, report_file], api_name="data_quality",
                concurrency_limit=1
                ).then(show_if, [report_file], [quality_results], show_progress="hidden", api_visibility="private")
    export_btn.click(on_export, [out, valid, test, hard, negatives, partial, seed, scores, prompt, model, ctx.lang],
                     [export_msg, files, preview, out], api_name="data_export", concurrency_limit=1
                     ).then(show_if, [files], [export_results], show_progress="hidden", api_visibility="private")
    ctx.on_load.append((fill_out, [], [out]))
    return {"card": card, "export": export_btn, "refresh": (on_refresh, [ctx.lang], [model])}
