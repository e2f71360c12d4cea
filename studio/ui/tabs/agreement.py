"""Agreement: Cohen's kappa per annotator pair and pooled, the 0.6 gate, confusion matrix, disagreements — and the
annotator report (per person speed, control accuracy, κ, leniency, flags and drift; model raters beside them).

Experts and admins see both. An annotator opens ③ for their own line of the annotator report alone (up to yesterday,
see :mod:`studio.actions.raters`): the agreement part stays hidden for them, unasked (:func:`open_tab`)."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from studio.actions import agree, raters
from studio.actions.base import preloaded
from studio.config import KAPPA_GATE
from studio.errors import StudioError
from studio.i18n import t
from studio.ui import charts, render
from studio.ui.context import UIContext, error_text
from studio.ui.tabs import model_rater


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


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _num(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def flag_words(lang: str) -> dict[str, str]:
    """Each flag of the report as readable words in `lang`."""
    return {"low_control_accuracy": t("agreement.flag_low_control_accuracy", lang),
            "fast": t("agreement.flag_fast", lang), "lenient": t("agreement.flag_lenient", lang),
            "strict": t("agreement.flag_strict", lang),
            "failed_qualification": t("agreement.flag_failed_qualification", lang)}


def annotator_table(data: dict, lang: str) -> pd.DataFrame:
    """One row per person (and model rater): flags in words, κ against the others as ``name κ (n)``."""
    words = flag_words(lang)
    rows = []
    for a in data["annotators"]:
        ci = a["control_accuracy_ci"]
        accuracy = _pct(a["control_accuracy"]) + ("" if ci is None else f" [{ci[0]:.0%}–{ci[1]:.0%}]")
        gold = a["kappa_vs_gold"]
        share = a["label_share"]
        rows.append({
            t("agreement.ann_col_name", lang): a["name"] if a["kind"] == "person"
            else f"{a['name']} ({t('agreement.ann_model', lang)})",
            t("agreement.ann_col_ratings", lang): a["ratings"],
            t("agreement.ann_col_skips", lang): a["skips"],
            t("agreement.ann_col_seconds", lang): _num(a["median_seconds"], ".1f"),
            t("agreement.ann_col_controls", lang): a["control_answers"],
            t("agreement.ann_col_accuracy", lang): accuracy,
            t("agreement.ann_col_gold", lang): f"{_num(gold['kappa'])} (n={gold['n']})",
            t("agreement.ann_col_leniency", lang): _num(a["leniency"], "+.2f"),
            t("agreement.ann_col_others", lang): " · ".join(
                f"{name} {_num(k['kappa'])} (n={k['n']})" for name, k in a["kappa_vs_others"].items()) or "—",
            t("agreement.ann_col_labels", lang): "—" if share is None else
            f"{share['0']:.0%} / {share['1']:.0%} / {share['2']:.0%}",
            t("agreement.ann_col_flags", lang): ", ".join(words[f] for f in a["flags"]) or "✓",
        })
    return pd.DataFrame(rows)


def annotator_notes(data: dict, lang: str) -> str:
    """The team's figures and what each flag means, with the thresholds in force (Markdown)."""
    team, settings = data["team"], data["settings"]
    share = team["label_share"]
    lines = [t("agreement.ann_team", lang, seconds=_num(team["median_seconds"], ".1f"),
               labels="—" if share is None else f"{share['0']:.0%} / {share['1']:.0%} / {share['2']:.0%}"), ""]
    words = flag_words(lang)
    params = {"min_items": team["min_items"], "lean": team["lean"],
              "min_accuracy": f"{settings['min_accuracy']:.0%}", "pass_mark": f"{settings['pass_mark']:.0%}",
              "first": settings["qualify_first"]}
    meanings = {"low_control_accuracy": t("agreement.flag_help_low_control_accuracy", lang, **params),
                "fast": t("agreement.flag_help_fast", lang, **params),
                "lenient": t("agreement.flag_help_lenient", lang, **params),
                "strict": t("agreement.flag_help_strict", lang, **params),
                "failed_qualification": t("agreement.flag_help_failed_qualification", lang, **params)}
    lines += [f"- **{words[flag]}**: {meanings[flag]}" for flag in raters.FLAGS
              if flag != "failed_qualification" or settings["qualify_first"] > 0]
    lines += ["", t("agreement.ann_definitions", lang)]
    return "\n".join(lines)


def annotators_refresh(ctx: UIContext, lang: str, request: gr.Request | None = None) -> tuple:
    """The annotator report: everyone, live, for an expert or admin; an annotator's own line alone, up to yesterday
    (as the action gives it: see :mod:`studio.actions.raters`), said above it."""
    try:
        report = raters.annotator_report(ctx.project, ctx.actor(request))
    except StudioError as exc:
        return render.message(error_text(exc, lang), "error"), None, "", None
    data = report.to_json()
    as_of = None if report.as_of is None else raters.as_of_label(report.as_of)
    if not data["annotators"]:
        empty = t("agreement.ann_empty", lang) if as_of is None else t("agreement.ann_own_empty", lang, as_of=as_of)
        return render.message(empty, "info"), None, "", None
    intro = "" if as_of is None else render.message(t("agreement.ann_as_of", lang, as_of=as_of), "info")
    drift = render.chart(raters.drift_figure(report.drift, lang, block=report.block), lang) if report.drift else None
    return intro, annotator_table(data, lang), annotator_notes(data, lang), drift


def open_tab(ctx: UIContext, lang: str, request: gr.Request | None = None) -> tuple:
    """What ③ shows when it is opened: for whoever may read the agreement report (experts, admins), that report and
    the annotator report; for an annotator, only their own annotator line — the agreement part stays hidden and is
    not asked for, so no refusal is shown (or audited). Outputs: :func:`refresh`'s, the agreement part's
    visibility, then :func:`annotators_refresh`'s."""
    try:
        allowed = ctx.actor(request).can(agree.agreement.role)
    except StudioError:  # not signed in (any more): the agreement part says so, as it always has
        allowed = True
    if allowed:
        head = refresh(ctx, lang, None, request) + (gr.update(visible=True),)
    else:
        head = ("", None, None, gr.update(choices=[], value=None), None, None, gr.update(visible=False),
                gr.update(visible=False))
    return head + annotators_refresh(ctx, lang, request)


def build(ctx: UIContext) -> dict:
    i18n = ctx.i18n
    # The agreement report (experts and admins). With sign-in it starts hidden, until opening the tab says who is
    # there: an annotator sees ③ for their own line in the annotator report below, and nothing of this part.
    with gr.Column(visible=not ctx.auth, elem_id="rs-agreement") as agreement_part:
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
        # A model as a third rater, measured against gold and each person (experts read it, admins run it).
        with gr.Accordion(i18n("judge.panel_title"), open=False, elem_id="rs-model-rater") as judge_box:
            judge_parts = model_rater.build(ctx)
    judge_load, judge_inputs, judge_outputs = judge_parts["refresh"]
    judge_box.expand(preloaded(judge_load), judge_inputs, judge_outputs, show_progress="hidden",
                     api_visibility="private")
    outputs = [card, bars, table, which, heat, dis, details]
    with gr.Column(elem_id="rs-annotators"):  # the annotator report: every role (an annotator: own line, lagging)
        gr.Markdown(i18n("agreement.ann_title"))
        ann_card = gr.HTML()
        ann_table = gr.Dataframe(label=i18n("agreement.ann_title_short"), show_label=False, interactive=False,
                                 wrap=True, elem_id="rs-annotators-table")
        ann_notes = gr.Markdown()
        ann_drift = gr.Plot(label=i18n("agreement.ann_drift"), show_label=False)
    ann_outputs = [ann_card, ann_table, ann_notes, ann_drift]

    def on_refresh(lg: str, w: str | None, request: gr.Request):
        return refresh(ctx, lg, w, request)

    def on_annotators(lg: str, request: gr.Request):
        return annotators_refresh(ctx, lg, request)

    def on_open(lg: str, request: gr.Request):
        return open_tab(ctx, lg, request)

    refresh_btn.click(on_refresh, [ctx.lang, which], outputs, api_name="agreement_report").then(
        on_annotators, [ctx.lang], ann_outputs, api_visibility="private")
    which.input(on_refresh, [ctx.lang, which], outputs, api_visibility="private")
    return {"card": card, "annotators": ann_table, "agreement": agreement_part,
            "refresh": (on_open, [ctx.lang], [*outputs, agreement_part, *ann_outputs])}
