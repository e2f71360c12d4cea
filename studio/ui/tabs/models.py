"""Models: what is in models/, what is wrong with each folder (in words), check, set default, delete."""

from __future__ import annotations

import html

import gradio as gr
import pandas as pd

from studio.actions import index as index_actions
from studio.actions import models as actions
from studio.errors import StudioError
from studio.i18n import t
from studio.ui import render
from studio.ui.context import UIContext, error_text


def models_table(infos: list, lang: str) -> pd.DataFrame:
    columns = [t("models.col_default", lang), t("models.col_name", lang), t("models.col_kind", lang),
               t("models.col_size", lang), t("models.col_loads", lang), t("models.col_status", lang)]
    rows = [("★" if i.is_default else "", i.name, t(f"models.kind_{i.kind}", lang), f"{i.size_mb:.0f} MB",
             ", ".join(i.loads_with), t("models.ok", lang) if i.ok else t("models.broken", lang)) for i in infos]
    return pd.DataFrame(rows, columns=columns)


def _loss(value) -> str:
    """A loss as the Train tab shows it: four decimals."""
    return f"{value:.4f}" if isinstance(value, (int, float)) else ""


def _scores(held_out: dict, lang: str) -> str:
    """Held-out scores as ``ndcg@10 0.5120``, or that none was recorded."""
    if not held_out:
        return t("models.origin_no_held_out", lang)
    return ", ".join(f"{name.removeprefix('eval_')} {value:.4f}" for name, value in sorted(held_out.items()))


def origin_rows(info, lang: str) -> list[tuple[str, str]]:
    """(label, value) of where a studio-trained model came from: base, method, training and validation data (named
    inside the project, never by a server path), date, how many queries each held, final losses and the held-out
    score; [] for a model the studio did not train."""
    facts = actions.provenance(info)
    if not facts:
        return []
    queries = ""
    if facts["train_queries"] is not None:
        queries = t("models.origin_queries_value", lang, train=facts["train_queries"],
                    valid=facts["valid_queries"] or 0)
    rows = [(t("models.origin_base", lang), facts["base"]), (t("models.origin_method", lang), facts["method"]),
            (t("models.origin_train", lang), facts["train"]), (t("models.origin_valid", lang), facts["valid"]),
            (t("models.origin_created", lang), facts["created"]), (t("models.origin_queries", lang), queries),
            (t("models.origin_loss", lang), _loss(facts["final_loss"])),
            (t("models.origin_eval_loss", lang), _loss(facts["final_eval_loss"])),
            (t("models.origin_held_out", lang), _scores(facts["held_out"], lang))]
    return [(k, str(v)) for k, v in rows if v not in (None, "")]


def _shown(params: dict) -> dict:
    """A problem's parameters with a folder named inside the project (``not_a_folder``'s path)."""
    return {**params, "path": actions.shown_path(params["path"])} if params.get("path") else params


def details(info, lang: str) -> str:
    """The picked model's card: its place in the project (never a server path), where it came from, its
    problems."""
    items = "".join(
        render.message(t(f"models.problem_{p.code}", lang, **_shown(p.params)),
                       "error" if p.severity == "error" else "warn")
        for p in info.problems) or render.message(t("models.no_problems", lang), "ok")
    origin = "".join(f"<div><b>{html.escape(k)}</b>: {html.escape(v)}</div>" for k, v in origin_rows(info, lang))
    return f'<div class="rs-card"><div class="rs-query">{html.escape(info.name)}</div>' \
           f'<div class="rs-path">{html.escape(actions.shown_path(info.path) or "")}</div>{origin}{items}</div>'


def _error(exc: Exception, lang: str) -> str:
    return render.message(error_text(exc, lang), "error")


def _picked(name: str | None, lang: str) -> str:
    """The model picked in the page, as a name (a server path is refused)."""
    return actions.model_field(name, field=t("models.pick_label", lang))


def _table(ctx: UIContext, request: gr.Request | None, lang: str):
    """The models table as the actor may see it now, or no change (a refusal is shown beside it)."""
    try:
        return models_table(actions.list_models(ctx.project, ctx.actor(request)), lang)
    except StudioError:
        return gr.update()


def show(ctx: UIContext, name: str | None, lang: str, request: gr.Request | None = None) -> str:
    """The picked model's details: layout problems, where it came from."""
    if not name:
        return render.empty_card(t("models.pick", lang))
    try:
        info = next((i for i in actions.list_models(ctx.project, ctx.actor(request)) if i.name == name), None)
    except StudioError as exc:
        return _error(exc, lang)
    return details(info, lang) if info else render.empty_card(t("models.pick", lang))


def run_check(ctx: UIContext, name: str | None, lang: str, request: gr.Request | None = None) -> str:
    """Load the picked model the way the studio will and run one input through it."""
    if not name:
        return render.empty_card(t("models.pick", lang))
    try:
        checked = actions.check(ctx.project, ctx.actor(request), _picked(name, lang))
    except Exception as exc:
        return _error(exc, lang)
    note = render.message(t("models.check_ok" if checked.ok else "models.check_failed", lang),
                          "ok" if checked.ok else "error")
    return note + details(checked, lang)


def make_default(ctx: UIContext, name: str | None, lang: str, request: gr.Request | None = None) -> tuple:
    """Make the picked model the ★ default; the message and the table."""
    try:
        now = actions.set_default(ctx.project, ctx.actor(request), _picked(name, lang))
        message = render.message(t("models.default_set", lang, name=now), "ok")
    except Exception as exc:
        message = _error(exc, lang)
    return message, _table(ctx, request, lang)


def remove(ctx: UIContext, name: str | None, confirmed: bool, lang: str, request: gr.Request | None = None) -> tuple:
    """Delete the picked model once the box is ticked; the message, the table and the picker."""
    if not confirmed:
        return render.message(t("models.confirm_first", lang), "warn"), gr.update(), gr.update()
    try:
        actor = ctx.actor(request)
        actions.delete(ctx.project, actor, _picked(name, lang))
        names = [i.name for i in actions.list_models(ctx.project, actor)]
    except Exception as exc:
        return _error(exc, lang), _table(ctx, request, lang), gr.update()
    return (render.message(t("models.deleted", lang, name=name), "ok"), _table(ctx, request, lang),
            gr.update(choices=names, value=names[0] if names else None))


def encode_ahead(ctx: UIContext, name: str | None, lang: str, request: gr.Request | None = None,
                 progress=None) -> str:
    """Encode the project's corpus with the picked embedder now (only new or changed documents), the bar showing
    done / total and the time left; the message says how many were encoded and reused."""
    if not name:
        return render.empty_card(t("models.pick", lang))
    try:
        with index_actions.encoding_progress(index_actions.eta_listener(progress, lang)):
            done = index_actions.encode_ahead(ctx.project, ctx.actor(request), _picked(name, lang))
    except Exception as exc:
        return _error(exc, lang)
    return render.message(t("models.encode_ahead_done", lang, model=name, documents=done.documents,
                            encoded=done.encoded, reused=done.reused, seconds=f"{done.seconds:.1f}"), "ok")


def refresh(ctx: UIContext, lang: str, current: str | None, request: gr.Request | None = None) -> tuple:
    """The table and the picker; blank for someone below an admin (the tab is hidden for them)."""
    try:
        infos = actions.list_models(ctx.project, ctx.actor(request))
    except StudioError:
        return None, gr.update(choices=[], value=None)
    names = [i.name for i in infos]
    return models_table(infos, lang), gr.update(choices=names, value=current if current in names else names[0])


def build(ctx: UIContext) -> dict:
    i18n = ctx.i18n
    gr.Markdown(i18n("models.intro"))
    table = gr.Dataframe(interactive=False, max_height=320)
    with gr.Row(equal_height=True):
        name = gr.Dropdown(choices=[], label=i18n("models.pick_label"), scale=3)
        check_btn = gr.Button(i18n("models.check"), scale=1)
        default_btn = gr.Button(i18n("models.set_default"), scale=1)
    with gr.Row(equal_height=True):
        confirm = gr.Checkbox(False, label=i18n("models.confirm"), scale=3)
        delete_btn = gr.Button(i18n("models.delete"), variant="stop", scale=1)
    with gr.Row(equal_height=True):
        gr.Markdown(i18n("models.encode_ahead_help"))
        encode_btn = gr.Button(i18n("models.encode_ahead"), scale=0, min_width=220)
    message = gr.HTML()
    info = gr.HTML()

    def on_pick(n: str | None, lg: str, request: gr.Request):
        return show(ctx, n, lg, request)

    def on_check(n: str | None, lg: str, request: gr.Request):
        return run_check(ctx, n, lg, request)

    def on_default(n: str | None, lg: str, request: gr.Request):
        return make_default(ctx, n, lg, request)

    def on_delete(n: str | None, c: bool, lg: str, request: gr.Request):
        return remove(ctx, n, c, lg, request)

    def on_encode(n: str | None, lg: str, request: gr.Request, progress=gr.Progress()):
        return encode_ahead(ctx, n, lg, request, progress)

    def on_open(lg: str, current: str | None, request: gr.Request):
        return refresh(ctx, lg, current, request)

    name.change(on_pick, [name, ctx.lang], info, api_visibility="private")
    check_btn.click(on_check, [name, ctx.lang], info, concurrency_limit=1, api_name="models_check")
    default_btn.click(on_default, [name, ctx.lang], [message, table], api_name="models_set_default")
    encode_btn.click(on_encode, [name, ctx.lang], message, concurrency_limit=1, api_name="models_encode_ahead")
    delete_btn.click(on_delete, [name, confirm, ctx.lang], [message, table, name], api_name="models_delete")
    return {"refresh": (on_open, [ctx.lang, name], [table, name])}
