"""Annotate: the next pair for me, rated with one key press. Who "me" is, the server decides (ctx.actor)."""

from __future__ import annotations

import gradio as gr

from studio.actions import annotate as act
from studio.actions.team import names as team_names
from studio.errors import Forbidden, StudioError
from studio.i18n import t
from studio.ui import render
from studio.ui.context import UIContext, error_text
from studio.ui.tabs import guidelines_panel

# Rating events could run in parallel (SQLite WAL + short BEGIN IMMEDIATE writes keep that safe), but measured on
# 2 cores (bench/annotate_load.py, bench/RESULTS.md) it buys nothing: a rating costs ~1 ms in the store, writes
# serialise in SQLite anyway, and parallel events only add GIL contention to Gradio's per-event work.
CONCURRENCY_LIMIT = 1


def progress_html(p, lang: str) -> str:
    return render.stat_tiles([
        (t("annotate.mine_today", lang), str(p.mine_today), ""),
        (t("annotate.queue_left", lang), str(p.queue_left), ""),
        (t("annotate.double_rated", lang), f"{p.double_rated} / {p.total_pairs}", ""),
    ])


def show(queue: act.Queue, lang: str, status: str = "") -> tuple:
    """(card html, pair id, progress html, status html, note) for a queue the actions layer returned."""
    prog = progress_html(queue.progress, lang)
    view = queue.pair
    if view is None:
        empty = "annotate.no_pairs" if queue.progress.total_pairs == 0 else "annotate.queue_empty"
        return render.empty_card(t(empty, lang)), None, prog, status, ""
    extra = ""
    if view.my_rating is not None:
        extra = f'<div class="rs-mine">{t("annotate.your_rating", lang)} {render.rating_badge(view.my_rating, lang)}</div>'
    card = render.pair_card(view.query, view.title, view.document, lang, pair_id=view.pair_id, extra=extra)
    return card, view.pair_id, prog, status, view.my_note


def _failed(ctx: UIContext, actor, exc: Exception, lang: str) -> tuple:
    """The actor's queue as it stands, with the error underneath (or only the error when there is no queue)."""
    message = render.message(error_text(exc, lang), "error")
    if actor is not None and not isinstance(exc, Forbidden):
        try:
            return show(act.queue(ctx.project, actor), lang, message)
        except StudioError:
            pass
    return render.empty_card(error_text(exc, lang)), None, "", message, ""


def _session(request: gr.Request | None) -> str | None:
    """The browser session a reservation belongs to (freed when the session ends)."""
    return getattr(request, "session_hash", None) if request is not None else None


def _actor(ctx: UIContext, picked: str | None, request: gr.Request | None):
    """The actor, or None when nobody is known yet (no sign-in and no name picked)."""
    if not ctx.auth and not (picked or "").strip():
        return None
    return ctx.actor(request, picked)


def start(ctx: UIContext, picked: str | None, lang: str, request: gr.Request | None = None) -> tuple:
    """Show the actor's next pair (reserving it). Without sign-in, `picked` names the annotator."""
    actor = None
    try:
        actor = _actor(ctx, picked, request)
        if actor is None:
            return render.empty_card(t("annotate.pick_name", lang)), None, "", "", ""
        return show(act.start(ctx.project, actor, session=_session(request)), lang)
    except Exception as exc:
        return _failed(ctx, actor, exc, lang)


def _acting(ctx: UIContext, picked: str | None, lang: str, request: gr.Request | None, do) -> tuple:
    """`do(actor)` for the acting annotator, the first pair when nobody is known yet, and the actor's queue with the
    error underneath when `do` fails."""
    actor = None
    try:
        actor = _actor(ctx, picked, request)
        return start(ctx, picked, lang, request) if actor is None else do(actor)
    except Exception as exc:
        return _failed(ctx, actor, exc, lang)


def rate(ctx: UIContext, picked: str | None, pair_id: int | None, note: str, value: int, lang: str,
         request: gr.Request | None = None) -> tuple:
    """Save the rating (committed before we say so), then show the next pair."""
    if pair_id is None:
        return start(ctx, picked, lang, request)

    def do(actor):
        queue = act.rate(ctx.project, actor, int(pair_id), value, note or "", session=_session(request))
        return show(queue, lang, render.message(t("annotate.saved", lang, pair_id=pair_id,
                                                  label=f"{value} · {t(f'rating.{value}', lang)}"), "ok"))

    return _acting(ctx, picked, lang, request, do)


def skip(ctx: UIContext, picked: str | None, pair_id: int | None, lang: str, request: gr.Request | None = None) -> tuple:
    if pair_id is None:
        return start(ctx, picked, lang, request)

    def do(actor):
        queue = act.skip(ctx.project, actor, int(pair_id), session=_session(request))
        return show(queue, lang, render.message(t("annotate.skipped", lang, pair_id=pair_id), "warn"))

    return _acting(ctx, picked, lang, request, do)


def undo(ctx: UIContext, picked: str | None, lang: str, request: gr.Request | None = None) -> tuple:
    def do(actor):
        undone, queue = act.undo(ctx.project, actor, session=_session(request))
        if undone.kind == "skip":
            return show(queue, lang, render.message(t("annotate.skip_undone", lang, pair_id=undone.pair_id), "warn"))
        was = f"{undone.rating} · {t(f'rating.{undone.rating}', lang)}"
        said = "annotate.undone" if (undone.note or "").strip() else "annotate.undone_no_note"  # no note, no box
        card, pid, prog, status, _ = show(queue, lang, render.message(
            t(said, lang, pair_id=undone.pair_id, label=was), "warn"))
        return card, pid, prog, status, undone.note  # the note comes back: nobody retypes it

    return _acting(ctx, picked, lang, request, do)


def toggle_guidelines(ctx: UIContext, is_open: bool, picked: str | None, lang: str,
                      request: gr.Request | None = None) -> tuple:
    """Open the guidelines (read afresh, in the page's language, with their examples) or close them: (panel,
    guidelines Markdown, examples HTML, open or not). The key `g` presses the same button."""
    if is_open:
        return gr.update(visible=False), gr.update(), gr.update(), False
    text, examples = guidelines_panel.view(ctx, lang, request, picked)
    return gr.update(visible=True), text, examples, True


def picker_names(ctx: UIContext, request: gr.Request | None = None) -> list[str]:
    """Names for the picker of the app without sign-in (with sign-in there is no picker)."""
    try:
        return team_names(ctx.project, ctx.actor(request))
    except StudioError:
        return []


def build(ctx: UIContext) -> dict[str, gr.components.Component]:
    i18n = ctx.i18n
    with gr.Row(equal_height=True):
        # Without sign-in: pick a name (one person, or a trusted room). With it: the server knows who you are.
        who = gr.Dropdown(label=i18n("annotate.annotator"), info=i18n("annotate.annotator_info"),
                          allow_custom_value=True, choices=[], scale=3, elem_id="rs-annotator", visible=not ctx.auth)
        signed_in = gr.HTML(visible=ctx.auth, elem_id="rs-signed-in")
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
        guide_btn = gr.Button(i18n("annotate.guidelines_btn"), scale=1, elem_id="rs-guidelines-btn", size="sm")
    status = gr.HTML(elem_id="rs-status")
    with gr.Column(visible=False, elem_id="rs-guidelines") as guide_box:  # opened and closed with g
        guide_text = gr.Markdown(elem_id="rs-guidelines-text")
        guide_examples = gr.HTML(elem_id="rs-guidelines-examples")
    guide_open = gr.State(False)
    with gr.Accordion(i18n("annotate.guide_title"), open=False):
        gr.Markdown(i18n("annotate.guide"))
    pair_id = gr.State(None)

    outputs = [card, pair_id, progress, status, note]
    lang = ctx.lang
    fast = {"concurrency_limit": CONCURRENCY_LIMIT, "show_progress": "hidden"}

    def on_start(name: str | None, lg: str, request: gr.Request):
        return start(ctx, name, lg, request)

    def on_rate_2(name: str | None, pid, text: str, lg: str, request: gr.Request):
        return rate(ctx, name, pid, text, 2, lg, request)

    def on_rate_1(name: str | None, pid, text: str, lg: str, request: gr.Request):
        return rate(ctx, name, pid, text, 1, lg, request)

    def on_rate_0(name: str | None, pid, text: str, lg: str, request: gr.Request):
        return rate(ctx, name, pid, text, 0, lg, request)

    def on_skip(name: str | None, pid, lg: str, request: gr.Request):
        return skip(ctx, name, pid, lg, request)

    def on_undo(name: str | None, lg: str, request: gr.Request):
        return undo(ctx, name, lg, request)

    def on_guidelines(is_open: bool, name: str | None, lg: str, request: gr.Request):
        return toggle_guidelines(ctx, is_open, name, lg, request)

    guide_btn.click(on_guidelines, [guide_open, who, lang], [guide_box, guide_text, guide_examples, guide_open],
                    api_visibility="private", show_progress="hidden")
    go_btn.click(on_start, [who, lang], outputs, api_name="annotate_start", **fast)
    who.input(on_start, [who, lang], outputs, api_visibility="private", **fast)
    b2.click(on_rate_2, [who, pair_id, note, lang], outputs, api_name="annotate_rate_2", **fast)
    b1.click(on_rate_1, [who, pair_id, note, lang], outputs, api_name="annotate_rate_1", **fast)
    b0.click(on_rate_0, [who, pair_id, note, lang], outputs, api_name="annotate_rate_0", **fast)
    skip_btn.click(on_skip, [who, pair_id, lang], outputs, api_name="annotate_skip", **fast)
    undo_btn.click(on_undo, [who, lang], outputs, api_name="annotate_undo", **fast)

    def refresh_names(lg: str, request: gr.Request):
        # Only the choices: the value is the user's, and they may have typed while this was on its way.
        if ctx.auth:
            try:
                actor = ctx.actor(request)
                text = t("annotate.signed_in_as", lg, name=actor.name, role=t(f"role.{actor.role}", lg))
            except StudioError as exc:
                text = error_text(exc, lg)
            return gr.update(), render.message(text, "info")
        return gr.update(choices=picker_names(ctx, request)), gr.update()

    def welcome(lg: str, current_pair):
        # What to do first, in the page's language (known only once the page has loaded); never over a pair.
        if current_pair is not None:
            return gr.update()
        return render.empty_card(t("annotate.press_start" if ctx.auth else "annotate.pick_name", lg))

    def leave(request: gr.Request):
        # The tab closed or reloaded: its reserved pair goes back to the pool now, not after 30 minutes.
        session = _session(request)
        if session:
            act.leave(ctx.project, session)

    ctx.on_unload.append(leave)
    ctx.on_load.append((refresh_names, [lang], [who, signed_in]))
    ctx.on_load.append((welcome, [lang, pair_id], [card]))
    return {"annotator": who, "start": go_btn, "card": card, "progress": progress, "status": status,
            "note": note, "pair_id": pair_id, "rate_2": b2, "rate_1": b1, "rate_0": b0, "guidelines": guide_box,
            "refresh_names": (refresh_names, [lang], [who, signed_in])}
