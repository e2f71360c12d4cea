"""Models: what is in models/, what is wrong with each folder (in words), check, set default, delete."""

from __future__ import annotations

import html

import gradio as gr
import pandas as pd

from studio.i18n import t
from studio.models.registry import check, delete, scan, set_default
from studio.ui import render
from studio.ui.context import UIContext, error_text


def models_table(lang: str) -> pd.DataFrame:
    columns = [t("models.col_default", lang), t("models.col_name", lang), t("models.col_kind", lang),
               t("models.col_size", lang), t("models.col_loads", lang), t("models.col_status", lang)]
    rows = [("★" if i.is_default else "", i.name, t(f"models.kind_{i.kind}", lang), f"{i.size_mb:.0f} MB",
             ", ".join(i.loads_with), t("models.ok", lang) if i.ok else t("models.broken", lang)) for i in scan()]
    return pd.DataFrame(rows, columns=columns)


def details(info, lang: str) -> str:
    items = "".join(
        render.message(t(f"models.problem_{p.code}", lang, **p.params), "error" if p.severity == "error" else "warn")
        for p in info.problems) or render.message(t("models.no_problems", lang), "ok")
    origin = ""
    if info.origin:
        fields = [(t("models.origin_base", lang), info.origin.get("base", "")),
                  (t("models.origin_method", lang), info.origin.get("method", "")),
                  (t("models.origin_job", lang), info.origin.get("job_dir", "")),
                  (t("models.origin_created", lang), info.origin.get("created", "")),
                  (t("models.origin_loss", lang), info.origin.get("final_loss", ""))]
        origin = "".join(f"<div><b>{html.escape(k)}</b>: {html.escape(str(v))}</div>" for k, v in fields if v != "")
    return f'<div class="rs-card"><div class="rs-query">{html.escape(info.name)}</div>' \
           f'<div class="rs-path">{html.escape(info.path)}</div>{origin}{items}</div>'


def find(name: str | None):
    for info in scan():
        if info.name == name:
            return info
    return None


def show(name: str | None, lang: str) -> str:
    info = find(name)
    return details(info, lang) if info else render.empty_card(t("models.pick", lang))


def run_check(name: str | None, lang: str) -> str:
    info = find(name)
    if info is None:
        return render.empty_card(t("models.pick", lang))
    try:
        checked = check(info.path)
        checked_note = render.message(t("models.check_ok" if checked.ok else "models.check_failed", lang),
                                      "ok" if checked.ok else "error")
        return checked_note + details(checked, lang)
    except Exception as exc:
        return render.message(error_text(exc, lang), "error")


def make_default(name: str | None, lang: str) -> tuple:
    try:
        set_default(name or "")
        return render.message(t("models.default_set", lang, name=name), "ok"), models_table(lang)
    except Exception as exc:
        return render.message(error_text(exc, lang), "error"), models_table(lang)


def remove(name: str | None, confirmed: bool, lang: str) -> tuple:
    if not confirmed:
        return render.message(t("models.confirm_first", lang), "warn"), models_table(lang), gr.update()
    try:
        delete(name or "")
        names = [i.name for i in scan()]
        return (render.message(t("models.deleted", lang, name=name), "ok"), models_table(lang),
                gr.update(choices=names, value=names[0] if names else None))
    except Exception as exc:
        return render.message(error_text(exc, lang), "error"), models_table(lang), gr.update()


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
    message = gr.HTML()
    info = gr.HTML()
    name.change(lambda n, lg: show(n, lg), [name, ctx.lang], info)
    check_btn.click(lambda n, lg: run_check(n, lg), [name, ctx.lang], info, concurrency_limit=1)
    default_btn.click(lambda n, lg: make_default(n, lg), [name, ctx.lang], [message, table])
    delete_btn.click(lambda n, c, lg: remove(n, c, lg), [name, confirm, ctx.lang], [message, table, name])

    def refresh(lg: str, current: str | None):
        names = [i.name for i in scan()]
        return models_table(lg), gr.update(choices=names, value=current if current in names else names[0])

    return {"refresh": (refresh, [ctx.lang, name], [table, name])}
