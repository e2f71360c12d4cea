"""The Gradio app: a header with the language switch, one tab per stage, thin handlers."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import gradio as gr

from studio.config import DEFAULT_DB
from studio.i18n import LANGUAGE_NAMES, LANGUAGES
from studio.ui.boot import boot_middleware
from studio.ui.context import UIContext, make_i18n
from studio.ui.tabs import adjudicate, agreement, annotate, compare, data, evaluate, import_, models, train

UI_DIR = Path(__file__).parent
CSS = (UI_DIR / "style.css").read_text(encoding="utf-8")


def build_app(db_path: str | Path = DEFAULT_DB) -> tuple[gr.Blocks, gr.I18n]:
    """Build the Blocks app over the database at `db_path`; returns it with the i18n to launch it with."""
    i18n = make_i18n()
    ctx = UIContext(Path(db_path), i18n)
    with gr.Blocks(title="Relevance Studio") as demo:
        with gr.Row(elem_id="rs-header"):
            gr.Markdown(i18n("app.header"), elem_id="rs-brand")
            switch = gr.Radio([(LANGUAGE_NAMES[lang], lang) for lang in LANGUAGES], value="en",
                              label=i18n("app.language"), elem_id="rs-lang-switch", scale=0, min_width=240)
        ctx.lang = gr.Textbox(value="en", visible=False, elem_id="rs-lang")
        with gr.Tabs(elem_id="rs-tabs"):
            with gr.Tab(i18n("tab.import"), id="import") as t_import:
                imp = import_.build(ctx)
            with gr.Tab(i18n("tab.annotate"), id="annotate") as t_annotate:
                ann = annotate.build(ctx)
            with gr.Tab(i18n("tab.agreement"), id="agreement") as t_agreement:
                agr = agreement.build(ctx)
            with gr.Tab(i18n("tab.adjudicate"), id="adjudicate") as t_adjudicate:
                adj = adjudicate.build(ctx)
            with gr.Tab(i18n("tab.data"), id="data"):
                data.build(ctx)
            with gr.Tab(i18n("tab.train"), id="train") as t_train:
                trn = train.build(ctx)
            with gr.Tab(i18n("tab.models"), id="models") as t_models:
                mdl = models.build(ctx)
            with gr.Tab(i18n("tab.evaluate"), id="evaluate") as t_evaluate:
                evl = evaluate.build(ctx)
            with gr.Tab(i18n("tab.compare"), id="compare") as t_compare:
                cmp = compare.build(ctx)

        # Each tab refreshes when it is opened, so what one person did in another tab shows up.
        for tab, parts in ((t_import, imp), (t_annotate, ann), (t_agreement, agr), (t_adjudicate, adj),
                           (t_train, trn), (t_models, mdl), (t_evaluate, evl), (t_compare, cmp)):
            key = "refresh_names" if parts is ann else "refresh"
            fn, inputs, outputs = parts[key]
            tab.select(fn, inputs, outputs, show_progress="hidden", js=_with_browser_language(inputs, ctx.lang))

        switch.input(None, [switch], [switch], js="(lang) => window.studioSetLang(lang)")
        load = demo.load(None, None, [ctx.lang, switch],
                         js="() => { const l = window.studioLang ? window.studioLang() : 'en'; return [l, l]; }")
        for fn, inputs, outputs in [imp["refresh"], *ctx.on_load]:
            load = load.then(fn, inputs, outputs, show_progress="hidden")
    return demo, i18n


def _with_browser_language(inputs: list, lang: gr.Textbox) -> str | None:
    """Front-end code giving an event the browser's language instead of the hidden language box's value.

    Gradio fires the first tab's `select` as the page mounts, before the page's `load` has filled the language
    box: without this, that refresh ran in English and could finish after the load's own refresh in Chinese.
    """
    if lang not in inputs:
        return None
    at = inputs.index(lang)
    return f"(...args) => {{ args[{at}] = window.studioLang ? window.studioLang() : args[{at}]; return args; }}"


def start_scheduler(db_path: str | Path, every: float = 5.0) -> threading.Thread:
    """Re-attach to workers that outlived a restart, then keep starting queued jobs when there is room.

    Only supervision happens in the app process; training always runs in the worker's own process.
    """
    from studio.store import opened
    from studio.training import jobs

    def loop() -> None:
        while True:
            try:
                with opened(db_path) as db:
                    jobs.start_queued(db)
            except Exception as exc:  # keep supervising; the Train tab shows job errors
                print(f"job scheduler: {exc}", file=sys.stderr)
            time.sleep(every)

    thread = threading.Thread(target=loop, name="job-scheduler", daemon=True)
    thread.start()
    return thread


def launch(db_path: str | Path = DEFAULT_DB, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
           auth: str | None = None, prevent_thread_lock: bool = False) -> gr.Blocks:
    """Start the app. Binds to 127.0.0.1 unless told otherwise; sharing requires --auth."""
    from studio.store import connect

    connect(db_path).close()  # create and migrate the database before the first request
    start_scheduler(db_path)
    credentials = [tuple(item.split(":", 1)) for item in auth.split(",")] if auth else None
    if share and not credentials:
        raise SystemExit("--share needs --auth user:password so strangers cannot edit your labels")
    demo, i18n = build_app(db_path)
    demo.queue(default_concurrency_limit=8)
    demo.launch(server_name=host, server_port=port, share=share, auth=credentials, i18n=i18n, css=CSS,
                theme=gr.themes.Soft(), prevent_thread_lock=prevent_thread_lock, show_error=True,
                footer_links=["settings"], app_kwargs={"middleware": boot_middleware()})
    return demo
