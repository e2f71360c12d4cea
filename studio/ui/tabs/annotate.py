"""Annotate: the next pair for me, rated with one key press."""

from __future__ import annotations

import gradio as gr

from studio.i18n import t
from studio.store import ratings as store_ratings
from studio.store.annotators import ensure_annotator, list_annotators
from studio.ui import render
from studio.ui.context import UIContext, error_text

# Rating events could run in parallel (SQLite WAL + short BEGIN IMMEDIATE writes keep that safe), but measured on
# 2 cores (bench/annotate_load.py, bench/RESULTS.md) it buys nothing: a rating costs ~1 ms in the store, writes
# serialise in SQLite anyway, and parallel events only add GIL contention to Gradio's per-event work.
CONCURRENCY_LIMIT = 1


def progress_html(p: store_ratings.Progress, lang: str) -> str:
    return render.stat_tiles([
        (t("annotate.mine_today", lang), str(p.mine_today), ""),
        (t("annotate.queue_left", lang), str(p.queue_left), ""),
        (t("annotate.double_rated", lang), f"{p.double_rated} / {p.total_pairs}", ""),
    ])


def show_next(ctx: UIContext, annotator: str, lang: str, status: str = "") -> tuple:
    """(card html, pair id, progress html, status html, note) for `annotator`'s next pair."""
    with ctx.db() as db:
        view = store_ratings.next_pair(db, annotator)
        counts = store_ratings.progress(db, annotator)
    prog = progress_html(counts, lang)
    if view is None:
        empty = "annotate.no_pairs" if counts.total_pairs == 0 else "annotate.queue_empty"
        return render.empty_card(t(empty, lang)), None, prog, status, ""
    extra = ""
    if view.my_rating is not None:
        extra = f'<div class="rs-mine">{t("annotate.your_rating", lang)} {render.rating_badge(view.my_rating, lang)}</div>'
    card = render.pair_card(view.query, view.title, view.document, lang, pair_id=view.pair_id, extra=extra)
    return card, view.pair_id, prog, status, view.my_note


def start(ctx: UIContext, annotator: str | None, lang: str, request: gr.Request | None = None) -> tuple:
    name = (request.username if request is not None and getattr(request, "username", None) else annotator) or ""
    if not name.strip():
        return (render.empty_card(t("annotate.pick_name", lang)), None, "", "", "")
    try:
        with ctx.db() as db:
            ensure_annotator(db, name)
        return show_next(ctx, name.strip(), lang)
    except Exception as exc:
        return render.empty_card(error_text(exc, lang)), None, "", render.message(error_text(exc, lang), "error"), ""


def rate(ctx: UIContext, annotator: str, pair_id: int | None, note: str, value: int, lang: str) -> tuple:
    """Save the rating (committed before we say so), then show the next pair."""
    if not annotator or pair_id is None:
        return start(ctx, annotator, lang)
    try:
        with ctx.db() as db:
            store_ratings.submit_rating(db, annotator, int(pair_id), value, note or "")
        saved = render.message(t("annotate.saved", lang, pair_id=pair_id,
                                 label=f"{value} · {t(f'rating.{value}', lang)}"), "ok")
        return show_next(ctx, annotator, lang, saved)
    except Exception as exc:
        card, pid, prog, _, note_out = show_next(ctx, annotator, lang)
        return card, pid, prog, render.message(error_text(exc, lang), "error"), note_out


def skip(ctx: UIContext, annotator: str, pair_id: int | None, lang: str) -> tuple:
    if annotator and pair_id is not None:
        with ctx.db() as db:
            store_ratings.skip_pair(db, annotator, int(pair_id))
    return show_next(ctx, annotator, lang, render.message(t("annotate.skipped", lang, pair_id=pair_id), "warn"))


def undo(ctx: UIContext, annotator: str, lang: str) -> tuple:
    try:
        with ctx.db() as db:
            pair_id = store_ratings.undo_last(db, annotator)
        return show_next(ctx, annotator, lang, render.message(t("annotate.undone", lang, pair_id=pair_id), "warn"))
    except Exception as exc:
        return (*show_next(ctx, annotator, lang)[:3], render.message(error_text(exc, lang), "error"), "")


def annotator_names(ctx: UIContext) -> list[str]:
    with ctx.db() as db:
        return [row["name"] for row in list_annotators(db)]


def build(ctx: UIContext) -> dict[str, gr.components.Component]:
    i18n = ctx.i18n
    with gr.Row(equal_height=True):
        who = gr.Dropdown(label=i18n("annotate.annotator"), info=i18n("annotate.annotator_info"),
                          allow_custom_value=True, choices=[], scale=3, elem_id="rs-annotator")
        go_btn = gr.Button(i18n("annotate.start"), variant="primary", scale=1, elem_id="rs-start")
    progress = gr.HTML(elem_id="rs-progress")
    card = gr.HTML(render.empty_card(""), elem_id="rs-card", padding=False)
    with gr.Row(elem_id="rs-rate-row"):
        b2 = gr.Button(i18n("annotate.btn_2"), elem_id="rs-rate-2", elem_classes=["rs-rate", "rs-r2"])
        b1 = gr.Button(i18n("annotate.btn_1"), elem_id="rs-rate-1", elem_classes=["rs-rate", "rs-r1"])
        b0 = gr.Button(i18n("annotate.btn_0"), elem_id="rs-rate-0", elem_classes=["rs-rate", "rs-r0"])
    with gr.Row():
        note = gr.Textbox(label=i18n("annotate.note"), placeholder=i18n("annotate.note_placeholder"),
                          lines=1, scale=4, elem_id="rs-note")
        skip_btn = gr.Button(i18n("annotate.skip"), scale=1, elem_id="rs-skip", size="sm")
        undo_btn = gr.Button(i18n("annotate.undo"), scale=1, elem_id="rs-undo", size="sm")
    status = gr.HTML(elem_id="rs-status")
    with gr.Accordion(i18n("annotate.guide_title"), open=False):
        gr.Markdown(i18n("annotate.guide"))
    pair_id = gr.State(None)

    outputs = [card, pair_id, progress, status, note]
    lang = ctx.lang
    fast = {"concurrency_limit": CONCURRENCY_LIMIT, "show_progress": "hidden"}

    def on_start(name: str | None, lg: str, request: gr.Request):
        return start(ctx, name, lg, request)

    go_btn.click(on_start, [who, lang], outputs, api_name="annotate_start", **fast)
    who.input(on_start, [who, lang], outputs, **fast)
    for button, value in ((b2, 2), (b1, 1), (b0, 0)):
        button.click(lambda name, pid, n, lg, v=value: rate(ctx, name, pid, n, v, lg),
                     [who, pair_id, note, lang], outputs, api_name=f"annotate_rate_{value}", **fast)
    skip_btn.click(lambda name, pid, lg: skip(ctx, name, pid, lg), [who, pair_id, lang], outputs, **fast)
    undo_btn.click(lambda name, lg: undo(ctx, name, lg), [who, lang], outputs, **fast)

    def refresh_names():
        # Only the choices: the value is the user's, and they may have typed while this was on its way.
        return gr.update(choices=annotator_names(ctx))

    def welcome(lg: str, current_pair):
        # What to do first, in the page's language (known only once the page has loaded); never over a pair.
        return render.empty_card(t("annotate.pick_name", lg)) if current_pair is None else gr.update()

    ctx.on_load.append((refresh_names, [], [who]))
    ctx.on_load.append((welcome, [lang, pair_id], [card]))
    return {"annotator": who, "start": go_btn, "card": card, "progress": progress, "status": status,
            "note": note, "pair_id": pair_id, "rate_2": b2, "rate_1": b1, "rate_0": b0,
            "refresh_names": (refresh_names, [], [who])}
