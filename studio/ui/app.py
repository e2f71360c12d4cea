"""The Gradio app: a header with the language switch, one tab per stage, thin handlers."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import gradio as gr

from studio.actions import Project, jobs, team
from studio.actions.backup import start_schedule
from studio.actions.base import preloaded
from studio.config import DEFAULT_DB, is_loopback
from studio.errors import StudioError
from studio.i18n import LANGUAGE_NAMES, LANGUAGES
from studio.ui.boot import boot_middleware
from studio.ui.context import UIContext, make_i18n
from studio.ui.tabs import adjudicate, agreement, annotate, compare, data, evaluate, import_, models, train
from studio.ui.web import WebGuard, WebSettings, private_temp_dir, sign_in_message

UI_DIR = Path(__file__).parent
CSS = (UI_DIR / "style.css").read_text(encoding="utf-8")


# The least role that may use each tab; the tab is hidden from anyone below it, and every action behind it checks
# the role again on the server (studio.actions), so hiding is a courtesy, not the protection. ③ is an annotator's too,
# for their own line of the annotator report: its agreement part stays hidden for them (agreement.open_tab).
TAB_ROLES = {"import": "admin", "annotate": "annotator", "agreement": "annotator", "adjudicate": "expert",
             "data": "admin", "train": "admin", "models": "admin", "evaluate": "expert", "compare": "expert"}


def build_app(db_path: str | Path = DEFAULT_DB, *, auth: bool = False) -> tuple[gr.Blocks, gr.I18n]:
    """Build the Blocks app over the database at `db_path`; returns it with the i18n to launch it with.

    With `auth` (sign-in on) every event acts as the signed-in user, and tabs above their role are hidden.
    """
    i18n = make_i18n()
    ctx = UIContext(Path(db_path), i18n, auth=auth)
    builders = {"import": import_, "annotate": annotate, "agreement": agreement, "adjudicate": adjudicate,
                "data": data, "train": train, "models": models, "evaluate": evaluate, "compare": compare}
    with gr.Blocks(title="Relevance Studio") as demo:
        with gr.Row(elem_id="rs-header"):
            gr.Markdown(i18n("app.header"), elem_id="rs-brand")
            switch = gr.Radio([(LANGUAGE_NAMES[lang], lang) for lang in LANGUAGES], value="en",
                              label=i18n("app.language"), elem_id="rs-lang-switch", scale=0, min_width=240)
            if auth:  # Gradio's own route ends the session and shows the sign-in page again
                gr.Button(i18n("app.sign_out"), link="/logout", size="sm", scale=0, min_width=100,
                          elem_id="rs-sign-out")
        ctx.lang = gr.Textbox(value="en", visible=False, elem_id="rs-lang")
        tabs, parts = {}, {}
        # With sign-in, only ② and ③ (an annotator's) show until the page knows who is there: nothing flashes that a
        # role may not use.
        with gr.Tabs(elem_id="rs-tabs", selected="annotate" if auth else None):
            for key, builder in builders.items():
                with gr.Tab(i18n(f"tab.{key}"), id=key, visible=not auth or TAB_ROLES[key] == "annotator") as tab:
                    tabs[key], parts[key] = tab, builder.build(ctx)

        # Each tab refreshes when it is opened, so what one person did in another tab shows up. A refresh, like each
        # step of the load chain, is what the page loads by itself: a refusal in it is not audited (preloaded).
        once: dict = {}

        def page_loads(fn: Callable) -> Callable:
            return once.setdefault(fn, preloaded(fn))

        for key, tab in tabs.items():
            refresh = parts[key].get("refresh_names" if key == "annotate" else "refresh")
            if refresh is None:
                continue
            fn, inputs, outputs = refresh
            tab.select(page_loads(fn), inputs, outputs, show_progress="hidden", api_visibility="private",
                       js=_with_browser_language(inputs, ctx.lang))

        def visible_tabs(request: gr.Request):
            try:
                actor = ctx.actor(request)
            except StudioError:
                return [gr.Tab(visible=role == "annotator") for role in TAB_ROLES.values()]
            return [gr.Tab(visible=actor.can(TAB_ROLES[key])) for key in tabs]

        switch.input(None, [switch], [switch], js="(lang) => window.studioSetLang(lang)")
        load = demo.load(None, None, [ctx.lang, switch],
                         js="() => { const l = window.studioLang ? window.studioLang() : 'en'; return [l, l]; }")
        if auth:
            load = load.then(visible_tabs, None, list(tabs.values()), show_progress="hidden",
                             api_visibility="private")
        for fn, inputs, outputs in [parts["import"]["refresh"], *ctx.on_load]:
            load = load.then(page_loads(fn), inputs, outputs, show_progress="hidden", api_visibility="private")
        for fn in ctx.on_unload:
            demo.unload(fn)
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

    project = Project(Path(db_path))

    def loop() -> None:
        while True:
            try:
                jobs.supervise(project)
            except Exception as exc:  # keep supervising; the Train tab shows job errors
                print(f"job scheduler: {exc}", file=sys.stderr)
            time.sleep(every)

    thread = threading.Thread(target=loop, name="job-scheduler", daemon=True)
    thread.start()
    return thread


def sign_in_check(db_path: str | Path, auth: str | None):
    """The sign-in check for Gradio, or None without sign-in.

    `auth` is None (no sign-in), ``ACCOUNTS`` (``--auth`` alone: the team's accounts in the database) or a quick-start
    list ``alice:pw,bob:pw`` (added to the accounts first, see :func:`studio.actions.team.quick_start_accounts`).
    """

    if auth is None:
        return None
    project = Project(Path(db_path))
    if auth == ACCOUNTS:
        if not team.has_accounts(project):
            raise StudioError("no_accounts")
    else:
        team.quick_start_accounts(project, auth)
    return lambda username, password: team.sign_in(project, username, password)


ACCOUNTS = "@accounts"  # `--auth` given without a list


def launch(db_path: str | Path = DEFAULT_DB, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
           auth: str | None = None, prevent_thread_lock: bool = False, web: WebSettings | None = None,
           backup_every: float | None = None, backup_keep: int = 7) -> gr.Blocks:
    """Start the app. Binds to 127.0.0.1 unless told otherwise; another address or a share link requires sign-in.

    `web` holds the web layer's settings (origins, sign-in throttling, session expiry, upload size; see
    :mod:`studio.ui.web`; without it, uploads are limited only with sign-in). Gradio's cache is the project's private ``.gradio-tmp`` folder (0700), emptied of
    copies older than ``web.cache_age_s``. The returned Blocks carries its :class:`~studio.ui.web.WebGuard` as
    ``web_guard``.

    Raises StudioError (before anything starts) when the address or the sign-in settings are unsafe or invalid.
    """

    if auth is None and (share or not is_loopback(host)):
        raise StudioError("auth_required", host="a share link" if share else host)
    web = web or WebSettings(max_upload_mb=None if auth is None else WebSettings.max_upload_mb)
    with Project(Path(db_path)).db():
        pass  # create and migrate the database before the first request
    check = sign_in_check(db_path, auth)
    temp_dir = private_temp_dir(Path(db_path).resolve().parent)  # before the Blocks: Gradio reads it then
    guard = WebGuard(Path(db_path), web, auth=check is not None, password_check=check, temp_dir=temp_dir)
    start_scheduler(db_path)
    if backup_every:  # a verified backup into backups/ every `backup_every` hours, the newest `backup_keep` kept

        start_schedule(db_path, backup_every, backup_keep)
    demo, i18n = build_app(db_path, auth=check is not None)
    demo.delete_cache = (web.cache_check_s, web.cache_age_s)
    demo.web_guard = guard
    demo.queue(default_concurrency_limit=8)
    demo.launch(server_name=host, server_port=port, share=share, auth=guard.check_password if check else None,
                i18n=i18n, css=CSS, theme=gr.themes.Soft(), prevent_thread_lock=prevent_thread_lock, show_error=True,
                footer_links=["settings"], max_file_size=web.max_upload_bytes,
                app_kwargs={"middleware": boot_middleware() + guard.middleware(), "lifespan": guard.lifespan},
                auth_message=sign_in_message())  # the header's name; the page words it per visitor
    return demo
