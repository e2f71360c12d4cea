"""Train: launch a fine-tuning job, watch its loss live, cancel or resume it. Training runs in another process."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from studio.config import EXPORTS_DIR
from studio.errors import StudioError
from studio.i18n import catalogue, t
from studio.models.registry import describe, resolve, scan
from studio.store import jobs as store_jobs
from studio.training import jobs
from studio.training.config import TrainConfig, read_metrics, too_few_steps
from studio.ui import charts, render
from studio.ui.context import UIContext, error_text

D = TrainConfig.default  # the form starts from the measured recipe (bench/quality.py), as `studio train` does

ACTIVE = ("queued", "running")


def training_files() -> list[str]:
    """Exports a job can train on (newest first): every *.jsonl under exports/ that is not a validation file."""
    if not EXPORTS_DIR.exists():
        return []
    files = [p for p in EXPORTS_DIR.rglob("*.jsonl") if not p.name.endswith(".valid.jsonl")]
    return [str(p) for p in sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)]


def model_choices() -> list[str]:
    return [info.name for info in scan() if info.ok]


def make_config(task, base, train_file, method, name, epochs, max_steps, batch_size, lr, group_size, query_max_len,
                passage_max_len, temperature, warmup, precision, checkpointing, lora_r, lora_alpha,
                lora_dropout, lora_targets="query,key,value", freeze_embeddings=False, freeze_layers=0) -> TrainConfig:
    valid = Path(train_file or "").with_suffix(".valid.jsonl") if train_file else None
    return TrainConfig(
        task=task, base=base or "default", train=train_file or "", name=(name or "").strip(), output_dir="",
        valid=str(valid) if valid and valid.exists() else None, method=method, epochs=float(epochs),
        max_steps=int(max_steps), batch_size=int(batch_size), lr=float(lr) if str(lr or "").strip() else None,
        group_size=int(group_size), query_max_len=int(query_max_len),
        passage_max_len=int(passage_max_len) if passage_max_len else None,
        temperature=float(temperature), warmup_ratio=float(warmup), precision=precision,
        gradient_checkpointing=bool(checkpointing), lora_r=int(lora_r), lora_alpha=int(lora_alpha),
        lora_dropout=float(lora_dropout),
        lora_targets=[x.strip() for x in (lora_targets or "query,key,value").split(",") if x.strip()],
        freeze_embeddings=bool(freeze_embeddings), freeze_layers=int(freeze_layers or 0))


def preview(*values) -> str:
    """The `studio train` command that does the same as the form (for a GPU server, or a script)."""
    c = make_config(*values)
    args = ["studio", "train", "--task", c.task, "--base", c.base, "--train", c.train or "<exports/…/train.jsonl>",
            "--name", c.name or "<name>", "--method", c.method, "--batch-size", str(c.batch_size),
            "--group-size", str(c.group_size), "--query-max-len", str(c.query_max_len)]
    if c.passage_max_len is not None:
        args += ["--passage-max-len", str(c.passage_max_len)]
    args += ["--max-steps", str(c.max_steps)] if c.max_steps > 0 else ["--epochs", f"{c.epochs:g}"]
    if c.task == "embedder" and c.temperature != D("temperature"):
        args += ["--temperature", f"{c.temperature:g}"]
    if c.warmup_ratio != D("warmup_ratio"):
        args += ["--warmup", f"{c.warmup_ratio:g}"]
    if c.lr is not None:
        args += ["--lr", f"{c.lr:g}"]
    if c.precision != "auto":
        args += ["--precision", c.precision]
    if c.gradient_checkpointing:
        args.append("--gradient-checkpointing")
    if c.method == "lora":
        args += ["--lora-r", str(c.lora_r), "--lora-alpha", str(c.lora_alpha), "--lora-dropout", f"{c.lora_dropout:g}",
                 "--lora-targets", ",".join(c.lora_targets)]
    if c.freeze_embeddings:
        args.append("--freeze-embeddings")
    if c.freeze_layers:
        args += ["--freeze-layers", str(c.freeze_layers)]
    return " ".join(shlex.quote(a) for a in args)


def base_advice(task: str, base: str | None, lang: str) -> str:
    """A warning when a reranker would start from a model that is not a cross-encoder (a new, untrained head)."""
    if task != "reranker":
        return ""
    path = Path(resolve(base or "default"))
    if not path.is_dir() or describe(path).kind == "reranker":
        return ""  # a cross-encoder, or a hub id this machine cannot inspect
    return render.message(t("train.reranker_new_head", lang), "warn")


def steps_advice(train_file: str | None, batch_size: float | None, epochs: float | None, max_steps: float | None,
                 lang: str) -> str:
    """A warning when the chosen file, batch size and epochs give so few optimizer steps that little will change."""
    few = too_few_steps(train_file, int(batch_size or 0), float(epochs or 0), int(max_steps or -1))
    if few is None:
        return ""
    steps, lines = few
    return render.message(t("train.few_steps", lang, steps=steps, lines=lines, batch=int(batch_size),
                            epochs=f"{float(epochs):g}"), "warn")


def form_advice(task: str, base: str | None, train_file: str | None, batch_size: float | None, epochs: float | None,
                max_steps: float | None, lang: str) -> str:
    """Everything worth knowing about the form before pressing Start."""
    return base_advice(task, base, lang) + steps_advice(train_file, batch_size, epochs, max_steps, lang)


def jobs_table(ctx: UIContext, lang: str) -> pd.DataFrame:
    with ctx.db() as db:
        rows = store_jobs.list_jobs(db)
    columns = ["#", t("train.col_name", lang), t("train.col_task", lang), t("train.col_status", lang),
               t("train.col_created", lang)]
    return pd.DataFrame([(r["id"], r["name"], t(f"train.task_{r['task']}", lang), t(f"train.status_{r['status']}", lang),
                          r["created_at"].replace("T", " ")[:16]) for r in rows], columns=columns)


def job_choices(ctx: UIContext) -> list[tuple[str, int]]:
    """Jobs as (label, id), newest first. The label leaves out the status: it would go stale while the job
    runs (the card and the table beside it show the live status, in the user's language)."""
    with ctx.db() as db:
        return [(f"#{r['id']} · {r['name']}", r["id"]) for r in store_jobs.list_jobs(db)]


def labelled(exc: Exception, lang: str) -> Exception:
    """`exc` naming the form's field as the form labels it ("Queries per step"), not the setting ("batch_size")."""
    field = exc.params.get("field") if isinstance(exc, StudioError) else None
    if isinstance(field, str) and f"train.{field}" in catalogue(lang):
        exc.params = {**exc.params, "field": t(f"train.{field}", lang)}
    return exc


def start(ctx: UIContext, lang: str, current_job: int | None, *values) -> tuple:
    """Record and start a job from the form; on a refused form, keep watching `current_job` (the selected one)."""
    try:
        config = make_config(*values)
        config.base = resolve(config.base)
        with ctx.db() as db:
            job_id = jobs.create(db, config, created_by="ui")
            jobs.start_queued(db)
        msg = render.message(t("train.started", lang, job_id=job_id, name=config.name), "ok")
        return (msg, gr.update(choices=job_choices(ctx), value=job_id), *poll(ctx, job_id, lang))
    except Exception as exc:
        return (render.message(error_text(labelled(exc, lang), lang), "error"), gr.update(),
                *poll(ctx, current_job, lang))


def status_card(job: dict, metrics: list[dict], lang: str) -> str:
    losses = [m for m in metrics if m.get("loss") is not None]
    last = losses[-1] if losses else {}
    step = f"{last.get('step', 0)} / {last.get('total_steps') or '?'}"
    eta = last.get("eta_s")
    tiles = [
        (t("train.col_status", lang), t(f"train.status_{job['status']}", lang),
         {"succeeded": "rs-pass", "failed": "rs-fail"}.get(job["status"], "")),
        (t("train.step", lang), step, ""),
        (t("train.train_loss", lang), f"{last['loss']:.4f}" if last else "—", ""),
        (t("train.eta", lang), time.strftime("%H:%M:%S", time.gmtime(eta)) if eta and job["status"] == "running" else "—", ""),
    ]
    html = render.stat_tiles(tiles)
    if job["status"] == "failed" and job["error"]:
        error = t("train.worker_died", lang) if job["error"] == jobs.WORKER_DIED else job["error"]
        html += render.message(t("train.failed_because", lang, error=error), "error")
    elif job["status"] == "succeeded":
        html += render.message(t("train.succeeded", lang, path=job["output_dir"]), "ok")
    elif job["status"] == "cancelled":
        html += render.message(t("train.cancelled_note", lang), "warn")
    elif job["status"] == "queued":
        html += render.message(t("train.queued_note", lang), "warn")
    return html


def poll(ctx: UIContext, job_id: int | None, lang: str) -> tuple:
    """(card, loss plot, lr plot, log tail, jobs table, timer) for the selected job; the timer stops when it ends."""
    if job_id is None:
        return (render.empty_card(t("train.no_job", lang)), None, None, "", jobs_table(ctx, lang),
                gr.Timer(active=False))
    with ctx.db() as db:
        jobs.start_queued(db)
        job = jobs.refresh(db, int(job_id))
    metrics = read_metrics(job["job_dir"])
    return (status_card(job, metrics, lang), charts.loss_curves(metrics, lang), charts.lr_curve(metrics, lang),
            jobs.log_tail(job["job_dir"]), jobs_table(ctx, lang), gr.Timer(active=job["status"] in ACTIVE))


def cancel(ctx: UIContext, job_id: int | None, lang: str) -> tuple:
    if job_id is not None:
        with ctx.db() as db:
            jobs.cancel(db, int(job_id), grace_seconds=5, actor="ui")
    return poll(ctx, job_id, lang)


def resume(ctx: UIContext, job_id: int | None, lang: str) -> tuple:
    try:
        if job_id is not None:
            with ctx.db() as db:
                jobs.resume(db, int(job_id))
                jobs.start_queued(db)
        return (render.message(t("train.resumed", lang, job_id=job_id), "ok"), *poll(ctx, job_id, lang))
    except Exception as exc:
        return (render.message(error_text(exc, lang), "error"), *poll(ctx, job_id, lang))


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
        name = gr.Textbox(label=i18n("train.name"), value=lambda: time.strftime("model-%Y%m%d-%H%M"),
                          info=i18n("train.name_info"))
    advice = gr.HTML()
    with gr.Accordion(i18n("train.hyper"), open=False):
        with gr.Row():
            epochs = gr.Number(D("epochs"), label=i18n("train.epochs"))
            max_steps = gr.Number(D("max_steps"), precision=0, label=i18n("train.max_steps"))
            batch = gr.Number(D("batch_size"), precision=0, label=i18n("train.batch_size"))
            lr = gr.Textbox("", label=i18n("train.lr"), placeholder=i18n("train.lr_auto"))
            group = gr.Number(D("group_size"), precision=0, label=i18n("train.group_size"))
        with gr.Row():
            qlen = gr.Number(D("query_max_len"), precision=0, label=i18n("train.query_max_len"))
            plen = gr.Number(D("passage_max_len"), precision=0, label=i18n("train.passage_max_len"),
                             info=i18n("train.passage_max_len_info"))
            temperature = gr.Number(D("temperature"), label=i18n("train.temperature"))
            warmup = gr.Number(D("warmup_ratio"), label=i18n("train.warmup"))
            precision = gr.Dropdown(["auto", "fp32", "fp16", "bf16"], value=D("precision"), label=i18n("train.precision"))
        with gr.Row():
            checkpointing = gr.Checkbox(False, label=i18n("train.gradient_checkpointing"))
            lora_r = gr.Number(D("lora_r"), precision=0, label=i18n("train.lora_r"))
            lora_alpha = gr.Number(D("lora_alpha"), precision=0, label=i18n("train.lora_alpha"))
            lora_dropout = gr.Number(D("lora_dropout"), label=i18n("train.lora_dropout"))
            lora_targets = gr.Textbox(",".join(D("lora_targets")), label=i18n("train.lora_targets"))
        with gr.Row():
            freeze_embeddings = gr.Checkbox(False, label=i18n("train.freeze_embeddings"))
            freeze_layers = gr.Number(D("freeze_layers"), precision=0, label=i18n("train.freeze_layers"))
    form = [task, base, train_file, method, name, epochs, max_steps, batch, lr, group, qlen, plen, temperature, warmup,
            precision, checkpointing, lora_r, lora_alpha, lora_dropout, lora_targets, freeze_embeddings, freeze_layers]
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
    for component in form:
        component.change(lambda *v: preview(*v), form, command, show_progress="hidden")
    advice_inputs = [task, base, train_file, batch, epochs, max_steps, ctx.lang]
    for component in advice_inputs[:-1]:
        component.change(form_advice, advice_inputs, advice, show_progress="hidden")
    start_btn.click(lambda lg, j, *v: start(ctx, lg, j, *v), [ctx.lang, job, *form], [message, job, *watched],
                    concurrency_limit=1)
    job.change(lambda j, lg: poll(ctx, j, lg), [job, ctx.lang], watched, show_progress="hidden")
    job.change(lambda j: gr.update(visible=j is not None), [job], [plots], show_progress="hidden")
    timer.tick(lambda j, lg: poll(ctx, j, lg), [job, ctx.lang], watched, show_progress="hidden")
    cancel_btn.click(lambda j, lg: cancel(ctx, j, lg), [job, ctx.lang], watched)
    resume_btn.click(lambda j, lg: resume(ctx, j, lg), [job, ctx.lang], [message, *watched])

    def refresh(lg: str, current_job):
        files = training_files()
        choices = job_choices(ctx)
        selected = current_job if current_job in [c[1] for c in choices] else (choices[0][1] if choices else None)
        return (gr.update(choices=model_choices()), gr.update(choices=files, value=files[0] if files else None),
                gr.update(choices=choices, value=selected), jobs_table(ctx, lg))

    return {"refresh": (refresh, [ctx.lang, job], [base, train_file, job, table])}
