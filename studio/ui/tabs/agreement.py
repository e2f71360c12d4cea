"""Agreement: Cohen's kappa per annotator pair and pooled, the 0.6 gate, confusion matrix, disagreements."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from studio.actions import agree
from studio.config import KAPPA_GATE
from studio.errors import StudioError
from studio.i18n import t
from studio.ui import charts, render
from studio.ui.context import UIContext, error_text


def fmt(value: float | None, lang: str, pct: bool = False) -> str:
    if value is None:
        return t("agreement.undefined", lang)
    return f"{value:.0%}" if pct else f"{value:.3f}"


def scorecard(report, lang: str) -> str:
    pooled = report.pooled
    empty = pooled.n == 0  # nothing to judge yet: neutral tiles and a pointer, not a failed gate
    gate = "" if empty else ("rs-pass" if pooled.passes_gate else "rs-fail")

    def shown(text: str) -> str:
        return "—" if empty else text

    tiles = render.stat_tiles([
        (t("agreement.pooled_kappa", lang), shown(fmt(pooled.kappa, lang)), gate),
        (t("agreement.band", lang), shown(t(f"band.{pooled.band}", lang)), gate),
        (t("agreement.observed", lang), shown(fmt(pooled.observed, lang, pct=True)), ""),
        (t("agreement.kappa_linear", lang), shown(fmt(pooled.kappa_linear, lang)), ""),
        (t("agreement.ac1", lang), shown(fmt(pooled.ac1, lang)), ""),
        (t("agreement.double_rated", lang), str(report.double_rated), ""),
    ])
    if empty:
        return tiles + render.message(t("agreement.no_overlap", lang), "info")
    gate_text = t("agreement.gate_pass" if pooled.passes_gate else "agreement.gate_fail", lang, gate=KAPPA_GATE)
    note = render.message(t("agreement.undefined_reason", lang), "warn") if pooled.kappa is None else ""
    return tiles + render.message(gate_text, "ok" if pooled.passes_gate else "error") + note


def pair_table(report, lang: str) -> pd.DataFrame:
    rows = [{
        t("agreement.col_pair", lang): " × ".join(s.annotators),
        "n": s.n,
        t("agreement.observed", lang): fmt(s.observed, lang, pct=True),
        "κ": fmt(s.kappa, lang),
        t("agreement.kappa_linear", lang): fmt(s.kappa_linear, lang),
        t("agreement.kappa_quadratic", lang): fmt(s.kappa_quadratic, lang),
        "AC1": fmt(s.ac1, lang),
        t("agreement.band", lang): t(f"band.{s.band}", lang),
        t("agreement.col_gate", lang): "✓" if s.passes_gate else "✗",
    } for s in report.by_pair]
    return pd.DataFrame(rows)


def disagreement_table(rows: list[dict], lang: str) -> pd.DataFrame:
    return pd.DataFrame([{
        "#": r["pair_id"],
        t("card.query", lang): r["query"],
        t("card.document", lang): (r["title"] or r["document"])[:80],
        t("agreement.col_ratings", lang): f"{r['annotator_a']}: {r['rating_a']} · {r['annotator_b']}: {r['rating_b']}",
        t("agreement.col_decision", lang): "" if r["decision"] is None else str(r["decision"]),
    } for r in rows])


def pair_choices(report, lang: str) -> list[tuple[str, str]]:
    return [(t("agreement.pooled", lang), "*")] + [(" × ".join(s.annotators), "|".join(s.annotators))
                                                   for s in report.by_pair]


def pick(report, key: str | None):
    for s in report.by_pair:
        if "|".join(s.annotators) == key:
            return s
    return report.pooled


def refresh(ctx: UIContext, lang: str, which: str | None = None, request: gr.Request | None = None) -> tuple:
    """Everything the tab shows; for someone who may not see it (an annotator), the refusal and nothing else."""
    try:
        result = agree.agreement(ctx.project, ctx.actor(request))
    except StudioError as exc:
        return (render.message(error_text(exc, lang), "error"), None, None, gr.update(choices=[], value=None), None,
                None, gr.update(visible=False))
    report = result.report
    chosen = pick(report, which)
    key = "*" if chosen is report.pooled else "|".join(chosen.annotators)
    return (scorecard(report, lang), charts.kappa_bars(report.by_pair, lang),
            pair_table(report, lang), gr.update(choices=pair_choices(report, lang), value=key),
            charts.confusion_heatmap(chosen, lang),
            disagreement_table(result.disagreements, lang), gr.update(visible=report.double_rated > 0))


def build(ctx: UIContext) -> dict:
    i18n = ctx.i18n
    with gr.Row():
        gr.Markdown(i18n("agreement.intro"))
        refresh_btn = gr.Button(i18n("common.refresh"), size="sm", scale=0, elem_id="rs-agreement-refresh")
    card = gr.HTML(elem_id="rs-agreement-card")
    with gr.Column(visible=False) as details:  # charts and tables once some pair has two ratings
        with gr.Row():
            bars = gr.Plot(label=i18n("agreement.kappa_title"), show_label=False)
            with gr.Column():
                which = gr.Dropdown(label=i18n("agreement.matrix_for"), choices=[], elem_id="rs-matrix-for")
                heat = gr.Plot(label=i18n("agreement.confusion_title"), show_label=False)
        # Room for every header on one line ("gate" broke as "gat/e" in a column sized to its ✓).
        table = gr.Dataframe(label=i18n("agreement.by_pair"), interactive=False, wrap=True,
                             elem_id="rs-agreement-pairs",
                             column_widths=["24%", "5%", "11%", "7%", "11%", "12%", "7%", "13%", "10%"])
        gr.Markdown(i18n("agreement.disagreements_title"))
        dis = gr.Dataframe(label=i18n("agreement.disagreements_title"), show_label=False, interactive=False,
                           wrap=True, max_height=360, column_widths=["7%", "33%", "28%", "22%", "10%"])
    outputs = [card, bars, table, which, heat, dis, details]

    def on_refresh(lg: str, w: str | None, request: gr.Request):
        return refresh(ctx, lg, w, request)

    def on_open(lg: str, request: gr.Request):
        return refresh(ctx, lg, None, request)

    refresh_btn.click(on_refresh, [ctx.lang, which], outputs, api_name="agreement_report")
    which.input(on_refresh, [ctx.lang, which], outputs, api_visibility="private")
    return {"card": card, "refresh": (on_open, [ctx.lang], outputs)}
