"""The training worker: ``python -m studio.training.worker JOB_DIR`` runs one fine-tuning job and exits.

It reads ``JOB_DIR/config.json`` (:class:`~studio.training.config.TrainConfig`), keeps ``JOB_DIR/heartbeat``
fresh, says what it is doing in ``JOB_DIR/phase``, trains with FlagEmbedding's runners (M3 or dense encoder-only
embedder, encoder-only reranker), appends ``metrics.jsonl``, checkpoints to ``JOB_DIR/checkpoints/`` (every
``save_steps`` steps and every ``save_every`` minutes), exports the model to ``config.output_dir`` and writes
``JOB_DIR/result.json`` (the files are :class:`~studio.training.job_folder.JobFolder`'s). The launcher redirects
stdout/stderr to ``log.txt``; the worker only prints. Exit codes: 0 succeeded, 2 failed (plain-words error in
result.json), 3 cancelled.

Stopping (:class:`~studio.training.supervision.StopRequest`): SIGTERM, or the app's ``JOB_DIR/cancel`` file (the
heartbeat thread looks for it), asks the worker to stop. While training, it finishes the current optimizer step,
saves a full checkpoint there (weights, optimizer, scheduler, RNG states, trainer state: what
``resume_from_checkpoint`` needs to continue exactly), writes result.json "cancelled" and exits 3, however long
that step takes. Before training has begun there is nothing to save: it stops at once. The worker never deletes
``cancel``: a job relaunched to resume must have it removed by the launcher first.

This module is the run itself; what it runs is resolved by :mod:`~studio.training.planning` (with
:mod:`~studio.training.base_model`), the model is prepared by :mod:`~studio.training.surgery`, checkpoints are
:mod:`~studio.training.checkpoints`' and the Trainer's changed methods :mod:`~studio.training.trainer_patches`'.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from studio.training.base_model import base_label
from studio.training.checkpoints import checkpoint_step, latest_checkpoint
from studio.training.config import TrainConfig
from studio.training.failures import Cancelled, WorkerError, explain, first_line
from studio.training.job_folder import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, JobFolder
from studio.training.planning import Plan, argument_kwargs, make_plan
from studio.training.supervision import Heartbeat, StopRequest
from studio.training.surgery import make_prepare
from studio.training.trainer_patches import load_checkpoints_into_wrapper

# The runners (studio.training.embedder / reranker), the callbacks, the model export and torch / transformers are
# imported inside the functions that use them: each imports FlagEmbedding, transformers or torch at its top.


def build_runner(job_dir: Path, config: TrainConfig, plan: Plan, stop: StopRequest | None = None):
    """The FlagEmbedding runner for the job: model prepared (LoRA, freezing), trainer built, not started; the
    phase file says which stage it is in, and a stop asked for meanwhile ends it between stages."""
    folder = JobFolder(job_dir)
    kwargs = argument_kwargs(job_dir, config, plan)
    prepared = make_prepare(config, plan.architecture)

    def prepare(tokenizer, model) -> None:
        prepared(tokenizer, model)
        if stop is not None:
            stop.checkpoint()
        folder.write_phase("reading_data")  # the runner reads the training file next

    folder.write_phase("loading_model")
    if config.task == "embedder":
        from studio.training import embedder  # imports FlagEmbedding

        runner = embedder.build_runner(plan.architecture, *kwargs, prepare)
    else:
        from studio.training import reranker  # imports FlagEmbedding

        runner = reranker.build_runner(*kwargs, prepare)
    # Their checkpoints hold the inner transformer; the Trainer's own loader expects the wrapper's keys.
    load_checkpoints_into_wrapper(runner.trainer, runner.model)
    return runner


def seed_draws(trainer, seed: int):
    """Give the trainer's dataset draws seeded by (seed, epoch, item) (callbacks.SeededDraws): a resumed run then
    fetches exactly the batches the uninterrupted run would have. Returns the callback that tracks the epoch."""
    from studio.training.callbacks import DrawEpoch, SeededDraws  # imports torch, transformers

    draws = SeededDraws(trainer.train_dataset, seed)
    trainer.train_dataset = draws
    return DrawEpoch(draws)


def make_evaluator(runner, config: TrainConfig, plan: Plan):
    """Validation loss over config.valid with the runner's own dataset class, collator and model; None without it."""
    if not config.valid:
        return None
    import torch

    from studio.training.callbacks import EvalLoss  # imports torch, transformers

    data_args = runner.data_args
    valid_args = type(data_args)(**{**{f.name: getattr(data_args, f.name) for f in fields(data_args)},
                                    "train_data": [str(Path(config.valid).resolve())],
                                    "knowledge_distillation": plan.valid_distill})
    dataset = type(runner.train_dataset)(args=valid_args, tokenizer=runner.tokenizer)
    args = runner.training_args
    amp = torch.bfloat16 if args.bf16 else torch.float16 if args.fp16 else None
    return EvalLoss(runner.model, dataset, runner.data_collator, args.per_device_train_batch_size, args.device, amp)


def export(runner, job_dir: Path, config: TrainConfig, plan: Plan, final: dict) -> Path:
    """Write the trained model to config.output_dir (studio.training.model_export.export_model); its card and
    studio_model.json name the base as people do (``all-MiniLM-L6-v2``, not its folder inside the environment)."""
    import torch

    from studio.training.model_export import export_model  # imports torch

    model = runner.model
    heads = {}
    if plan.architecture == "m3":
        for name in ("colbert_linear", "sparse_linear"):
            head = getattr(model, name, None)
            if head is None and (plan.base / f"{name}.pt").is_file():  # not trained (unified off): the base's
                head = torch.load(plan.base / f"{name}.pt", map_location="cpu", weights_only=True)
            heads[name] = head
    named = dataclasses.replace(config, base=base_label(plan.base, Path(config.output_dir).parent))
    return export_model(model.model, runner.tokenizer, named, config.output_dir, architecture=plan.architecture,
                        base_path=plan.base, pooling=plan.pooling, normalize=True, job_dir=job_dir, final=final,
                        **heads)


def run_job(job_dir: Path, config: TrainConfig, callbacks: Sequence | None = None,
            stop: StopRequest | None = None) -> tuple[int, str | None, dict]:
    """Train and export. Returns (exit code, model folder or None, final figures); raises on failure, and
    :class:`Cancelled` when a stop is asked for before training begins."""
    stop = stop or StopRequest(job_dir)
    folder = JobFolder(job_dir)
    folder.write_phase("checking")
    plan = make_plan(job_dir, config)
    try:
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    print(f"{config.task} ({plan.architecture}, {config.method}) from {plan.base}", flush=True)
    print(f"training data: {config.train} ({plan.train_lines} lines"
          + (", knowledge distillation" if plan.distill else "") + ")"
          + (f"; validation: {config.valid} ({plan.valid_lines} lines)" if config.valid else ""), flush=True)

    stop.checkpoint()
    runner = build_runner(job_dir, config, plan, stop)
    trainer = runner.trainer
    from transformers import PrinterCallback

    from studio.training.callbacks import StudioCallback  # imports torch, transformers

    studio_callback = StudioCallback(job_dir, make_evaluator(runner, config, plan),
                                     int(config.extra.get("eval_steps") or config.save_steps), stop_requested=stop,
                                     save_every=float(config.save_every or 0) * 60,
                                     phase=folder.write_phase)
    trainer.remove_callback(PrinterCallback)  # our progress lines replace its raw log dicts
    trainer.add_callback(seed_draws(trainer, config.seed))
    for callback in callbacks or ():  # before ours: what they do at a step (e.g. ask to cancel) is seen at that step
        trainer.add_callback(callback)
    trainer.add_callback(studio_callback)

    if plan.resume_from:
        print(f"resuming from {plan.resume_from.name}: continues from step {checkpoint_step(plan.resume_from)}",
              flush=True)
    folder.write_phase("starting")
    stop.begin_training()
    trainer.train(resume_from_checkpoint=str(plan.resume_from) if plan.resume_from else None)

    state = trainer.state
    final = {"step": state.global_step, "total_steps": state.max_steps, "epoch": state.epoch,
             "loss": studio_callback.last_loss, "eval_loss": studio_callback.last_eval_loss,
             "train_loss": studio_callback.summary.get("train_loss"),
             "runtime_s": studio_callback.summary.get("train_runtime")}
    final = {k: v for k, v in final.items() if v is not None}
    if studio_callback.diverged:
        hint = " or train in bf16/fp32 rather than fp16" if runner.training_args.fp16 else ""
        raise WorkerError(f"training diverged at step {state.global_step} (the loss is no longer a finite number): "
                          f"lower the learning rate{hint}")
    if studio_callback.cancelled:
        saved = latest_checkpoint(folder.checkpoints)
        final["checkpoint_step"] = step = checkpoint_step(saved) if saved else None
        print(f"cancelled at step {state.global_step}; " + (
            f"resume continues from step {step} ({saved})" if step else
            "no checkpoint yet: resume starts again from step 1"), flush=True)
        return EXIT_CANCELLED, None, final
    folder.write_phase("exporting")
    out = export(runner, job_dir, config, plan, final)
    print(f"model written to {out}", flush=True)
    return EXIT_OK, str(out), final


def _cancelled_early(job_dir: Path) -> dict:
    """The final figures of a job stopped before training began: the checkpoint resume continues from, if any."""
    saved = latest_checkpoint(JobFolder(job_dir).checkpoints)
    step = checkpoint_step(saved) if saved else None
    print("cancelled before training began; " + (f"resume continues from step {step}" if step else
                                                  "no checkpoint yet: resume starts again from step 1"), flush=True)
    return {"step": step or 0, "checkpoint_step": step}


def main(argv: Sequence[str] | None = None, callbacks: Sequence | None = None) -> int:
    """Run the job in ``argv[0]``; return the exit code. `callbacks`: extra TrainerCallbacks (tests, tools)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m studio.training.worker JOB_DIR", file=sys.stderr)
        return EXIT_FAILED
    job_dir = Path(args[0]).resolve()
    if not job_dir.is_dir():
        print(f"job folder {job_dir} does not exist", file=sys.stderr)
        return EXIT_FAILED
    folder = JobFolder(job_dir)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    stop = StopRequest(job_dir).install()
    heartbeat = Heartbeat(job_dir, on_beat=stop.watch_file).start()
    started = time.time()
    try:
        try:
            config = TrainConfig.load(job_dir)
        except (OSError, ValueError, TypeError) as exc:
            raise WorkerError(f"cannot read {folder.config}: {first_line(exc)}") from None
        code, model_dir, final = run_job(job_dir, config, callbacks, stop)
    except Cancelled:
        stop.training = True  # a second signal must not interrupt writing the result
        code, model_dir, final = EXIT_CANCELLED, None, _cancelled_early(job_dir)
    except Exception as exc:  # noqa: BLE001 - every failure ends as result.json + exit 2
        stop.training = True  # a signal now must not interrupt writing the result
        traceback.print_exc()
        message = explain(exc)
        print(f"failed: {message}", flush=True)
        folder.write_result("failed", error=message)
        return EXIT_FAILED
    finally:
        stop.training = True  # a late signal must not raise in what follows
        heartbeat.stop()
        stop.restore()
    status = "succeeded" if code == EXIT_OK else "cancelled"
    folder.write_result(status, model_dir, final=final)
    print(f"{status} in {time.time() - started:.0f}s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
