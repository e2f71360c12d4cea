"""Adjudicate: experts see both ratings and notes of a case and set the final label (audited). ④ works like ②: skip a
case (to the end of this expert's list), undo the last decision, change one already made, filter by annotator pair or
query, the same keys. Second looks — pairs two people agreed on that a model rater confidently disagrees with — are
cases of their own kind; deciding one settles it (a model's label is never gold unless the expert decides so)."""

from __future__ import annotations

import html
import json

import gradio as gr
import pandas as pd

from studio.actions import agree
from studio.actions.team import experts
from studio.errors import StudioError
from studio.i18n import t
from studio.ui import render
from studio.ui.context import UIContext, error_text

ALL = ""  # the annotator-pair filter's "every pair"


def _rater_block(name: str, rating: int, note: str, lang: str) -> str:
    note_html = f'<div class="rs-note">“{html.escape(note)}”</div>' if note else ""
    return (f'<div class="rs-rater"><div class="rs-rater-name">{html.escape(name)}</div>'
            f"{render.rating_badge(rating, lang)}{note_html}</div>")


def _label(value: int, lang: str) -> str:
    return f"{value} · {t(f'rating.{value}', lang)}"


def _filters(pair_filter: str | None, query: str | None) -> dict:
    """The actions' filter arguments from the page's values (an annotator pair the page garbled means no filter)."""
    annotators = None
    if pair_filter:
        try:
            names = json.loads(pair_filter)
            if isinstance(names, list) and len(names) == 2 and all(isinstance(n, str) for n in names):
                annotators = (names[0], names[1])
        except ValueError:
            pass
    return {"annotators": annotators, "query": (query or "").strip() or None}


def case_card(case: dict, lang: str) -> str:
    """The pair with both ratings and notes, and what kind of case it is: a second look (both raters said X; a model
    rater said Y) or a decision already made (which a key press changes)."""
    raters = (f'<div class="rs-label">{html.escape(t("adjudicate.ratings", lang))}</div><div class="rs-raters">'
              + _rater_block(case["annotator_a"], case["rating_a"], case["note_a"], lang)
              + _rater_block(case["annotator_b"], case["rating_b"], case["note_b"], lang) + "</div>")
    if case["second_look_open"]:
        raters = render.message(t("adjudicate.second_look", lang, agreed=_label(case["agreed_label"], lang),
                                  model=_label(case["model_label"], lang), rater=case["model_rater"] or "?"),
                                "warn") + raters
    if case["decision"] is not None and not case["open"]:
        said = "adjudicate.decided_before" if not case["decision_note"] else "adjudicate.decided_before_note"
        raters += render.message(t(said, lang, label=_label(case["decision"], lang), expert=case["expert"],
                                   note=case["decision_note"]), "info")
    return render.pair_card(case["query"], case["title"], case["document"], lang, pair_id=case["pair_id"],
                            extra=raters)


def _view(ctx: UIContext, lang: str, status: str = "", request: gr.Request | None = None, *,
          picked: str | None = None, pair_filter: str | None = None, query: str | None = None,
          pick: int | None = None) -> tuple:
    """(card, pair id, counts, status, audit table, annotator-pair filter, decided cases) for the first open case
    under the filters — or the case `pick` (one just undone, or a decided one to change).

    Both ratings and the audit log name who rated what: only an expert (or admin) gets them; anyone else gets
    the refusal and nothing else.
    """
    try:
        actor = ctx.actor(request, picked)
        found = agree.cases(ctx.project, actor, **_filters(pair_filter, query))
        audit = audit_table(agree.audit_log(ctx.project, actor, entity="pair", limit=100), lang)
        shown = found.open[0] if found.open else None
        if pick is not None:
            try:
                shown = agree.case(ctx.project, actor, int(pick))
            except StudioError:
                pass  # no longer a case (its ratings changed): the first open one instead
    except StudioError as exc:
        return (render.empty_card(error_text(exc, lang)), None, "",
                status or render.message(error_text(exc, lang), "error"), None,
                gr.update(choices=[(t("adjudicate.all_pairs", lang), ALL)], value=ALL), gr.update(choices=[],
                                                                                                 value=None))
    disagreeing = sum(c["kind"] == "disagreement" for c in found.open)
    count = render.stat_tiles([
        (t("adjudicate.queue", lang), str(disagreeing), "rs-fail" if disagreeing else "rs-pass"),
        (t("adjudicate.second_looks", lang), str(len(found.open) - disagreeing), ""),
        (t("adjudicate.decided_count", lang), str(len(found.decided)), ""),
    ])
    pairs = [(t("adjudicate.all_pairs", lang), ALL)] + [(f"{a} × {b}", json.dumps([a, b], ensure_ascii=False))
                                                       for a, b in found.annotator_pairs]
    pair_update = gr.update(choices=pairs, value=pair_filter if pair_filter in {v for _, v in pairs} else ALL)
    decided = [(f"#{c['pair_id']} · {_label(c['decision'], lang)} · {c['expert']} · {c['query'][:50]}", c["pair_id"])
               for c in found.decided]
    showing_decided = shown is not None and not shown["open"]
    decided_update = gr.update(choices=decided, value=shown["pair_id"] if showing_decided else None)
    if shown is None:
        filtered = any(_filters(pair_filter, query).values())
        empty = t("adjudicate.no_match" if filtered else "adjudicate.queue_empty", lang)
        return render.empty_card(empty), None, count, status, audit, pair_update, decided_update
    return case_card(shown, lang), shown["pair_id"], count, status, audit, pair_update, decided_update


def current_case(ctx: UIContext, lang: str, status: str = "", request: gr.Request | None = None, *,
                 picked: str | None = None, pair_filter: str | None = None, query: str | None = None,
                 pick: int | None = None) -> tuple:
    """(card html, pair id, counts html, status, audit table) for the first open case (or `pick`)."""
    return _view(ctx, lang, status, request, picked=picked, pair_filter=pair_filter, query=query, pick=pick)[:5]


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


def _no_expert(ctx: UIContext, picked: str | None) -> bool:
    """Without sign-in, an expert must be picked first (with it, the signed-in user acts)."""
    return not ctx.auth and not picked


def decide(ctx: UIContext, picked: str | None, pair_id: int | None, label: int, note: str, lang: str,
           request: gr.Request | None = None, *, pair_filter: str | None = None, query: str | None = None) -> tuple:
    """Set (or change) the final label as the acting expert: the signed-in user, or (without sign-in) the expert
    picked. Returns the view (:func:`_view`'s first five), the reason box, and the two filters' updates."""
    where = {"picked": picked, "pair_filter": pair_filter, "query": query}
    if _no_expert(ctx, picked):
        view = _view(ctx, lang, render.message(t("adjudicate.pick_expert", lang), "error"), request, **where)
        return (*view[:4], gr.update(), note, *view[5:])
    if pair_id is None:
        return _with_note(_view(ctx, lang, request=request, **where), note)
    try:
        done = agree.adjudicate(ctx.project, ctx.actor(request, picked), int(pair_id), label, note or "")
        before = done["before"]
        if before is None:
            text = t("adjudicate.decided", lang, pair_id=pair_id, label=_label(label, lang))
        else:
            text = t("adjudicate.changed", lang, pair_id=pair_id, before=_label(before["label"], lang),
                     label=_label(label, lang))
        return _with_note(_view(ctx, lang, render.message(text, "ok"), request, **where), "")
    except Exception as exc:
        view = _view(ctx, lang, render.message(error_text(exc, lang), "error"), request, pick=pair_id, **where)
        return _with_note(view, note)


def _with_note(view: tuple, note) -> tuple:
    """A view with the reason box's value put in its place among the outputs."""
    return (*view[:5], note, *view[5:])


def skip(ctx: UIContext, picked: str | None, pair_id: int | None, lang: str, request: gr.Request | None = None, *,
         pair_filter: str | None = None, query: str | None = None) -> tuple:
    """Pass on the case on screen: it goes to the end of this expert's list; the next one shows."""
    where = {"picked": picked, "pair_filter": pair_filter, "query": query}
    if _no_expert(ctx, picked):
        return _with_note(_view(ctx, lang, render.message(t("adjudicate.pick_expert", lang), "error"), request,
                                **where), gr.update())
    if pair_id is None:
        return _with_note(_view(ctx, lang, request=request, **where), gr.update())
    try:
        agree.skip(ctx.project, ctx.actor(request, picked), int(pair_id))
        message = render.message(t("adjudicate.skipped", lang, pair_id=pair_id), "warn")
    except Exception as exc:
        message = render.message(error_text(exc, lang), "error")
    return _with_note(_view(ctx, lang, message, request, **where), "")


def undo(ctx: UIContext, picked: str | None, lang: str, request: gr.Request | None = None, *,
         pair_filter: str | None = None, query: str | None = None) -> tuple:
    """Take back this expert's last decision: the case shows again (open, or with the earlier decision back), and
    the reason it was given comes back to the box."""
    where = {"picked": picked, "pair_filter": pair_filter, "query": query}
    if _no_expert(ctx, picked):
        return _with_note(_view(ctx, lang, render.message(t("adjudicate.pick_expert", lang), "error"), request,
                                **where), gr.update())
    try:
        undone = agree.undo(ctx.project, ctx.actor(request, picked))
    except Exception as exc:
        return _with_note(_view(ctx, lang, render.message(error_text(exc, lang), "error"), request, **where),
                          gr.update())
    restored = undone["restored"]
    if restored is None:
        text = t("adjudicate.undone", lang, pair_id=undone["pair_id"], label=_label(undone["label"], lang))
    else:
        text = t("adjudicate.undone_change", lang, pair_id=undone["pair_id"], label=_label(undone["label"], lang),
                 before=_label(restored["label"], lang), expert=restored["expert"])
    view = _view(ctx, lang, render.message(text, "warn"), request, pick=undone["pair_id"], **where)
    return _with_note(view, undone["note"] if restored is None else "")


def build(ctx: UIContext) -> dict:
    i18n = ctx.i18n
    gr.Markdown(i18n("adjudicate.intro"))
    with gr.Row(equal_height=True):
        expert = gr.Dropdown(label=i18n("adjudicate.expert"), choices=[], scale=3, elem_id="rs-expert",
                             visible=not ctx.auth)  # with sign-in the expert is the signed-in user
        count = gr.HTML(scale=3)  # three tiles: disagreements, second looks, decided
    with gr.Row(equal_height=True):
        pair_filter = gr.Dropdown(label=i18n("adjudicate.filter_pair"), choices=[], value=None, scale=2,
                                  elem_id="rs-adj-pair-filter")
        query = gr.Textbox(label=i18n("adjudicate.filter_query"), placeholder=i18n("adjudicate.filter_query_hint"),
                           scale=2, elem_id="rs-adj-query-filter")
        decided = gr.Dropdown(label=i18n("adjudicate.change"), info=i18n("adjudicate.change_info"), choices=[],
                              scale=3, elem_id="rs-adj-decided")
    card = gr.HTML(render.empty_card(""), elem_id="rs-adj-card", padding=False)
    with gr.Row():
        buttons = [(gr.Button(i18n(f"annotate.btn_{v}"), elem_id=f"rs-final-{v}", elem_classes=["rs-rate", f"rs-r{v}"]), v)
                   for v in (2, 1, 0)]
    with gr.Row():
        note = gr.Textbox(label=i18n("adjudicate.note"), lines=1, scale=4, elem_id="rs-reason")  # key n focuses it
        skip_btn = gr.Button(i18n("adjudicate.skip"), scale=1, size="sm", elem_id="rs-adj-skip")
        undo_btn = gr.Button(i18n("adjudicate.undo"), scale=1, size="sm", elem_id="rs-adj-undo")
    status = gr.HTML()
    with gr.Accordion(i18n("adjudicate.audit_title"), open=False):
        # "after" holds the expert's reason: the widest column, wrapped, so it can be read in full
        audit = gr.Dataframe(interactive=False, wrap=True, max_height=400, elem_id="rs-audit",
                             column_widths=["14%", "11%", "13%", "6%", "22%", "34%"])
    pair_id = gr.State(None)
    outputs = [card, pair_id, count, status, audit, note, pair_filter, decided]
    shared = [expert, ctx.lang, pair_filter, query]

    def on_decide_2(who: str | None, lg: str, pf: str | None, q: str, pid, text: str, request: gr.Request):
        return decide(ctx, who, pid, 2, text, lg, request, pair_filter=pf, query=q)

    def on_decide_1(who: str | None, lg: str, pf: str | None, q: str, pid, text: str, request: gr.Request):
        return decide(ctx, who, pid, 1, text, lg, request, pair_filter=pf, query=q)

    def on_decide_0(who: str | None, lg: str, pf: str | None, q: str, pid, text: str, request: gr.Request):
        return decide(ctx, who, pid, 0, text, lg, request, pair_filter=pf, query=q)

    def on_skip(who: str | None, lg: str, pf: str | None, q: str, pid, request: gr.Request):
        return skip(ctx, who, pid, lg, request, pair_filter=pf, query=q)

    def on_undo(who: str | None, lg: str, pf: str | None, q: str, request: gr.Request):
        return undo(ctx, who, lg, request, pair_filter=pf, query=q)

    def on_filter(who: str | None, lg: str, pf: str | None, q: str, request: gr.Request):
        return _with_note(_view(ctx, lg, request=request, picked=who, pair_filter=pf, query=q), gr.update())

    def on_pick(who: str | None, lg: str, pf: str | None, q: str, pid, request: gr.Request):
        view = _view(ctx, lg, request=request, picked=who, pair_filter=pf, query=q, pick=pid)
        return _with_note(view, "")

    (b2, _), (b1, _), (b0, _) = buttons
    b2.click(on_decide_2, [*shared, pair_id, note], outputs, api_name="adjudicate_decide_2")
    b1.click(on_decide_1, [*shared, pair_id, note], outputs, api_name="adjudicate_decide_1")
    b0.click(on_decide_0, [*shared, pair_id, note], outputs, api_name="adjudicate_decide_0")
    skip_btn.click(on_skip, [*shared, pair_id], outputs, api_name="adjudicate_skip")
    undo_btn.click(on_undo, shared, outputs, api_name="adjudicate_undo")
    pair_filter.input(on_filter, shared, outputs, api_visibility="private", show_progress="hidden")
    query.submit(on_filter, shared, outputs, api_visibility="private", show_progress="hidden")
    decided.input(on_pick, [*shared, decided], outputs, api_visibility="private", show_progress="hidden")

    def refresh(lg: str, current: str | None, pf: str | None, q: str, request: gr.Request):
        try:
            names = experts(ctx.project, ctx.actor(request))
        except StudioError:
            names = []
        value = current if current in names else (names[0] if names else None)
        view = _view(ctx, lg, request=request, picked=value, pair_filter=pf, query=q)
        return (gr.update(choices=names, value=value), *view)

    return {"expert": expert, "card": card,
            "refresh": (refresh, [ctx.lang, expert, pair_filter, query],
                        [expert, card, pair_id, count, status, audit, pair_filter, decided])}
