"""Train: launch a fine-tuning job, watch its loss live, cancel or resume it. Training runs in another process.

Everything here is an admin's (studio.actions.jobs checks it). The page sends names, never server paths: the
training file is a name inside exports/, the base model a name in models/ or a hub id.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from studio import config
from studio.actions import jobs
from studio.actions import files
from studio.actions.models import model_field
from studio.errors import Forbidden, StudioError
from studio.i18n import catalogue, t
from studio.ui import charts, render
from studio.ui.context import UIContext, error_text

R = jobs.recipe  # the form starts from the measured recipe (bench/quality.py), as `studio train` does

# The hyper-parameters the form shows, from the training settings' field table (studio/training/settings.py).
HYPER = tuple(s for s in jobs.SETTINGS if s.advanced)
# The form's fields, in the order of its components (TrainConfig's names); fields a caller leaves out at the end
# take the recipe's value.
FORM = ("task", "base", "train", "method", "name", *(s.name for s in HYPER))
# The form's number fields and the kind of number each holds.
NUMBERS = {s.name: s.type for s in HYPER if s.type in (int, float)}
# Left empty: chosen for the job (the method's rate, the base's length).
AUTOMATIC = tuple(s.name for s in HYPER if s.optional)
# The catalogue key of each field's label where it is not train.<field>.
LABELS = {"train": "train.data", **{s.name: s.label for s in HYPER if s.label != f"train.{s.name}"}}
HYPER_ROW = 5  # widgets per row of the hyper-parameter accordion
# What the worker is doing, in words, before its first step is logged (studio.training.job_folder.PHASES).
PHASE_KEYS = {None: "train.phase_launching", "checking": "train.phase_checking",
              "loading_model": "train.phase_loading_model", "reading_data": "train.phase_reading_data",
              "starting": "train.phase_starting", "training": "train.phase_training",
              "stopping": "train.phase_stopping", "exporting": "train.phase_exporting"}


def number(values: dict, name: str) -> int | float | None:
    """A number field of the form, as TrainConfig takes it; the recipe's value when the caller left it out.

    Raises:
        StudioError: ``train_field_empty``, ``train_not_a_number`` or ``train_not_whole``, naming the field.
    """
    if name not in values:
        return None if name in AUTOMATIC else R(name)
    raw = values[name]
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if name in AUTOMATIC:
            return None
        raise StudioError("train_field_empty", field=name)
    try:
        value = float(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        raise StudioError("train_not_a_number", field=name, value=str(raw)) from None
    if not math.isfinite(value):
        raise StudioError("train_not_a_number", field=name, value=str(raw))
    if NUMBERS[name] is float:
        return value
    if not value.is_integer():
        raise StudioError("train_not_whole", field=name, value=str(raw))
    return int(value)


def options(*values) -> dict:
    """The form's values as TrainConfig options, the training file and base model as typed in the page. A number
    field that is empty or not a number is refused, naming it (StudioError)."""
    v = dict(zip(FORM, values))
    name = (v.get("name") or "").strip()
    if not name:
        raise StudioError("train_field_empty", field="name")
    numbers = {key: number(v, key) for key in NUMBERS}
    numbers["passage_max_len"] = numbers["passage_max_len"] or None  # 0: the base's own length
    targets = v.get("lora_targets")
    return dict(
        task=v["task"], base=(v["base"] or "").strip() or "default", train=(v["train"] or "").strip(),
        name=name, method=v["method"], precision=v.get("precision", R("precision")),
        gradient_checkpointing=bool(v.get("gradient_checkpointing")),
        lora_targets=[x.strip() for x in (",".join(R("lora_targets")) if targets is None else targets).split(",")
                      if x.strip()],
        freeze_embeddings=bool(v.get("freeze_embeddings")), **numbers)


def base_name(base: str | None, lang: str) -> str:
    """The base model typed or picked in the page: a name in models/ (``default`` = the ★ model) or a hub id
    (``owner/name``). A path (absolute, '~', '.', '..', deeper than a hub id) is refused."""
    return model_field((base or "").strip() or "default", field=t("train.base", lang))


def training_path(name: str | None, lang: str) -> str:
    """The training file picked in the page (a name inside exports/) as its path; empty stays empty (the job then
    says to choose one)."""
    path = files.export_path(name, field=t("train.data", lang))
    return "" if path is None else str(path)


def page_options(lang: str, *values) -> dict:
    """The form's options with the page's names checked and turned into what a job needs."""
    opts = options(*values)
    return {**opts, "base": base_name(opts["base"], lang), "train": training_path(opts["train"], lang)}


def preview(ctx: UIContext, request: gr.Request | None, *values) -> str:
    """The `studio train` command that does the same as the form (for a GPU server, or a script), its training file
    relative to the project; blank for anyone but an admin and while the form does not read."""
    try:
        opts = options(*values)
        return jobs.command_preview(ctx.project, ctx.actor(request), opts)
    except (StudioError, TypeError, ValueError):
        return ""  # not an admin, a half-typed number or a name outside exports/: the command shows once it reads


def _whole(value: float | None, default: int) -> int:
    """A number from the form as a whole number (`default` when empty or not a number)."""
    try:
        return int(value) if value is not None and math.isfinite(float(value)) else default
    except (TypeError, ValueError):
        return default


def _float(value: float | None) -> float:
    try:
        number_ = float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0
    return number_ if math.isfinite(number_) else 0.0


def form_advice(ctx: UIContext, request: gr.Request | None, task: str, base: str | None, train_file: str | None,
                batch_size: float | None, epochs: float | None, max_steps: float | None) -> jobs.FormAdvice:
    """What the form warns about (studio.actions.jobs.form_advice); nothing for anyone but an admin."""
    try:
        return jobs.form_advice(ctx.project, ctx.actor(request), task=task, base=base, train=train_file,
                                batch_size=_whole(batch_size, 0), epochs=_float(epochs),
                                max_steps=_whole(max_steps, -1))
    except StudioError:  # Forbidden or signed out: no advice, and nothing about the files under exports/
        return jobs.FormAdvice()


def advice_html(found: jobs.FormAdvice, batch_size: float | None, epochs: float | None, lang: str) -> str:
    """The form's warnings: a reranker that would start without a reranker head (a new, untrained head), then so few
    optimizer steps that little will change."""
    html = render.message(t("train.reranker_new_head", lang), "warn") if found.new_head else ""
    if found.few_steps is not None:
        steps, lines = found.few_steps
        html += render.message(t("train.few_steps", lang, steps=steps, lines=lines, batch=int(batch_size),
                                 epochs=f"{float(epochs):g}"), "warn")
    return html


def fix_button(found: jobs.FormAdvice, lang: str) -> dict:
    """The one-click fix under the few-steps warning, saying what it will set ("Set epochs to 7 (21 steps)");
    hidden when the job takes enough steps."""
    if found.fix is None:
        return gr.update(visible=False)
    field, value, steps = found.fix
    key = "train.fix_epochs" if field == "epochs" else "train.fix_max_steps"
    return gr.update(value=t(key, lang, value=value, steps=steps), visible=True)


def advice(ctx: UIContext, request: gr.Request | None, task: str, base: str | None, train_file: str | None,
           batch_size: float | None, epochs: float | None, max_steps: float | None, lang: str) -> tuple[str, dict]:
    """(warnings, fix button) for the form as it stands: everything worth knowing before pressing Start."""
    found = form_advice(ctx, request, task, base, train_file, batch_size, epochs, max_steps)
    return advice_html(found, batch_size, epochs, lang), fix_button(found, lang)


def apply_fix(ctx: UIContext, request: gr.Request | None, task: str, base: str | None, train_file: str | None,
              batch_size: float | None, epochs: float | None, max_steps: float | None) -> tuple[dict, dict]:
    """(epochs, max steps) updated by the one-click fix: the value its button showed, nothing else changed; no
    change for anyone but an admin."""
    fix = form_advice(ctx, request, task, base, train_file, batch_size, epochs, max_steps).fix
    if fix is None:
        return gr.update(), gr.update()
    field, value, _ = fix
    return (gr.update(value=value), gr.update()) if field == "epochs" else (gr.update(), gr.update(value=value))


def jobs_table(rows: list[dict], lang: str) -> pd.DataFrame:
    columns = ["#", t("train.col_name", lang), t("train.col_task", lang), t("train.col_status", lang),
               t("train.col_created", lang)]
    return pd.DataFrame([(r["id"], r["name"], t(f"train.task_{r['task']}", lang), t(f"train.status_{r['status']}", lang),
                          r["created_at"].replace("T", " ")[:16]) for r in rows], columns=columns)


def job_choices(rows: list[dict]) -> list[tuple[str, int]]:
    """Jobs as (label, id), newest first. The label leaves out the status: it would go stale while the job
    runs (the card and the table beside it show the live status, in the user's language)."""
    return [(f"#{r['id']} · {r['name']}", r["id"]) for r in rows]


def labelled(exc: Exception, lang: str) -> Exception:
    """`exc` naming the form's field as the form labels it ("Queries per step"), not the setting ("batch_size")."""
    field = exc.params.get("field") if isinstance(exc, StudioError) else None
    key = LABELS.get(field, f"train.{field}") if isinstance(field, str) else None
    if key and key in catalogue(lang):
        exc.params = {**exc.params, "field": t(key, lang)}
    return exc


def resume_note(step: int | None, lang: str) -> str:
    """Where Resume continues, from the checkpoints on disk: "from step 40", or "again from step 1"."""
    return t("train.resume_from", lang, step=step) if step else t("train.resume_fresh", lang)


def phase_text(snapshot: jobs.JobSnapshot, lang: str) -> str | None:
    """What a running job's worker is doing when that is not simply the next step: loading the model, reading the
    data, the first step, saving a checkpoint to stop, writing the model. None otherwise."""
    if snapshot.status != "running":
        return None
    if snapshot.stopping:
        return t("train.phase_stopping", lang)
    if snapshot.phase == "training" and snapshot.last_loss:
        return None
    return t(PHASE_KEYS.get(snapshot.phase, PHASE_KEYS[None]), lang)


def waiting_text(snapshot: jobs.JobSnapshot, lang: str) -> str | None:
    """What a running job does before it has logged a step ("loading the model…"), for the empty chart."""
    return None if snapshot.last_loss else phase_text(snapshot, lang)


def model_folder(output_dir: str) -> str:
    """Where a job's model lies, as the project names it (``models/NAME``), not as the server's path."""
    return f"{Path(config.MODELS_DIR).name}/{Path(output_dir).name}"


def status_card(snapshot: jobs.JobSnapshot, lang: str) -> str:
    """Status, step, loss, time left and base model of a job (a JobSnapshot), with what its end means and where
    a resume would continue."""
    job, last = snapshot.job, snapshot.last_loss
    doing = phase_text(snapshot, lang)
    step = f"{last['step']} / {last.get('total_steps') or '?'}" if last else doing or "—"
    eta = last.get("eta_s")
    running = job["status"] == "running"
    status = t("train.stopping_status", lang) if snapshot.stopping else t(f"train.status_{job['status']}", lang)
    tiles = [
        (t("train.col_status", lang), status, {"succeeded": "rs-pass", "failed": "rs-fail"}.get(job["status"], "")),
        (t("train.step", lang), step, ""),
        (t("train.train_loss", lang), f"{last['loss']:.4f}" if last else "—", ""),
        (t("train.eta", lang), time.strftime("%H:%M:%S", time.gmtime(eta)) if eta and running else "—", ""),
    ]
    if snapshot.base:
        tiles.append((t("train.base", lang), snapshot.base, ""))
    html = render.stat_tiles(tiles)
    if snapshot.stopping:
        html += render.message(t("train.stopping_note", lang), "warn")
    elif doing and last:  # a resumed job loading again: its earlier steps are shown, say what happens now
        html += render.message(doing, "warn")
    elif job["status"] == "failed" and job["error"]:
        error = t("train.worker_died", lang) if snapshot.worker_died else job["error"]
        html += render.message(t("train.failed_because", lang, error=error), "error")
        html += render.message(resume_note(snapshot.checkpoint_step, lang), "warn")
    elif job["status"] == "succeeded":
        html += render.message(t("train.succeeded", lang, path=model_folder(job["output_dir"])), "ok")
    elif job["status"] == "cancelled":
        html += render.message(t("train.cancelled_note", lang) + " " + resume_note(snapshot.checkpoint_step, lang),
                               "warn")
    elif job["status"] == "queued":
        html += render.message(t("train.queued_note", lang), "warn")
    return html


def blank_watch() -> tuple:
    """What the job view shows someone who may not watch jobs (or is signed out): nothing, timer stopped."""
    return "", None, None, "", pd.DataFrame(), gr.Timer(active=False)


def poll(ctx: UIContext, request: gr.Request | None, job_id: int | None, lang: str) -> tuple:
    """(card, loss plot, lr plot, log tail, jobs table, timer) for the selected job; the timer stops when it ends.
    Blank for anyone but an admin."""
    try:
        actor = ctx.actor(request)
        rows = jobs.list_jobs(ctx.project, actor)
        if job_id is None:
            return (render.empty_card(t("train.no_job", lang)), None, None, "", jobs_table(rows, lang),
                    gr.Timer(active=False))
        snapshot = jobs.watch(ctx.project, actor, int(job_id))
    except StudioError:  # Forbidden, signed out, or a job this database does not have
        return blank_watch()
    table = jobs_table([snapshot.job if r["id"] == snapshot.job["id"] else r for r in rows], lang)
    return (status_card(snapshot, lang), charts.loss_curves(snapshot.metrics, lang, waiting=waiting_text(snapshot, lang)),
            charts.lr_curve(snapshot.metrics, lang), snapshot.log, table, gr.Timer(active=snapshot.active))


def form_problems(lang: str, *values) -> list[Exception]:
    """Everything wrong with the form at once, each naming its field as the form labels it: empty or non-numeric
    number fields, an empty name, a training file or base model the page may not send, no training file, then
    every setting the worker would refuse. Empty: the form reads."""
    v = dict(zip(FORM, values))
    found: list[Exception] = []
    if not (v.get("name") or "").strip():
        found.append(StudioError("train_field_empty", field="name"))
    numbers_read = True
    for key in NUMBERS:
        try:
            number(v, key)
        except StudioError as exc:
            found.append(exc)
            numbers_read = False
    try:
        base_name(v.get("base"), lang)
    except StudioError as exc:
        found.append(exc)
    try:
        if not training_path(v.get("train"), lang):
            found.append(StudioError("train_file_none"))
    except StudioError as exc:
        found.append(exc)
    if numbers_read:  # the settings' own rules (ranges, choices), whatever else is wrong
        filled = {**v, "name": (v.get("name") or "").strip() or "-"}
        found += jobs.settings_problems({**options(*(filled[f] for f in FORM if f in filled)), "output_dir": ""})
    return [labelled(exc, lang) for exc in found]


def _all_problems(lang: str, values: tuple) -> list[Exception]:
    try:
        return form_problems(lang, *values)
    except Exception:  # the form's own check failed: the start's error still says what is wrong
        return []


def start(ctx: UIContext, request: gr.Request | None, lang: str, current_job: int | None, *values) -> tuple:
    """Record and start a job from the form; on a refused form, keep watching `current_job` (the selected one).
    A form with several problems shows them all, one line each."""
    try:
        actor = ctx.actor(request)
        job = jobs.start(ctx.project, actor, page_options(lang, *values))
        msg = render.message(t("train.started", lang, job_id=job["id"], name=job["name"]), "ok")
        choices = job_choices(jobs.list_jobs(ctx.project, actor))
        return (msg, gr.update(choices=choices, value=job["id"]), *poll(ctx, request, job["id"], lang))
    except Exception as exc:
        # The first problem stopped the start; the form shows every one it has (one line each), not one per click.
        problems = [] if isinstance(exc, Forbidden) or not isinstance(exc, StudioError) else _all_problems(lang, values)
        shown = problems if len(problems) > 1 else [labelled(exc, lang)]
        return ("".join(render.message(error_text(e, lang), "error") for e in shown), gr.update(),
                *poll(ctx, request, current_job, lang))


def cancel(ctx: UIContext, request: gr.Request | None, job_id: int | None, lang: str) -> tuple:
    """Ask the selected job to stop and return at once; (message, *job view). A running job finishes its current
    step and saves a checkpoint first, however long that takes: the timer keeps watching and shows it end."""
    msg = ""
    try:
        if job_id is not None:
            actor = ctx.actor(request)
            job = jobs.cancel(ctx.project, actor, int(job_id))
            if job["status"] == "running":
                msg = render.message(t("train.stopping", lang, job_id=job["id"]), "warn")
            else:
                step = jobs.watch(ctx.project, actor, int(job_id), log_lines=0).checkpoint_step
                msg = render.message(t("train.cancelled_job", lang, job_id=job["id"]) + " "
                                     + resume_note(step, lang), "warn")
    except Exception as exc:
        msg = render.message(error_text(exc, lang), "error")
    return (msg, *poll(ctx, request, job_id, lang))


def resume(ctx: UIContext, request: gr.Request | None, job_id: int | None, lang: str) -> tuple:
    """Queue the selected failed or cancelled job again from its newest checkpoint; (message, *job view). The
    message says from which step, as the checkpoints on disk have it."""
    try:
        if job_id is None:
            return ("", *poll(ctx, request, job_id, lang))
        actor = ctx.actor(request)
        jobs.resume(ctx.project, actor, int(job_id))
        step = jobs.watch(ctx.project, actor, int(job_id), log_lines=0).checkpoint_step
        text = (t("train.resumed", lang, job_id=job_id, step=step) if step else
                t("train.resumed_fresh", lang, job_id=job_id))
        return (render.message(text, "ok"), *poll(ctx, request, job_id, lang))
    except Exception as exc:
        return (render.message(error_text(exc, lang), "error"), *poll(ctx, request, job_id, lang))


def refresh(ctx: UIContext, request: gr.Request | None, lang: str, current_job: int | None) -> tuple:
    """(base models, training files, job picker, jobs table) when the tab opens; blank for anyone but an admin."""
    try:
        actor = ctx.actor(request)
        models = jobs.base_models(ctx.project, actor)
        files = jobs.training_files(ctx.project, actor)
        rows = jobs.list_jobs(ctx.project, actor)
    except StudioError:
        empty = gr.update(choices=[], value=None)
        return gr.update(choices=[]), empty, empty, pd.DataFrame()
    choices = job_choices(rows)
    selected = current_job if current_job in [c[1] for c in choices] else (choices[0][1] if choices else None)
    return (gr.update(choices=models), gr.update(choices=files, value=files[0] if files else None),
            gr.update(choices=choices, value=selected), jobs_table(rows, lang))


def widget(s: jobs.Setting, i18n) -> gr.components.Component:
    """The form widget of one setting of the field table, starting from the recipe's value."""
    label = i18n(s.label)
    info = {"info": i18n(s.info)} if s.info else {}
    if s.widget == "check":
        return gr.Checkbox(R(s.name), label=label, **info)
    if s.widget == "choice":
        return gr.Dropdown(list(s.choices), value=R(s.name), label=label, **info)
    if s.widget == "text":
        if s.type is list:
            return gr.Textbox(",".join(R(s.name)), label=label, **info)
        # An optional number typed as text: empty means "chosen for the job" (the placeholder says what).
        return gr.Textbox("" if R(s.name) is None else str(R(s.name)), label=label,
                          placeholder=i18n(f"train.{s.name}_auto"), **info)
    return gr.Number(R(s.name), label=label, **({"precision": 0} if s.widget == "whole" else {}), **info)


def build(ctx: UIContext) -> dict:
    i18n = ctx.i18n
    gr.Markdown(i18n("train.intro"))
    with gr.Row():
        task = gr.Radio([(i18n("train.task_embedder"), "embedder"), (i18n("train.task_reranker"), "reranker")],
                        value="embedder", label=i18n("train.task"))
        method = gr.Radio([(i18n("train.method_full"), "full"), (i18n("train.method_lora"), "lora")], value="full",
                          label=i18n("train.method"))
    with gr.Row():
        base = gr.Dropdown(choices=["default"], value="default", allow_custom_value=True, label=i18n("train.base"),
                           info=i18n("train.base_info"))
        train_file = gr.Dropdown(choices=[], allow_custom_value=True, label=i18n("train.data"),
                                 info=i18n("train.data_info"))
        name = gr.Textbox(label=i18n("train.name"), info=i18n("train.name_info"))
    advice = gr.HTML()
    fix = gr.Button(visible=False, size="sm", elem_id="rs-train-fix")  # its text says what it sets (fix_button)
    hyper: dict[str, gr.components.Component] = {}
    with gr.Accordion(i18n("train.hyper"), open=False):  # generated from the field table, HYPER_ROW a row
        for start_at in range(0, len(HYPER), HYPER_ROW):
            with gr.Row():
                for s in HYPER[start_at:start_at + HYPER_ROW]:
                    hyper[s.name] = widget(s, i18n)
    form = [task, base, train_file, method, name, *hyper.values()]
    epochs, max_steps, batch = hyper["epochs"], hyper["max_steps"], hyper["batch_size"]
    command = gr.Code(label=i18n("train.command"), language="shell", interactive=False)
    start_btn = gr.Button(i18n("train.start"), variant="primary", elem_id="rs-train-start")
    message = gr.HTML()
    gr.Markdown(i18n("train.jobs_title"))
    with gr.Row(equal_height=True):
        job = gr.Dropdown(choices=[], label=i18n("train.job"), scale=3, elem_id="rs-job")
        cancel_btn = gr.Button(i18n("train.cancel"), variant="stop", scale=1)
        resume_btn = gr.Button(i18n("train.resume"), scale=1)
    card = gr.HTML()
    with gr.Row(visible=False) as plots:  # shown once a job is selected: empty plot frames read as broken
        loss_plot = gr.Plot(show_label=False)
        lr_plot = gr.Plot(show_label=False)
    with gr.Accordion(i18n("train.log"), open=False):
        log = gr.Code(language=None, interactive=False, max_lines=30)
    table = gr.Dataframe(interactive=False, max_height=300)
    timer = gr.Timer(2, active=False)
    watched = [card, loss_plot, lr_plot, log, table, timer]
    private = {"show_progress": "hidden", "api_visibility": "private"}

    # Gradio fills a gr.Request parameter only among the leading positional ones: it comes first here.
    def on_preview(request: gr.Request, *values):
        return preview(ctx, request, *values)

    def on_advice(request: gr.Request, task_: str, base_: str | None, file_: str | None, batch_: float | None,
                  epochs_: float | None, steps_: float | None, lg: str):
        return advice(ctx, request, task_, base_, file_, batch_, epochs_, steps_, lg)

    def on_fix(request: gr.Request, task_: str, base_: str | None, file_: str | None, batch_: float | None,
               epochs_: float | None, steps_: float | None):
        return apply_fix(ctx, request, task_, base_, file_, batch_, epochs_, steps_)

    def on_start(request: gr.Request, lg: str, current: int | None, *values):
        return start(ctx, request, lg, current, *values)

    def on_poll(request: gr.Request, job_id: int | None, lg: str):
        return poll(ctx, request, job_id, lg)

    def on_pick(request: gr.Request, job_id: int | None):
        return gr.update(visible=job_id is not None)

    def on_cancel(request: gr.Request, job_id: int | None, lg: str):
        return cancel(ctx, request, job_id, lg)

    def on_resume(request: gr.Request, job_id: int | None, lg: str):
        return resume(ctx, request, job_id, lg)

    def on_refresh(request: gr.Request, lg: str, current: int | None):
        return refresh(ctx, request, lg, current)

    for component in form:
        component.change(on_preview, form, command, **private)
    advice_inputs = [task, base, train_file, batch, epochs, max_steps, ctx.lang]
    for component in advice_inputs[:-1]:
        component.change(on_advice, advice_inputs, [advice, fix], **private)
    fix.click(on_fix, advice_inputs[:-1], [epochs, max_steps], **private)
    start_btn.click(on_start, [ctx.lang, job, *form], [message, job, *watched], api_name="train_start",
                    concurrency_limit=1)
    job.change(on_poll, [job, ctx.lang], watched, **private)
    job.change(on_pick, [job], [plots], **private)
    timer.tick(on_poll, [job, ctx.lang], watched, **private)
    cancel_btn.click(on_cancel, [job, ctx.lang], [message, *watched], api_name="train_cancel")
    resume_btn.click(on_resume, [job, ctx.lang], [message, *watched], api_name="train_resume")
    def fresh_name():
        # Filled at page load (a private step): value=callable would be a public endpoint of its own.
        return time.strftime("model-%Y%m%d-%H%M")

    ctx.on_load.append((fresh_name, [], [name]))
    return {"refresh": (on_refresh, [ctx.lang, job], [base, train_file, job, table])}
