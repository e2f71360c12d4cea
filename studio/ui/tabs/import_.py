"""Import: load the demo, import files, pool candidates from the corpus, manage the team (admins)."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from studio.actions import backup as backup_actions
from studio.actions import collect, files
from studio.actions import queue as queue_actions
from studio.actions import team as team_actions
from studio.errors import Forbidden, StudioError
from studio.i18n import t
from studio.ui import render
from studio.ui.context import UIContext, error_text


def tiles(counts, lang: str) -> str:
    return render.stat_tiles([(t(f"import.count_{k}", lang), str(v), "") for k, v in counts.tables.items()])


def counts_html(ctx: UIContext, actor, lang: str) -> str:
    return tiles(collect.counts(ctx.project, actor), lang)


def team_table(ctx: UIContext, actor, lang: str) -> pd.DataFrame:
    people = [p for p in team_actions.team(ctx.project, actor) if not p.removed]
    columns = [t("import.col_name", lang), t("import.col_role", lang), t("import.col_ratings", lang)]
    return pd.DataFrame([(p.name, t(f"role.{p.role}", lang), p.ratings) for p in people], columns=columns)


def _counts_or_blank(ctx: UIContext, actor, lang: str, exc: Exception | None = None) -> str:
    """The tiles beside a message, or nothing for someone who may not see them (a refused actor is not asked
    again: each refusal is an audit entry)."""
    if actor is None or isinstance(exc, Forbidden):
        return ""
    try:
        return counts_html(ctx, actor, lang)
    except StudioError:
        return ""


def _team_or_keep(ctx: UIContext, actor, lang: str, exc: Exception):
    """The team table after a failed action, or the table as it is for someone who may not see it."""
    if actor is None or isinstance(exc, Forbidden):
        return gr.update()
    try:
        return team_table(ctx, actor, lang)
    except StudioError:
        return gr.update()


def summary_text(summary, lang: str) -> str:
    return t("import.done", lang, file=Path(summary.file).name, pairs=summary.pairs, existing=summary.existing_pairs,
             documents=summary.documents, queries=summary.queries, ratings=summary.ratings)


def run_import(ctx: UIContext, kind: str, upload, folder: str, split: str, min_relevant: float, annotate: bool,
               lang: str, request: gr.Request | None = None) -> tuple[str, str]:
    """Import an uploaded file (or, for BEIR, a folder in datasets/ or the demo); all or nothing."""
    actor = None
    try:
        actor = ctx.actor(request)
        if kind == "beir":
            if not (folder or "").strip():
                return render.message(t("import.need_folder", lang), "error"), _counts_or_blank(ctx, actor, lang)
            summary = collect.import_file(ctx.project, actor, "beir", files.dataset_folder(folder, field=t("import.folder", lang)),
                                          display_name=folder.strip(), split=split or "test",
                                          min_relevant=int(min_relevant), queue=bool(annotate))
        else:
            if upload is None:
                return render.message(t("import.need_file", lang), "error"), _counts_or_blank(ctx, actor, lang)
            path = Path(upload if isinstance(upload, str) else upload.name)
            summary = collect.import_file(ctx.project, actor, kind, path, display_name=path.name)
        return render.message(summary_text(summary, lang), "ok"), counts_html(ctx, actor, lang)
    except Exception as exc:
        return (render.message(t("import.failed", lang) + " " + error_text(exc, lang), "error"),
                _counts_or_blank(ctx, actor, lang, exc))


def run_pool(ctx: UIContext, k: float, retriever: str, lang: str, progress=None,
             request: gr.Request | None = None) -> tuple[str, str]:
    actor = None
    try:
        actor = ctx.actor(request)

        def report(fraction: float, stage: str) -> None:
            if progress is not None:
                progress(fraction, desc=t(f"import.pool_stage_{stage}", lang))

        result = collect.pool(ctx.project, actor, int(k), retriever, progress=report)
        done = t("import.pool_done", lang, added=result["added"], candidates=result["candidates"],
                 queries=result["queries"])
        if result.get("strategy"):
            done += " " + t("import.pool_ordered", lang, strategy=strategy_label(result["strategy"], lang))
        return render.message(done, "ok"), counts_html(ctx, actor, lang)
    except Exception as exc:
        return render.message(error_text(exc, lang), "error"), _counts_or_blank(ctx, actor, lang, exc)


def run_demo(ctx: UIContext, lang: str, request: gr.Request | None = None) -> tuple:
    actor = None
    try:
        actor = ctx.actor(request)
        s = collect.load_demo(ctx.project, actor)
        msg = render.message(t("import.demo_loaded", lang, pairs=s.pairs, documents=s.documents, queries=s.queries,
                               ratings=s.ratings), "ok")
        return msg, counts_html(ctx, actor, lang), gr.update(visible=False), team_table(ctx, actor, lang)
    except Exception as exc:
        return (render.message(error_text(exc, lang), "error"), _counts_or_blank(ctx, actor, lang, exc), gr.update(),
                _team_or_keep(ctx, actor, lang, exc))


def add_person(ctx: UIContext, name: str, role: str, lang: str,
               request: gr.Request | None = None) -> tuple[str, pd.DataFrame]:
    actor = None
    try:
        actor = ctx.actor(request)
        row, _ = team_actions.add_person(ctx.project, actor, name, role)
        return render.message(t("import.person_saved", lang, name=row["name"], role=t(f"role.{row['role']}", lang)),
                              "ok"), team_table(ctx, actor, lang)
    except Exception as exc:
        return render.message(error_text(exc, lang), "error"), _team_or_keep(ctx, actor, lang, exc)


def make_backup(ctx: UIContext, lang: str, request: gr.Request | None = None) -> tuple[str, dict]:
    """(message, file) for the Backup button: a new verified backup in the project's backups/ folder, offered to
    download (an admin's); the message names the file, never where the server keeps it."""
    try:
        info = backup_actions.make_backup(ctx.project, ctx.actor(request))
    except Exception as exc:
        return render.message(error_text(exc, lang), "error"), gr.update(value=None, visible=False)
    size = f"{info.bytes / 1e6:.1f} MB" if info.bytes >= 100_000 else f"{info.bytes / 1e3:.0f} KB"
    return (render.message(t("import.backup_made", lang, name=info.path.name, ratings=info.ratings, size=size), "ok"),
            gr.update(value=str(info.path), visible=True))


DEFAULT_STRATEGY = queue_actions.DEFAULT_STRATEGY


def strategy_label(name: str, lang: str) -> str:
    """A strategy's name in the page's language (its label key comes from the registry, studio/queue/)."""
    strategy = queue_actions.STRATEGIES.get(name)
    return t(strategy.label_key, lang) if strategy else name


def makeup_html(m: dict, lang: str) -> str:
    """The queue's make-up as tiles, and a note when pairs came after the strategy was applied."""
    html = render.stat_tiles([
        (t("import.queue_half", lang), str(m["half_taken"]), ""),
        (t("import.queue_untouched", lang), str(m["untouched"]), ""),
        (t("import.queue_double", lang), f"{m['double_rated']} / {m['queued']}", ""),
        (t("import.queue_reserved", lang), str(m["reserved"]), ""),
    ])
    if m["untouched_unordered"]:
        html += render.message(t("import.queue_unordered", lang, count=m["untouched_unordered"],
                                 strategy=strategy_label(m["strategy"], lang)), "warn")
    return html


def run_strategy(ctx: UIContext, name: str, lang: str, progress=None, request: gr.Request | None = None, *,
                 per_query: float = 2) -> tuple:
    """Order the queue by strategy `name` (``negatives``: check `per_query` mined negatives per query); (message,
    make-up)."""
    try:
        stage = (lambda f, what: progress(f, desc=t(f"import.pool_stage_{what}", lang))) if progress else None
        actor = ctx.actor(request)
        if name in queue_actions.ADDS_PAIRS:
            n = 2 if per_query is None else int(per_query)
            m = queue_actions.check_negatives(ctx.project, actor, per_query=n, progress=stage)
            c = m["check_negatives"]
            text = t("import.negatives_queued", lang, count=c["candidates"], queries=c["queries"], added=c["added"])
        else:
            m = queue_actions.set_strategy(ctx.project, actor, name, progress=stage)
            text = t("import.queue_applied", lang, strategy=strategy_label(name, lang))
        return render.message(text, "ok"), makeup_html(m, lang)
    except Exception as exc:
        return render.message(error_text(exc, lang), "error"), gr.update()


def refresh(ctx: UIContext, lang: str, request: gr.Request | None = None) -> tuple:
    """(welcome, tiles, team table, BEIR folder choices) for whoever opens the tab; blank for anyone below admin
    (the tab is hidden from them, and the actions would refuse them)."""
    try:
        actor = ctx.actor(request)
        c = collect.counts(ctx.project, actor)
        m = queue_actions.makeup(ctx.project, actor)
        return (gr.update(visible=c.empty), tiles(c, lang), team_table(ctx, actor, lang),
                gr.update(choices=collect.beir_folders(ctx.project, actor)), gr.update(value=m["strategy"]),
                makeup_html(m, lang))
    except StudioError:
        return gr.update(visible=False), "", pd.DataFrame(), gr.update(choices=[]), gr.update(), ""


def build(ctx: UIContext) -> dict:
    i18n = ctx.i18n
    with gr.Group(visible=False, elem_id="rs-welcome") as welcome:
        gr.Markdown(i18n("import.welcome"))
        demo_btn = gr.Button(i18n("import.load_demo"), variant="primary", elem_id="rs-load-demo")
    counts = gr.HTML(elem_id="rs-counts")
    message = gr.HTML(elem_id="rs-import-message")
    with gr.Row():
        with gr.Column(scale=3):
            gr.Markdown(i18n("import.files_title"))
            kind = gr.Radio([(i18n(f"import.kind_{k}"), k) for k in collect.KINDS], value="pairs",
                            label=i18n("import.kind"), elem_id="rs-kind")
            upload = gr.File(label=i18n("import.file"),  # the type is checked by the reader, in the page's language
                             elem_id="rs-upload")
            with gr.Row(visible=False) as beir_row:
                # Names of folders in datasets/ (and the bundled demo), never a path on the server.
                folder = gr.Dropdown(choices=[files.DEMO], value=None, allow_custom_value=True,
                                     label=i18n("import.folder"), info=i18n("import.folder_info"), scale=3,
                                     elem_id="rs-beir-folder")
                split = gr.Textbox(label=i18n("import.split"), value="test", scale=1)
                min_rel = gr.Number(label=i18n("import.min_relevant"), value=1, precision=0, scale=1)
            annotate = gr.Checkbox(label=i18n("import.annotate_beir"), value=False, visible=False)
            import_btn = gr.Button(i18n("import.run"), variant="primary", elem_id="rs-import-run")
            with gr.Accordion(i18n("import.formats_title"), open=False):
                gr.Markdown(i18n("import.formats"))
        with gr.Column(scale=2):
            gr.Markdown(i18n("import.pool_title"))
            k = gr.Slider(1, 100, value=20, step=1, label=i18n("import.pool_k"))
            retriever = gr.Radio([(i18n(f"import.retriever_{r}"), r) for r in ("bm25", "dense", "hybrid")],
                                 value="hybrid", label=i18n("import.retriever"))
            pool_btn = gr.Button(i18n("import.pool_run"), elem_id="rs-pool-run")
            pool_message = gr.HTML(elem_id="rs-pool-message")  # beside its button, not at the top of the page
            gr.Markdown(i18n("import.queue_title"))
            strategy = gr.Radio([(i18n(s_.label_key), s_.name) for s_ in queue_actions.STRATEGIES.values()],
                                value=DEFAULT_STRATEGY,
                                label=i18n("import.strategy"), info=i18n("import.strategy_info"),
                                elem_id="rs-strategy")
            per_query = gr.Number(value=2, precision=0, minimum=1, maximum=20, visible=False,
                                  label=i18n("import.negatives_per_query"),
                                  info=i18n("import.negatives_per_query_info"), elem_id="rs-negatives-per-query")
            strategy_btn = gr.Button(i18n("import.strategy_apply"), size="sm", elem_id="rs-strategy-apply")
            queue_message = gr.HTML(elem_id="rs-queue-message")  # beside its button, not at the top of the page
            makeup = gr.HTML(elem_id="rs-queue-makeup")
            gr.Markdown(i18n("import.team_title"))
            with gr.Row():
                person = gr.Textbox(label=i18n("import.col_name"), scale=2)
                role = gr.Dropdown([(i18n(f"role.{r}"), r) for r in ("annotator", "expert", "admin")],
                                   value="annotator", label=i18n("import.col_role"), scale=1)
            person_btn = gr.Button(i18n("import.person_save"), size="sm")
            team = gr.Dataframe(interactive=False, max_height=260)
            with gr.Accordion(i18n("import.backup_title"), open=False, elem_id="rs-backup"):
                gr.Markdown(i18n("import.backup_info"))
                backup_btn = gr.Button(i18n("import.backup_make"), size="sm", elem_id="rs-backup-make")
                backup_file = gr.File(label=i18n("import.backup_file"), interactive=False, visible=False,
                                      elem_id="rs-backup-file")

    def on_kind(kind_: str):
        beir = kind_ == "beir"
        return gr.update(visible=not beir), gr.update(visible=beir), gr.update(visible=beir)

    def on_import(kind_: str, upload_, folder_: str, split_: str, min_rel_: float, annotate_: bool, lang: str,
                  request: gr.Request):
        return run_import(ctx, kind_, upload_, folder_, split_, min_rel_, annotate_, lang, request)

    def on_pool(k_: float, retriever_: str, lang: str, request: gr.Request, progress=gr.Progress()):
        return run_pool(ctx, k_, retriever_, lang, progress, request)

    def on_demo(lang: str, request: gr.Request):
        return run_demo(ctx, lang, request)

    def on_person(name: str, role_: str, lang: str, request: gr.Request):
        return add_person(ctx, name, role_, lang, request)

    def on_refresh(lang: str, request: gr.Request):
        return refresh(ctx, lang, request)

    def on_backup(lang: str, request: gr.Request):
        return make_backup(ctx, lang, request)

    def on_strategy(name: str, per_query_: float, lang: str, request: gr.Request, progress=gr.Progress()):
        return run_strategy(ctx, name, lang, progress, request, per_query=per_query_)

    strategy_btn.click(on_strategy, [strategy, per_query, ctx.lang], [queue_message, makeup], api_name="queue_strategy",
                       concurrency_limit=1)
    strategy.change(lambda name: gr.update(visible=name in queue_actions.ADDS_PAIRS), [strategy], [per_query],
                    api_visibility="private")

    kind.change(on_kind, [kind], [upload, beir_row, annotate], api_visibility="private")
    import_btn.click(on_import, [kind, upload, folder, split, min_rel, annotate, ctx.lang], [message, counts],
                     api_name="import_run", concurrency_limit=1)
    pool_btn.click(on_pool, [k, retriever, ctx.lang], [pool_message, counts], api_name="import_pool",
                   concurrency_limit=1)
    demo_btn.click(on_demo, [ctx.lang], [message, counts, welcome, team], api_name="import_demo",
                   concurrency_limit=1)
    person_btn.click(on_person, [person, role, ctx.lang], [message, team], api_name="team_save")
    backup_btn.click(on_backup, [ctx.lang], [message, backup_file], api_name="backup_make", concurrency_limit=1)

    return {"welcome": welcome, "demo": demo_btn, "counts": counts, "message": message,
            "refresh": (on_refresh, [ctx.lang], [welcome, counts, team, folder, strategy, makeup])}
