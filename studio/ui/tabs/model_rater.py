"""③'s model-rater panel: run a dense model, a reranker or an LLM endpoint as a blind third rater, see its κ
against gold and against each person, and use it — second looks in ④, triage of the queue — each undoable.

Running and using a rater is an admin's (the actions refuse anyone else); an expert sees the raters and their κ.
The lead mounts :func:`build` inside ③ and chains the returned ``refresh`` into the page's load.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from studio.actions import judge
from studio.actions import models as model_actions
from studio.actions.base import preloaded
from studio.i18n import t
from studio.ui import render
from studio.ui.context import UIContext, error_text

SHOWN_ROWS = 200  # judgments shown after a run (the CLI's --json has them all)
PAIR_LABELS = {"gold": "judge.pairs_gold", "queue": "judge.pairs_queue"}


def _kappa(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def rater_card(rater: dict | None, lang: str) -> str:
    """One rater's tiles: κ against gold (and how it was measured), against each person, second looks, triage."""
    if rater is None:
        return render.message(t("judge.no_raters", lang), "info")
    how = t("judge.on_cross_fitted" if rater["kappa_on"] == "cross-fitted" else "judge.on_blind", lang)
    tiles = render.stat_tiles([
        (t("judge.kappa_gold", lang), _kappa(rater["kappa_vs_gold"]), ""),
        (t("judge.kappa_pairs", lang), str(rater["kappa_pairs"]), ""),
        (t("judge.judged", lang), str(rater["judged"]), ""),
        (t("judge.second_looks_open", lang), str(rater["second_looks"]), ""),
        (t("judge.triage_back", lang), f"{rater['triage_back']} ({rater['triage_waiting']})", ""),
        (t("judge.triage_audit", lang), str(rater["triage_audit"]), ""),
    ])
    people = ", ".join(f"{who} {_kappa(v['kappa'])} ({v['pairs']})" for who, v in rater["kappa_vs_people"].items())
    lines = [t("judge.kappa_how", lang, how=how), t("judge.kappa_people", lang, people=people or "—")]
    if rater["unparsable"]:
        lines.append(t("judge.unparsable_line", lang, n=rater["unparsable"]))
    return tiles + render.message(" ".join(lines), "info")


def judgment_table(result: dict, lang: str) -> pd.DataFrame:
    return pd.DataFrame([{
        t("judge.col_query", lang): j["query_id"], t("judge.col_document", lang): j["doc_id"],
        t("judge.col_label", lang): t(f"rating.{j['label']}", lang),
        t("judge.col_score", lang): "" if j["score"] is None else f"{j['score']:.4f}",
    } for j in result["judgments"][:SHOWN_ROWS]])


def refresh(ctx: UIContext, lang: str, chosen: str | None = None, request: gr.Request | None = None) -> tuple:
    """(rater picker, its card, model choices) for whoever opens ③; a refusal for anyone below expert."""
    actor = ctx.actor(request)
    try:
        found = judge.list_raters(ctx.project, actor)
    except Exception as exc:
        return gr.update(choices=[], value=None), render.message(error_text(exc, lang), "error"), gr.update()
    names = [r["rater"] for r in found]
    pick = chosen if chosen in names else (names[-1] if names else None)
    try:
        c = model_actions.choices(ctx.project, actor)
        models = gr.update(choices=list(dict.fromkeys([c.starred, *c.embedders, *c.rerankers])))
    except Exception:
        models = gr.update()
    card = rater_card(next((r for r in found if r["rater"] == pick), None), lang)
    return gr.update(choices=names, value=pick), card, models


def run(ctx: UIContext, kind: str, model: str | None, url: str | None, llm_model: str | None, pairs: str,
        limit: float | None, lang: str, progress=None, request: gr.Request | None = None) -> tuple:
    """Run the chosen rater; (message, judgments table, rater picker, card)."""
    try:
        rater_kind = judge.KINDS[kind]
        spec = (model or "") if rater_kind.model_use else (url or "")
        stage = (lambda f, what: progress(f, desc=t("judge.running", lang))) if progress else None
        result = judge.judge(ctx.project, ctx.actor(request), kind, spec, pairs=pairs,
                             limit=int(limit) if limit else None, llm_model=(llm_model or "").strip() or None,
                             progress=stage)
    except Exception as exc:
        return (render.message(error_text(exc, lang), "error"), None, gr.update(), gr.update())
    picker, card, _ = refresh(ctx, lang, result["rater"], request)
    return (render.message(" ".join(judge.summary_lines(result, lang)), "ok"),
            gr.update(value=judgment_table(result, lang), visible=True), picker,
            card)


def use(ctx: UIContext, what: str, rater: str | None, audit: float, lang: str,
        request: gr.Request | None = None) -> tuple:
    """Second look / triage (``what``: second_look, second_look_undo, triage, triage_undo); (message, card)."""
    try:
        if not rater:
            return render.message(t("judge.pick_rater", lang), "error"), gr.update()
        actor = ctx.actor(request)
        if what.startswith("second_look"):
            done = judge.second_look(ctx.project, actor, rater, undo=what.endswith("undo"))
            text = (t("judge.second_look_undone", lang, n=done["removed"]) if what.endswith("undo")
                    else t("judge.second_look_done", lang, added=done["added"], open=done["open"]))
        else:
            done = judge.triage(ctx.project, actor, rater, audit=float(audit), undo=what.endswith("undo"))
            text = (t("judge.triage_undone", lang, n=done["removed"]) if what.endswith("undo")
                    else t("judge.triage_done", lang, back=done["back"], audit=done["audit"]))
    except Exception as exc:
        return render.message(error_text(exc, lang), "error"), gr.update()
    _, card, _ = refresh(ctx, lang, rater, request)
    return render.message(text, "ok"), card


def build(ctx: UIContext) -> dict:
    i18n = ctx.i18n
    kinds = list(judge.KINDS.values())
    gr.Markdown(i18n("judge.intro"))
    with gr.Row():
        kind = gr.Radio([(i18n(k.label_key), k.name) for k in kinds], value=kinds[0].name,
                        label=i18n("judge.kind"), elem_id="rs-judge-kind")
        pairs = gr.Radio([(i18n(PAIR_LABELS[p]), p) for p in judge.PAIRS], value=judge.PAIRS[0],
                         label=i18n("judge.pairs"), elem_id="rs-judge-pairs")
    with gr.Row():
        model = gr.Dropdown(choices=[], value=None, allow_custom_value=True, label=i18n("judge.model"),
                            info=i18n("judge.model_info"), visible=kinds[0].model_use is not None,
                            elem_id="rs-judge-model")
        url = gr.Textbox(label=i18n("judge.url"), placeholder=i18n("judge.url_placeholder"),
                         visible=kinds[0].model_use is None, elem_id="rs-judge-url")
        llm_model = gr.Textbox(label=i18n("judge.llm_model"), info=i18n("judge.llm_model_info"),
                               visible=kinds[0].model_use is None, elem_id="rs-judge-llm-model")
        limit = gr.Number(value=None, precision=0, minimum=1, label=i18n("judge.limit"), elem_id="rs-judge-limit")
    run_btn = gr.Button(i18n("judge.run"), variant="primary", elem_id="rs-judge-run")
    message = gr.HTML(elem_id="rs-judge-message")
    table = gr.Dataframe(label=i18n("judge.judgments"), interactive=False, wrap=True, max_height=320,
                         visible=False, elem_id="rs-judge-table")  # shown with a run's judgments
    gr.Markdown(i18n("judge.use_title"))
    with gr.Row():
        rater = gr.Dropdown(choices=[], value=None, label=i18n("judge.rater"), elem_id="rs-judge-rater")
        audit = gr.Slider(0, 0.5, value=judge.AUDIT_SHARE, step=0.05, label=i18n("judge.audit"),
                          info=i18n("judge.audit_info"), elem_id="rs-judge-audit")
    card = gr.HTML(elem_id="rs-judge-card")
    with gr.Row():
        look_btn = gr.Button(i18n("judge.second_look"), size="sm", elem_id="rs-judge-second-look")
        look_undo = gr.Button(i18n("judge.second_look_undo"), size="sm", elem_id="rs-judge-second-look-undo")
        triage_btn = gr.Button(i18n("judge.triage"), size="sm", elem_id="rs-judge-triage")
        triage_undo = gr.Button(i18n("judge.triage_undo"), size="sm", elem_id="rs-judge-triage-undo")
    use_message = gr.HTML(elem_id="rs-judge-use-message")

    def on_kind(k: str):
        endpoint = judge.KINDS[k].model_use is None
        return gr.update(visible=not endpoint), gr.update(visible=endpoint), gr.update(visible=endpoint)

    def on_run(k: str, m: str | None, u: str | None, lm: str | None, p: str, n: float | None, lg: str,
               request: gr.Request, progress=gr.Progress()):
        return run(ctx, k, m, u, lm, p, n, lg, progress, request)

    @preloaded
    def on_open(lg: str, request: gr.Request):
        return refresh(ctx, lg, None, request)

    def on_pick(r: str | None, lg: str, request: gr.Request):
        return refresh(ctx, lg, r, request)[1]

    def handler(what: str):
        def on_use(r: str | None, a: float, lg: str, request: gr.Request):
            return use(ctx, what, r, a, lg, request)
        return on_use

    kind.change(on_kind, [kind], [model, url, llm_model], api_visibility="private")
    run_btn.click(on_run, [kind, model, url, llm_model, pairs, limit, ctx.lang], [message, table, rater, card],
                  api_name="judge_run", concurrency_limit=1)
    rater.input(on_pick, [rater, ctx.lang], [card], api_visibility="private")
    for btn, what in ((look_btn, "second_look"), (look_undo, "second_look_undo"), (triage_btn, "triage"),
                      (triage_undo, "triage_undo")):
        btn.click(handler(what), [rater, audit, ctx.lang], [use_message, card], api_name=f"judge_{what}",
                  concurrency_limit=1)
    return {"card": card, "rater": rater, "refresh": (on_open, [ctx.lang], [rater, card, model])}
