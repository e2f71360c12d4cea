"""Import: load the demo, import files, pool candidates from the corpus, manage the team and its control pairs
(admins)."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from studio.actions import backup as backup_actions
from studio.actions import collect, files
from studio.actions import controls as control_actions
from studio.actions import index as index_actions
from studio.actions import queue as queue_actions
from studio.actions import team as team_actions
from studio.actions.base import preloaded
from studio.errors import Forbidden, StudioError
from studio.i18n import t
from studio.ui import render
from studio.ui.tabs import guidelines_panel
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

        with index_actions.encoding_progress(index_actions.eta_listener(progress, lang)):  # the corpus's ETA
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


def controls_html(s: dict, lang: str) -> str:
    """The controls' status: counts by expected label, serving, qualification and who failed it (admins see it
    here; failing blocks nobody)."""
    accuracy = "-" if s["accuracy"] is None else f"{100 * s['accuracy']:.0f}%"
    lines = [t("import.controls_status", lang, controls=s["controls"], l0=s["by_label"]["0"], l1=s["by_label"]["1"],
               l2=s["by_label"]["2"], answers=s["answers"], people=s["people"], correct=s["correct"],
               accuracy=accuracy),
             t("import.controls_serving_on", lang, percent=f"{100 * s['rate']:.0f}") if s["rate"] > 0
             else t("import.controls_serving_off", lang),
             t("import.controls_qualify_on", lang, first=s["qualify_first"], mark=f"{s['pass_mark']:g}")
             if s["qualify_first"] else t("import.controls_qualify_off", lang)]
    html = "".join(render.message(line, "info") for line in lines)
    if s["rate"] > 0 and not s["controls"]:
        html += render.message(t("import.controls_none_yet", lang), "warn")
    people = {state: ", ".join(f"{p['name']} ({p['correct']}/{p['answered']})" for p in s["qualification"]
                               if p["status"] == state) for state in ("failed", "passed", "pending")}
    for state, key, kind in (("failed", "import.controls_failed", "warn"), ("passed", "import.controls_passed", "ok"),
                             ("pending", "import.controls_pending", "info")):
        if people[state]:
            html += render.message(t(key, lang, names=people[state]), kind)
    return html


def controls_panel(ctx: UIContext, lang: str, request: gr.Request | None = None) -> tuple:
    """(rate, min accuracy, first N, pass mark, status) of the Control pairs panel; untouched for anyone who may
    not see it."""
    try:
        s = control_actions.status(ctx.project, ctx.actor(request))
    except StudioError:
        return gr.update(), gr.update(), gr.update(), gr.update(), ""
    return s["rate"], s["min_accuracy"], s["qualify_first"], s["pass_mark"], controls_html(s, lang)


def _controls_done(ctx: UIContext, actor, lang: str, text: str, s: dict | None = None) -> tuple[str, str]:
    return render.message(text, "ok"), controls_html(s or control_actions.status(ctx.project, actor), lang)


def run_controls_add(ctx: UIContext, n: float | None, lang: str, request: gr.Request | None = None) -> tuple:
    """Turn `n` gold pairs (0 or empty: all) into controls; (message, status)."""
    try:
        actor = ctx.actor(request)
        r = control_actions.add_from_gold(ctx.project, actor, n=int(n) if n else None)
        return _controls_done(ctx, actor, lang, t("import.controls_added", lang, added=r["added"],
                                                  existing=r["existing"], selected=r["selected"]), r["status"])
    except Exception as exc:
        return render.message(error_text(exc, lang), "error"), gr.update()


def run_controls_clear(ctx: UIContext, lang: str, request: gr.Request | None = None) -> tuple:
    """Stop using every control (answers kept); (message, status)."""
    try:
        actor = ctx.actor(request)
        r = control_actions.clear(ctx.project, actor)
        return _controls_done(ctx, actor, lang, t("import.controls_cleared", lang, removed=r["removed"],
                                                  answers=r["answers_kept"]), r["status"])
    except Exception as exc:
        return render.message(error_text(exc, lang), "error"), gr.update()


def run_controls_rate(ctx: UIContext, rate: float, min_accuracy: float, lang: str,
                      request: gr.Request | None = None) -> tuple:
    """Save the share of served pairs that are controls and the report's accuracy flag; (message, status)."""
    try:
        actor = ctx.actor(request)
        control_actions.set_rate(ctx.project, actor, rate)
        s = control_actions.set_min_accuracy(ctx.project, actor, min_accuracy)
        return _controls_done(ctx, actor, lang, t("import.controls_saved", lang), s)
    except Exception as exc:
        return render.message(error_text(exc, lang), "error"), gr.update()


def run_controls_qualify(ctx: UIContext, first: float | None, pass_mark: float, lang: str,
                         request: gr.Request | None = None) -> tuple:
    """Save the qualification (a new person's first N pairs are controls; 0 = off); (message, status)."""
    try:
        actor = ctx.actor(request)
        s = control_actions.set_qualification(ctx.project, actor, first or 0, pass_mark)
        return _controls_done(ctx, actor, lang, t("import.controls_saved", lang), s)
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
            with gr.Accordion(i18n("import.controls_title"), open=False, elem_id="rs-controls") as controls_box:
                gr.Markdown(i18n("import.controls_info"))
                with gr.Row():
                    ctl_n = gr.Number(value=0, precision=0, minimum=0, label=i18n("import.controls_n"), scale=2,
                                      elem_id="rs-controls-n")
                    ctl_add = gr.Button(i18n("import.controls_add"), size="sm", scale=1, elem_id="rs-controls-add")
                    ctl_clear = gr.Button(i18n("import.controls_clear"), size="sm", variant="stop", scale=1,
                                          elem_id="rs-controls-clear")
                ctl_rate = gr.Slider(0, control_actions.MAX_RATE, value=0, step=0.05,
                                     label=i18n("import.controls_rate"), elem_id="rs-controls-rate")
                ctl_min = gr.Slider(0, 1, value=0.7, step=0.05, label=i18n("import.controls_min_accuracy"),
                                    elem_id="rs-controls-min-accuracy")
                ctl_rate_btn = gr.Button(i18n("import.controls_rate_apply"), size="sm", elem_id="rs-controls-rate-save")
                with gr.Row():
                    ctl_first = gr.Number(value=0, precision=0, minimum=0, maximum=control_actions.MAX_QUALIFY_FIRST,
                                          label=i18n("import.controls_first"), scale=2, elem_id="rs-controls-first")
                    ctl_mark = gr.Slider(0, 1, value=0.8, step=0.05, label=i18n("import.controls_pass_mark"), scale=2,
                                         elem_id="rs-controls-pass-mark")
                ctl_qualify_btn = gr.Button(i18n("import.controls_qualify_apply"), size="sm",
                                            elem_id="rs-controls-qualify-save")
                ctl_message = gr.HTML(elem_id="rs-controls-message")  # beside its buttons
                ctl_status = gr.HTML(elem_id="rs-controls-status")
            with gr.Accordion(i18n("guidelines.panel_title"), open=False, elem_id="rs-guidelines-panel") as guide_box:
                guide = guidelines_panel.build(ctx)
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

    def on_controls_load(lang: str, request: gr.Request):
        return controls_panel(ctx, lang, request)

    def on_controls_add(n: float, lang: str, request: gr.Request):
        return run_controls_add(ctx, n, lang, request)

    def on_controls_clear(lang: str, request: gr.Request):
        return run_controls_clear(ctx, lang, request)

    def on_controls_rate(rate: float, min_accuracy: float, lang: str, request: gr.Request):
        return run_controls_rate(ctx, rate, min_accuracy, lang, request)

    def on_controls_qualify(first: float, mark: float, lang: str, request: gr.Request):
        return run_controls_qualify(ctx, first, mark, lang, request)

    guide_load, guide_inputs, guide_outputs = guide["refresh"]
    guide_box.expand(preloaded(guide_load), guide_inputs, guide_outputs, show_progress="hidden",
                     api_visibility="private")

    controls_fields = [ctl_rate, ctl_min, ctl_first, ctl_mark, ctl_status]
    ctx.on_load.append((on_controls_load, [ctx.lang], controls_fields))
    controls_box.expand(preloaded(on_controls_load), [ctx.lang], controls_fields, show_progress="hidden",
                        api_visibility="private")
    ctl_add.click(on_controls_add, [ctl_n, ctx.lang], [ctl_message, ctl_status], api_name="controls_add",
                  concurrency_limit=1)
    ctl_clear.click(on_controls_clear, [ctx.lang], [ctl_message, ctl_status], api_name="controls_clear",
                    concurrency_limit=1)
    ctl_rate_btn.click(on_controls_rate, [ctl_rate, ctl_min, ctx.lang], [ctl_message, ctl_status],
                       api_name="controls_rate")
    ctl_qualify_btn.click(on_controls_qualify, [ctl_first, ctl_mark, ctx.lang], [ctl_message, ctl_status],
                          api_name="controls_qualify")

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
