"""Adjudicate: experts see both ratings and notes of a disagreement and set the final label (audited)."""

from __future__ import annotations

import html

import gradio as gr
import pandas as pd

from studio.i18n import t
from studio.store.adjudication import adjudicate, disagreements
from studio.store.annotators import list_annotators
from studio.store.audit import history
from studio.ui import render
from studio.ui.context import UIContext, error_text


def _rater_block(name: str, rating: int, note: str, lang: str) -> str:
    note_html = f'<div class="rs-note">“{html.escape(note)}”</div>' if note else ""
    return (f'<div class="rs-rater"><div class="rs-rater-name">{html.escape(name)}</div>'
            f"{render.rating_badge(rating, lang)}{note_html}</div>")


def current_case(ctx: UIContext, lang: str, status: str = "") -> tuple:
    """(card html, pair id, queue count html, status, audit table) for the first undecided disagreement."""
    with ctx.db() as db:
        queue = disagreements(db)
        audit = audit_table(history(db, entity="pair", limit=100), lang)
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


def decide(ctx: UIContext, expert: str | None, pair_id: int | None, label: int, note: str, lang: str) -> tuple:
    if not expert:
        return (*current_case(ctx, lang, render.message(t("adjudicate.pick_expert", lang), "error"))[:4],
                gr.update(), note)
    if pair_id is None:
        return (*current_case(ctx, lang), note)
    try:
        with ctx.db() as db:
            adjudicate(db, expert, int(pair_id), label, note or "")
        ok = render.message(t("adjudicate.decided", lang, pair_id=pair_id,
                              label=f"{label} · {t(f'rating.{label}', lang)}"), "ok")
        return (*current_case(ctx, lang, ok), "")
    except Exception as exc:
        return (*current_case(ctx, lang, render.message(error_text(exc, lang), "error")), note)


def build(ctx: UIContext) -> dict:
    i18n = ctx.i18n
    gr.Markdown(i18n("adjudicate.intro"))
    with gr.Row(equal_height=True):
        expert = gr.Dropdown(label=i18n("adjudicate.expert"), choices=[], scale=3, elem_id="rs-expert")
        count = gr.HTML()
    card = gr.HTML(render.empty_card(""), elem_id="rs-adj-card", padding=False)
    with gr.Row():
        buttons = [(gr.Button(i18n(f"annotate.btn_{v}"), elem_id=f"rs-final-{v}", elem_classes=["rs-rate", f"rs-r{v}"]), v)
                   for v in (2, 1, 0)]
    note = gr.Textbox(label=i18n("adjudicate.note"), lines=1, elem_id="rs-reason")  # key n focuses it
    status = gr.HTML()
    with gr.Accordion(i18n("adjudicate.audit_title"), open=False):
        audit = gr.Dataframe(interactive=False, wrap=True, max_height=400)
    pair_id = gr.State(None)
    outputs = [card, pair_id, count, status, audit, note]
    for button, value in buttons:
        button.click(lambda who, pid, n, lg, v=value: decide(ctx, who, pid, v, n, lg),
                     [expert, pair_id, note, ctx.lang], outputs)

    def refresh(lg: str, current: str | None):
        with ctx.db() as db:
            experts = [r["name"] for r in list_annotators(db) if r["role"] in ("expert", "admin")]
        value = current if current in experts else (experts[0] if experts else None)
        return (gr.update(choices=experts, value=value), *current_case(ctx, lg))

    return {"expert": expert, "card": card,
            "refresh": (refresh, [ctx.lang, expert], [expert, card, pair_id, count, status, audit])}
