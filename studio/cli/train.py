"""CLI verbs: train, jobs."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from studio.actions import jobs as job_actions
from studio.cli.base import Context, cli, emit, friendly, json_option
from studio.i18n import t

_R = job_actions.recipe  # `studio train` starts from the measured recipe (one place: TrainConfig)


@cli.command()
@click.option("--task", type=click.Choice(["embedder", "reranker"]), required=True)
@click.option("--base", default="default", show_default=True,
              help="Model name in models/, a folder, a hub id, or 'default' (the ★ default model).")
@click.option("--train", "train_file", type=click.Path(exists=True, dir_okay=False), required=True,
              help="FlagEmbedding JSONL from `studio export triplets`.")
@click.option("--valid", "valid_file", type=click.Path(exists=True, dir_okay=False),
              help="Validation JSONL (default: the .valid.jsonl beside --train, if any).")
@click.option("--name", required=True, help="Output folder under models/.")
@click.option("--method", type=click.Choice(["full", "lora"]), default=_R("method"), show_default=True)
@click.option("--epochs", default=_R("epochs"), show_default=True)
@click.option("--max-steps", default=_R("max_steps"), show_default=True, help="Stop after N steps (overrides --epochs).")
@click.option("--batch-size", default=_R("batch_size"), show_default=True, help="Queries per device per step.")
@click.option("--lr", type=float, help="Learning rate (default 5e-5 full, 1e-4 LoRA).")
@click.option("--group-size", default=_R("group_size"), show_default=True, help="1 positive + N-1 negatives per query.")
@click.option("--query-max-len", default=_R("query_max_len"), show_default=True)
@click.option("--passage-max-len", type=int, default=_R("passage_max_len"),
              help="Tokens per passage (default: the base model's max_seq_length, at most 512).")
@click.option("--temperature", default=_R("temperature"), show_default=True,
              help="Softmax temperature of the contrastive loss (embedder).")
@click.option("--warmup", default=_R("warmup_ratio"), show_default=True, help="Warm-up, as a share of the steps.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default=_R("precision"),
              show_default=True)
@click.option("--gradient-checkpointing", is_flag=True)
@click.option("--lora-r", default=_R("lora_r"), show_default=True)
@click.option("--lora-alpha", default=_R("lora_alpha"), show_default=True)
@click.option("--lora-dropout", default=_R("lora_dropout"), show_default=True)
@click.option("--lora-targets", default=",".join(_R("lora_targets")), show_default=True, help="Modules LoRA adapts.")
@click.option("--freeze-embeddings", is_flag=True, help="Keep the embedding layer fixed.")
@click.option("--freeze-layers", default=_R("freeze_layers"), show_default=True,
              help="Keep the lowest N transformer layers fixed.")
@click.option("--seed", default=_R("seed"), show_default=True, help="Random seed (data order, negatives drawn).")
@click.option("--save-every", type=float, default=_R("save_every"), show_default=True, metavar="MINUTES",
              help="Also save a checkpoint every MINUTES of training (0: only every 50 steps); a kill or a power cut "
                   "loses at most that much.")
@click.option("--gpus", default=1, show_default=True, help="Run under torchrun on this many GPUs.")
@click.pass_obj
@friendly
def train(ctx: Context, task: str, base: str, train_file: str, valid_file: str | None, name: str, method: str,
          epochs: float, max_steps: int, batch_size: int, lr: float | None, group_size: int, query_max_len: int,
          passage_max_len: int | None, temperature: float, warmup: float, precision: str,
          gradient_checkpointing: bool, lora_r: int, lora_alpha: int, lora_dropout: float, lora_targets: str,
          freeze_embeddings: bool, freeze_layers: int, seed: int, save_every: float, gpus: int) -> None:
    """Fine-tune an embedder or reranker in the foreground, with a progress bar; the model lands in models/NAME.

    \b
    The same worker the Train tab starts. Ctrl-C stops it after the current step with a checkpoint there;
    `studio jobs resume ID` continues from that step.
    Example:
        studio train --task embedder --base default --train exports/train.jsonl --name medical-v1
    """
    options = dict(task=task, base=base, train=train_file, valid=valid_file, name=name, method=method, epochs=epochs,
                   max_steps=max_steps, batch_size=batch_size, lr=lr, group_size=group_size,
                   query_max_len=query_max_len, passage_max_len=passage_max_len, temperature=temperature,
                   warmup_ratio=warmup, precision=precision, gradient_checkpointing=gradient_checkpointing,
                   lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                   lora_targets=[x.strip() for x in lora_targets.split(",") if x.strip()],
                   freeze_embeddings=freeze_embeddings, freeze_layers=freeze_layers, seed=seed,
                   save_every=save_every)
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
