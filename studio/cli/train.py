"""CLI verbs: train, jobs."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from studio.actions import jobs as job_actions
from studio.cli.base import Context, cli, emit, friendly, json_option
from studio.i18n import t

_R = job_actions.recipe  # `studio train` starts from the measured recipe (one place: studio/training/settings.py)
_TYPES = {int: click.INT, float: click.FLOAT, str: click.STRING}
_PATHS = {"train": "train_file", "valid": "valid_file"}  # file settings: the parameter names the command reads


def _option(s: job_actions.Setting):
    """The click option of one setting of the field table: its flag, type or choices, recipe default and help."""
    param = _PATHS.get(s.name, s.name)
    if s.type is bool:
        return click.option(s.flag, param, is_flag=True, default=bool(s.default), help=s.help or None)
    kwargs: dict = {"help": s.help or None}
    if s.name in _PATHS:
        kwargs["type"] = click.Path(exists=True, dir_okay=False)
    elif s.choices:
        kwargs["type"] = click.Choice(list(s.choices))
    elif s.type is list:
        kwargs["type"] = click.STRING
    else:
        kwargs["type"] = _TYPES[s.type]
    if s.required:
        kwargs["required"] = True
    elif s.default is not None:
        value = ",".join(s.default) if s.type is list else s.default
        kwargs.update(default=value, show_default=True)
    if s.name == "save_every":
        kwargs["metavar"] = "MINUTES"
    return click.option(s.flag, param, **kwargs)


def setting_options(command):
    """Every setting of the field table that has a flag, as click options (as sqlite-utils shares option bundles)."""
    for s in reversed([s for s in job_actions.SETTINGS if s.flag]):
        command = _option(s)(command)
    return command


@cli.command()
@setting_options
@click.option("--gpus", default=1, show_default=True, help="Run under torchrun on this many GPUs.")
@click.pass_obj
@friendly
def train(ctx: Context, train_file: str, valid_file: str | None, gpus: int, **settings) -> None:
    """Fine-tune an embedder or reranker in the foreground, with a progress bar; the model lands in models/NAME.

    \b
    The same worker the Train tab starts. Ctrl-C stops it after the current step with a checkpoint there;
    `studio jobs resume ID` continues from that step.
    Example:
        studio train --task embedder --base default --train exports/train.jsonl --name medical-v1
    """
    options = dict(settings, train=train_file, valid=valid_file,
                   lora_targets=[x.strip() for x in settings["lora_targets"].split(",") if x.strip()])
    batch_size, epochs, max_steps = options["batch_size"], options["epochs"], options["max_steps"]
    few = job_actions.too_few_steps(train_file, batch_size, epochs, max_steps)
    if few is not None:
        steps, lines = few
        why = (f"--max-steps {max_steps}" if 0 < max_steps == steps else
               f"{lines} queries at batch size {batch_size} x {epochs:g} epoch(s)")
        advice = "" if 0 < max_steps == steps else "; label more pairs or raise --epochs"
        click.echo(f"warning: only {steps} training step(s) ({why}): too few for the model to change much{advice}",
                   err=True)
    job = job_actions.start(ctx.project, ctx.actor, options, now=True, gpus=gpus)
    job_id, job_dir = job["id"], Path(job["job_dir"])
    click.echo(f"job {job_id}: {job_dir} (log: {job_dir / 'log.txt'})", err=True)
    try:
        snapshot = _follow(ctx, job_id)
    except KeyboardInterrupt:
        click.echo("", err=True)
        snapshot = _cancel_and_wait(ctx, job_id)
    job = snapshot.job
    if job["status"] == "cancelled":
        raise click.ClickException(f"job {job_id} cancelled. {resume_note(snapshot.checkpoint_step)} "
                                   f"(`studio jobs resume {job_id}`)")
    if job["status"] != "succeeded":
        raise click.ClickException(f"job {job_id} {job['status']}: {job['error'] or 'see ' + str(job_dir / 'log.txt')}")
    click.echo(f"model saved to {job['output_dir']}")


def resume_note(step: int | None) -> str:
    """Where a resume continues, from what is on disk: "Resume continues from step 40 …" or "… from step 1"."""
    return t("train.resume_from", "en", step=step) if step else t("train.resume_fresh", "en")


def _cancel_and_wait(ctx: Context, job_id: int):
    """Ask a running job to stop and wait, with a line that counts the seconds, until it has saved and stopped."""
    def waiting(seconds: float) -> None:
        click.echo(f"\rjob {job_id}: stopping after the current step, then saving a checkpoint… {seconds:.0f}s",
                   nl=False, err=True)

    waiting(0)
    try:
        job_actions.cancel(ctx.project, ctx.actor, job_id, wait=True, on_wait=waiting)
    finally:
        click.echo("", err=True)
    return job_actions.watch(ctx.project, ctx.actor, job_id, log_lines=0)


def _follow(ctx: Context, job_id: int):
    """Watch a job until it ends, with a progress bar of its steps and latest loss on stderr; the last snapshot."""
    shown = 0
    with click.progressbar(length=1, label="training", file=sys.stderr, show_eta=True) as bar:
        while True:
            snapshot = job_actions.watch(ctx.project, ctx.actor, job_id, log_lines=0)
            last = snapshot.last_loss
            if last:
                bar.length = max(int(last.get("total_steps") or 1), 1)
                bar.label = f"loss {last['loss']:.4f}"
                bar.update(int(last["step"]) - shown)
                shown = int(last["step"])
            if not snapshot.active:
                return snapshot
            time.sleep(1)


@cli.group(invoke_without_command=True)
@json_option
@click.pass_context
@friendly
def jobs(click_ctx: click.Context, as_json: bool) -> None:
    """List training jobs (`jobs cancel ID`, `jobs resume ID`)."""
    if click_ctx.invoked_subcommand is None:
        rows = job_actions.list_jobs(click_ctx.obj.project, click_ctx.obj.actor, existing=True)
        emit(rows, as_json, "\n".join(_job_line(click_ctx.obj, r) for r in rows) or "no jobs yet")


def _job_line(ctx: Context, row: dict) -> str:
    line = f"{row['id']:>4}  {row['status']:<10} {row['task']:<9} {row['name']:<30} {row['created_at'][:19]}"
    if row["error"]:
        line += f"  {row['error']}"
    if row["status"] in ("failed", "cancelled"):
        snapshot = job_actions.watch(ctx.project, ctx.actor, row["id"], log_lines=0)
        line += f"  {resume_note(snapshot.checkpoint_step)}"
    return line


@jobs.command(name="cancel")
@click.argument("job_id", type=int)
@click.option("--no-wait", is_flag=True, help="Return at once; the job stops by itself after its current step.")
@click.pass_obj
@friendly
def jobs_cancel(ctx: Context, job_id: int, no_wait: bool) -> None:
    """Stop a job: it finishes its current step, saves a checkpoint there and stops (this waits for it, however
    long the step takes, unless --no-wait). `studio jobs resume ID` continues from that step."""
    if no_wait:
        job = job_actions.cancel(ctx.project, ctx.actor, job_id)
        if job["status"] == "running":
            click.echo(f"job {job_id}: stopping after the current step, then saving a checkpoint")
            return
        snapshot = job_actions.watch(ctx.project, ctx.actor, job_id, log_lines=0)
    else:
        snapshot = _cancel_and_wait(ctx, job_id)
    click.echo(f"job {job_id}: {snapshot.status}. {resume_note(snapshot.checkpoint_step)}")


@jobs.command(name="resume")
@click.argument("job_id", type=int)
@click.pass_obj
@friendly
def jobs_resume(ctx: Context, job_id: int) -> None:
    """Queue a failed or cancelled job again from its newest checkpoint, and start it if there is room."""
    job = job_actions.resume(ctx.project, ctx.actor, job_id)
    snapshot = job_actions.watch(ctx.project, ctx.actor, job_id, log_lines=0)
    step = snapshot.checkpoint_step
    where = t("train.continues_from", "en", step=step) if step else t("train.starts_again", "en")
    click.echo(f"job {job_id}: {job['status']}; {where}")
