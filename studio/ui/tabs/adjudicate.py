"""Adjudicate: experts see both ratings and notes of a disagreement and set the final label (audited)."""

from __future__ import annotations

import html

import gradio as gr
import pandas as pd

from studio.actions import agree
from studio.actions.team import experts
from studio.errors import StudioError
from studio.i18n import t
from studio.ui import render
from studio.ui.context import UIContext, error_text


def _rater_block(name: str, rating: int, note: str, lang: str) -> str:
    note_html = f'<div class="rs-note">“{html.escape(note)}”</div>' if note else ""
    return (f'<div class="rs-rater"><div class="rs-rater-name">{html.escape(name)}</div>'
            f"{render.rating_badge(rating, lang)}{note_html}</div>")


def current_case(ctx: UIContext, lang: str, status: str = "", request: gr.Request | None = None) -> tuple:
    """(card html, pair id, queue count html, status, audit table) for the first undecided disagreement.

    Both ratings and the audit log name who rated what: only an expert (or admin) gets them; anyone else gets
    the refusal and nothing else.
    """
    try:
        actor = ctx.actor(request)
        queue = agree.open_cases(ctx.project, actor)
        audit = audit_table(agree.audit_log(ctx.project, actor, entity="pair", limit=100), lang)
    except StudioError as exc:
        return (render.empty_card(error_text(exc, lang)), None, "", status or render.message(error_text(exc, lang),
                                                                                            "error"), None)
    count = render.stat_tiles([(t("adjudicate.queue", lang), str(len(queue)), "rs-fail" if queue else "rs-pass")])
    if not queue:
        return render.empty_card(t("adjudicate.queue_empty", lang)), None, count, status, audit
    case = queue[0]
    raters = (f'<div class="rs-label">{html.escape(t("adjudicate.ratings", lang))}</div><div class="rs-raters">'
              + _rater_block(case["annotator_a"], case["rating_a"], case["note_a"], lang)
              + _rater_block(case["annotator_b"], case["rating_b"], case["note_b"], lang) + "</div>")
    card = render.pair_card(case["query"], case["title"], case["document"], lang, pair_id=case["pair_id"],
                            extra=raters)
    return card, case["pair_id"], count, status, audit


def audit_table(rows: list[dict], lang: str) -> pd.DataFrame:
    def value(d):
        if not d:
            return ""
        return ", ".join(f"{k}: {v}" for k, v in d.items() if k in ("label", "rating", "expert", "note") and v != "")

    return pd.DataFrame([{
        t("adjudicate.col_when", lang): r["at"].replace("T", " ")[:19],
        t("adjudicate.col_who", lang): r["actor"],
        t("adjudicate.col_action", lang): t(f"audit.{r['action']}", lang),
        "#": r["entity_id"],
        t("adjudicate.col_before", lang): value(r["before"]),
        t("adjudicate.col_after", lang): value(r["after"]),
    } for r in rows])


def decide(ctx: UIContext, picked: str | None, pair_id: int | None, label: int, note: str, lang: str,
           request: gr.Request | None = None) -> tuple:
    """Set the final label as the acting expert: the signed-in user, or (without sign-in) the expert picked."""
    if not ctx.auth and not picked:
        return (*current_case(ctx, lang, render.message(t("adjudicate.pick_expert", lang), "error"), request)[:4],
                gr.update(), note)
    if pair_id is None:
        return (*current_case(ctx, lang, request=request), note)
    try:
        agree.adjudicate(ctx.project, ctx.actor(request, picked), int(pair_id), label, note or "")
        ok = render.message(t("adjudicate.decided", lang, pair_id=pair_id,
                              label=f"{label} · {t(f'rating.{label}', lang)}"), "ok")
        return (*current_case(ctx, lang, ok, request), "")
    except Exception as exc:
        return (*current_case(ctx, lang, render.message(error_text(exc, lang), "error"), request), note)


def build(ctx: UIContext) -> dict:
    i18n = ctx.i18n
    gr.Markdown(i18n("adjudicate.intro"))
    with gr.Row(equal_height=True):
        expert = gr.Dropdown(label=i18n("adjudicate.expert"), choices=[], scale=3, elem_id="rs-expert",
                             visible=not ctx.auth)  # with sign-in the expert is the signed-in user
        count = gr.HTML()
    card = gr.HTML(render.empty_card(""), elem_id="rs-adj-card", padding=False)
    with gr.Row():
        buttons = [(gr.Button(i18n(f"annotate.btn_{v}"), elem_id=f"rs-final-{v}", elem_classes=["rs-rate", f"rs-r{v}"]), v)
                   for v in (2, 1, 0)]
    note = gr.Textbox(label=i18n("adjudicate.note"), lines=1, elem_id="rs-reason")  # key n focuses it
    status = gr.HTML()
    with gr.Accordion(i18n("adjudicate.audit_title"), open=False):
        # "after" holds the expert's reason: the widest column, wrapped, so it can be read in full
        audit = gr.Dataframe(interactive=False, wrap=True, max_height=400, elem_id="rs-audit",
                             column_widths=["14%", "11%", "13%", "6%", "22%", "34%"])
    pair_id = gr.State(None)
    outputs = [card, pair_id, count, status, audit, note]

    def on_decide_2(who: str | None, pid, text: str, lg: str, request: gr.Request):
        return decide(ctx, who, pid, 2, text, lg, request)

    def on_decide_1(who: str | None, pid, text: str, lg: str, request: gr.Request):
        return decide(ctx, who, pid, 1, text, lg, request)

    def on_decide_0(who: str | None, pid, text: str, lg: str, request: gr.Request):
        return decide(ctx, who, pid, 0, text, lg, request)

    (b2, _), (b1, _), (b0, _) = buttons
    b2.click(on_decide_2, [expert, pair_id, note, ctx.lang], outputs, api_name="adjudicate_decide_2")
    b1.click(on_decide_1, [expert, pair_id, note, ctx.lang], outputs, api_name="adjudicate_decide_1")
    b0.click(on_decide_0, [expert, pair_id, note, ctx.lang], outputs, api_name="adjudicate_decide_0")

    def refresh(lg: str, current: str | None, request: gr.Request):
        try:
            names = experts(ctx.project, ctx.actor(request))
        except StudioError:
            names = []
        value = current if current in names else (names[0] if names else None)
        return (gr.update(choices=names, value=value), *current_case(ctx, lg, request=request))

    return {"expert": expert, "card": card,
            "refresh": (refresh, [ctx.lang, expert], [expert, card, pair_id, count, status, audit])}
