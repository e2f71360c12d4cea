"""The training worker: ``python -m studio.training.worker JOB_DIR`` runs one fine-tuning job and exits.

It reads ``JOB_DIR/config.json`` (:class:`~studio.training.config.TrainConfig`), keeps ``JOB_DIR/heartbeat``
fresh, says what it is doing in ``JOB_DIR/phase``, trains with FlagEmbedding's runners (M3 or dense encoder-only
embedder, encoder-only reranker), appends ``metrics.jsonl``, checkpoints to ``JOB_DIR/checkpoints/`` (every
``save_steps`` steps and every ``save_every`` minutes), exports the model to ``config.output_dir`` and writes
``JOB_DIR/result.json``. The launcher redirects stdout/stderr to ``log.txt``; the worker only prints. Exit codes:
0 succeeded, 2 failed (plain-words error in result.json), 3 cancelled.

Stopping (:class:`StopRequest`): SIGTERM, or the app's ``JOB_DIR/cancel`` file (the heartbeat thread looks for it),
asks the worker to stop. While training, it finishes the current optimizer step, saves a full checkpoint there
(weights, optimizer, scheduler, RNG states, trainer state: what ``resume_from_checkpoint`` needs to continue
exactly), writes result.json "cancelled" and exits 3, however long that step takes. Before training has begun there
is nothing to save: it stops at once. The worker never deletes ``cancel``: a job relaunched to resume must have it
removed by the launcher first.
"""

from __future__ import annotations

import _thread
import dataclasses
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from studio.errors import StudioError
from studio.training.config import (CHECKPOINTS_KEPT, EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, PHASES, TrainConfig,
                                    base_label, check_train_file, check_train_line, checkpoint_step,
                                    latest_checkpoint, names_a_folder, passage_max_len, read_lines)
from studio.training.job_folder import JobFolder

HEARTBEAT_SECONDS = 2.0
# config.extra may set any FlagEmbedding / TrainingArguments field, except those the job folder contract fixes.
FIXED_ARGUMENTS = {"output_dir", "resume_from_checkpoint", "train_data", "model_name_or_path", "report_to",
                   "do_train", "do_eval", "overwrite_output_dir"}


class WorkerError(Exception):
    """A problem with the job the user can act on; its message goes to result.json as is."""


# --- job folder files --------------------------------------------------------------------------------------------
def write_result(job_dir: Path, status: str, model_dir: str | None = None, error: str | None = None,
                 final: dict | None = None) -> None:
    """result.json: {"status": succeeded|failed|cancelled, "model_dir", "error", "final"}."""
    folder = JobFolder(job_dir)
    folder.write_atomic(folder.result, json.dumps(
        {"status": status, "model_dir": model_dir, "error": error, "final": final or {}},
        ensure_ascii=False, indent=2) + "\n")


def write_phase(job_dir: Path, name: str) -> None:
    """``JOB_DIR/phase``: what the worker does now (one of config.PHASES), for the page to show before step 1."""
    if name not in PHASES:
        raise ValueError(f"unknown phase {name!r}")
    try:
        folder = JobFolder(job_dir)
        folder.write_atomic(folder.phase, name + "\n")
    except OSError:
        pass  # cosmetic: never a reason to fail a job


class Cancelled(BaseException):
    """Raised in the main thread when a stop is asked for before training has begun (nothing to save yet).

    A BaseException, as KeyboardInterrupt is, so that no library's ``except Exception`` swallows it."""


class StopRequest:
    """A request to stop the job: SIGTERM, or the app's cancel file in the job folder.

    Before :meth:`begin_training` the main thread is interrupted at once (:class:`Cancelled`): loading a model can
    take a minute and there is nothing to save. From then on the request is only noted; the training callback
    stops after the current optimizer step and saves a checkpoint there. Calling the object says whether a stop
    was asked for.
    """

    def __init__(self, job_dir: Path):
        self.cancel_path = JobFolder(job_dir).cancel
        self.requested = self.training = False
        self._interrupting = False
        self._previous = None

    def __call__(self) -> bool:
        return self.requested or self.cancel_path.exists()

    def install(self) -> "StopRequest":
        """Handle SIGTERM (only the main thread may; elsewhere the cancel file alone is watched)."""
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_signal)
        return self

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _on_signal(self, signum, frame) -> None:
        if not self.requested:
            self.requested = True
            print("stop requested: " + ("stopping after the current step, with a checkpoint" if self.training
                                        else "training has not begun, stopping now"), flush=True)
        if not self.training:
            raise Cancelled()

    def watch_file(self) -> None:
        """From the heartbeat thread: turn the app's cancel file into a request (SIGTERM's path in the main
        thread before training, a flag the callback reads during it)."""
        if self.requested or not self.cancel_path.exists():
            return
        if self.training or self._previous is None:
            self.requested = True
        elif not self._interrupting:
            self._interrupting = True
            _thread.interrupt_main(signal.SIGTERM)  # runs _on_signal in the main thread

    def checkpoint(self) -> None:
        """Between loading stages: stop now if asked to (covers a cancel file the heartbeat has not seen yet)."""
        if not self.training and self():
            self.requested = True
            raise Cancelled()

    def begin_training(self) -> None:
        """From now on a request stops training after the current step, with a checkpoint."""
        self.checkpoint()
        self.training = True


class Heartbeat:
    """Rewrites ``JOB_DIR/heartbeat`` with "<pid> <unix time>" every few seconds from a daemon thread, and calls
    `on_beat` (the cancel file watch) each time."""

    def __init__(self, job_dir: Path, every: float = HEARTBEAT_SECONDS, on_beat: Callable[[], None] | None = None):
        self.folder = JobFolder(job_dir)
        self.path = self.folder.heartbeat
        self.every = every
        self.on_beat = on_beat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="studio-heartbeat", daemon=True)

    def beat(self) -> None:
        try:
            self.folder.write_atomic(self.path, f"{os.getpid()} {int(time.time())}\n")
        except OSError:
            pass  # a full disk must not kill training; the app sees a stale heartbeat

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.beat()
            if self.on_beat is not None:
                self.on_beat()

    def start(self) -> "Heartbeat":
        self.beat()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.beat()


# --- resolving what to train ---------------------------------------------------------------------------------------
def resolve_base(base: str) -> Path:
    """``default`` → the embedded all-MiniLM-L6-v2; a folder → itself; otherwise a hub id (cached or downloaded)."""
    if base == "default":
        from studio.config import embedded_model_path

        return embedded_model_path()
    path = Path(base).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists():
        raise WorkerError(f"base model '{base}' is a file, not a model folder")
    if names_a_folder(base):
        raise WorkerError(f"base model folder {path} does not exist")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=base, ignore_patterns=[
            "flax_model.msgpack", "rust_model.ot", "tf_model.h5", "onnx/*", "openvino/*", "*.onnx"]))
    except Exception as exc:  # noqa: BLE001 - any hub failure means the same thing to the user
        raise WorkerError(f"base model '{base}' is not a folder and could not be fetched: {_first_line(exc)}")


def resolve_architecture(config: TrainConfig, base: Path) -> str:
    """``auto``: ``m3`` when the base ships BGE-M3's ``colbert_linear.pt`` or ``sparse_linear.pt``, else ``encoder``."""
    if config.task == "reranker":
        return "encoder"
    if config.architecture != "auto":
        return config.architecture
    return "m3" if (base / "colbert_linear.pt").exists() or (base / "sparse_linear.pt").exists() else "encoder"


def check_jsonl(path: str | Path, what: str = "training") -> dict:
    """Validate a whole FlagEmbedding JSONL file, line by line with the app's rules (``check_train_line``).

    Returns:
        {"lines": count, "first_has_scores": bool, "all_have_scores": bool}

    Raises:
        WorkerError: missing file, wrong suffix, or the first bad line with the reason.
    """
    file = Path(path)
    if not file.is_file():
        raise WorkerError(f"the {what} file {file} does not exist")
    lines, first_scores, all_scores = 0, False, True
    try:
        check_train_file(file, distill="off", limit=1)  # the suffix, and the first line
        for number, raw in read_lines(file):
            if not raw.strip():
                continue
            has_scores = check_train_line(raw, str(file), number)
            first_scores = has_scores if lines == 0 else first_scores
            all_scores = all_scores and has_scores
            lines += 1
    except StudioError as exc:
        raise WorkerError(f"the {what} file is not valid FlagEmbedding JSONL: {exc.message('en')}") from None
    return {"lines": lines, "first_has_scores": first_scores, "all_have_scores": all_scores}


def validate_config(config: TrainConfig) -> None:
    """The settings (:meth:`TrainConfig.check_settings`, the same check the app makes before recording a job)."""
    try:
        config.check_settings()
    except StudioError as exc:
        raise WorkerError(exc.message("en")) from None


def precision_flags(precision: str) -> dict:
    """fp16/bf16 TrainingArguments flags; ``auto``: bf16 on GPUs that have it, fp16 on other GPUs, fp32 on CPU."""
    import torch

    if precision == "auto":
        if torch.cuda.is_available():
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "fp32"
    if precision == "fp16" and not torch.cuda.is_available():
        raise WorkerError("fp16 training needs a CUDA GPU; use precision auto or fp32")
    if precision == "bf16" and not (torch.cuda.is_available() and torch.cuda.is_bf16_supported()):
        raise WorkerError("bf16 training needs a GPU that supports bf16 (NVIDIA Ampere or newer); "
                          "use precision auto, fp16 or fp32")
    return {"fp16": precision == "fp16", "bf16": precision == "bf16"}


def discard_partial_checkpoints(folder: Path, keep: Path | None) -> list[str]:
    """Remove ``checkpoint-<step>`` folders past `keep` (the newest complete one) that a killed worker left half
    written: resumed training writes those steps again, and the Trainer's rotation must not keep them instead of
    complete ones. Returns the names removed."""
    keep_step = checkpoint_step(keep) if keep else -1
    removed = []
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            step = checkpoint_step(path)
            if step is not None and step > keep_step and path.is_dir() and not (path / "trainer_state.json").is_file():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
    return removed


# --- model preparation (LoRA, freezing) and checkpoint loading -----------------------------------------------------
def _find_parts(model):
    """(embedding module, list of transformer layers) of an encoder, wrapped by peft or not."""
    import torch

    embeddings = layers = None
    for name, module in model.named_modules():
        last = name.rsplit(".", 1)[-1]
        if embeddings is None and last == "embeddings" and hasattr(module, "word_embeddings"):
            embeddings = module
        if layers is None and isinstance(module, torch.nn.ModuleList) and last in ("layer", "layers"):
            layers = module
    if embeddings is None:
        embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    return embeddings, layers


def freeze(model, embeddings: bool, layers: int) -> None:
    """Stop gradients to the embedding layer and/or the lowest `layers` transformer layers (LoRA ones included)."""
    if not embeddings and layers <= 0:
        return
    embedding_module, layer_list = _find_parts(model)
    if embeddings:
        if embedding_module is None:
            raise WorkerError("cannot find the embedding layer to freeze in this model")
        for p in embedding_module.parameters():
            p.requires_grad = False
    if layers > 0:
        if layer_list is None:
            raise WorkerError("cannot find the transformer layers to freeze in this model")
        if layers > len(layer_list):
            print(f"freeze_layers={layers} but the model has {len(layer_list)} layers: freezing all of them")
        for layer in list(layer_list)[:layers]:
            for p in layer.parameters():
                p.requires_grad = False


def make_prepare(config: TrainConfig, architecture: str) -> Callable[[object, object], None]:
    """The hook run on FlagEmbedding's model once built: eos for M3 tokenizers, LoRA, freezing."""

    def prepare(tokenizer, model) -> None:
        if architecture == "m3" and tokenizer.eos_token_id is None and tokenizer.sep_token is not None:
            # M3's sparse head zeroes cls/eos/pad/unk; BERT-style tokenizers have no eos, XLM-R's is its sep.
            tokenizer.eos_token = tokenizer.sep_token
        if config.method == "lora":
            from peft import LoraConfig, get_peft_model

            modules_to_save = None
            if config.task == "reranker":
                from studio.training.reranker import head_modules

                modules_to_save = head_modules(model.model) or None
            lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                              target_modules=list(config.lora_targets), modules_to_save=modules_to_save)
            try:
                model.model = get_peft_model(model.model, lora)
            except ValueError as exc:
                raise WorkerError(f"LoRA could not be applied (lora_targets {config.lora_targets}): "
                                  f"{_first_line(exc)}") from None
        freeze(model.model, config.freeze_embeddings, config.freeze_layers)
        params = list(model.parameters())
        trainable = sum(p.numel() for p in params if p.requires_grad)
        total = sum(p.numel() for p in params)
        print(f"trainable parameters: {trainable:,} of {total:,} ({100 * trainable / max(total, 1):.2f}%)",
              flush=True)

    return prepare


def _read_state(folder: Path, names: Sequence[str]) -> dict | None:
    """A state dict from the first of `names` present in `folder` (safetensors, sharded or not, or .bin)."""
    import torch
    from safetensors.torch import load_file

    for name in names:
        path = folder / name
        if path.is_file():
            return load_file(str(path)) if name.endswith(".safetensors") else torch.load(
                path, map_location="cpu", weights_only=True)
        index = folder / f"{name}.index.json"
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
            state: dict = {}
            for shard in shards:
                state.update(load_file(str(folder / shard)) if shard.endswith(".safetensors")
                             else torch.load(folder / shard, map_location="cpu", weights_only=True))
            return state
    return None


def load_checkpoint_weights(model, checkpoint: Path) -> None:
    """Restore a FlagEmbedding model's weights from one of its own Trainer checkpoints.

    Their trainers save the inner transformer (or its LoRA adapter) and the M3 heads, without the wrapper's
    ``model.`` prefix, so the Trainer's own loader cannot match the keys; this one can.
    """
    import torch
    from peft import PeftModel, set_peft_model_state_dict

    inner = model.model
    if isinstance(inner, PeftModel):
        state = _read_state(checkpoint, ("adapter_model.safetensors", "adapter_model.bin"))
        if state is None:
            raise WorkerError(f"checkpoint {checkpoint.name} has no LoRA adapter: it was not trained with LoRA")
        set_peft_model_state_dict(inner, state)
    else:
        state = _read_state(checkpoint, ("model.safetensors", "pytorch_model.bin"))
        if state is None:
            raise WorkerError(f"checkpoint {checkpoint.name} has no full model weights: "
                              "it was trained with LoRA; resume with method lora")
        own = inner.state_dict()
        matched = [k for k in state if k in own]
        if not matched:
            raise WorkerError(f"checkpoint {checkpoint.name} does not match this model")
        missing = [k for k in own if k not in state]
        inner.load_state_dict(state, strict=False)
        if missing:
            print(f"resume: {len(missing)} weights not in the checkpoint kept their current values", flush=True)
    for name in ("colbert_linear", "sparse_linear"):
        head, path = getattr(model, name, None), checkpoint / f"{name}.pt"
        if head is not None and path.is_file():
            head.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    print(f"resumed weights from {checkpoint}", flush=True)


# --- the job -------------------------------------------------------------------------------------------------------
def _apply_extra(extra: dict, classes: Sequence[type], targets: Sequence[dict]) -> None:
    """Put each config.extra key into the kwargs of the argument dataclass that has such a field."""
    for key, value in (extra or {}).items():
        if key in FIXED_ARGUMENTS:
            print(f"config.extra: '{key}' is set by the job folder contract; ignored")
            continue
        placed = False
        for cls, target in zip(classes, targets):
            if key in {f.name for f in fields(cls)}:
                target[key] = value
                placed = True
        if not placed:
            print(f"config.extra: '{key}' is not a FlagEmbedding or Trainer argument; ignored")


@dataclass
class Plan:
    """What a job resolves to before anything heavy is loaded."""

    base: Path
    architecture: str
    train_lines: int
    valid_lines: int | None
    distill: bool
    valid_distill: bool
    pooling: str
    batch_size: int
    resume_from: Path | None
    passage_max_len: int = 512


def make_plan(job_dir: Path, config: TrainConfig) -> Plan:
    """Validate the config and data, resolve the base, architecture, distillation, pooling and checkpoint."""
    validate_config(config)
    base = resolve_base(config.base)
    architecture = resolve_architecture(config, base)
    train_info = check_jsonl(config.train, "training")
    valid_info = check_jsonl(config.valid, "validation") if config.valid else None
    distill = config.distill == "on" or (config.distill == "auto" and train_info["first_has_scores"])
    if distill and not train_info["all_have_scores"]:
        raise WorkerError(f"knowledge distillation needs \"pos_scores\" and \"neg_scores\" on every line of "
                          f"{config.train}; export with scores or set distill to off")
    pooling = "cls"  # BGE / BGE-M3 convention, and what BGEM3FlagModel uses
    if config.task == "embedder" and architecture == "encoder":
        from studio.training.embedder import base_pooling

        pooling = base_pooling(base)
    batch_size = config.batch_size
    if config.task == "reranker" and train_info["lines"] < batch_size:
        # FlagEmbedding's reranker reshapes by the batch size, so incomplete batches are dropped: keep one.
        batch_size = train_info["lines"]
        print(f"only {batch_size} training lines: batch size lowered to {batch_size}", flush=True)
    resume_from = latest_checkpoint(job_dir / "checkpoints") if config.resume else None
    if config.resume:
        for name in discard_partial_checkpoints(job_dir / "checkpoints", resume_from):
            print(f"removed {name}: the worker stopped while writing it", flush=True)
        if resume_from is None:
            print("resume: no checkpoint yet: starts again from step 1 (from the base model)", flush=True)
    return Plan(base, architecture, train_info["lines"], valid_info["lines"] if valid_info else None, distill,
                bool(distill and valid_info and valid_info["all_have_scores"]), pooling, batch_size, resume_from,
                passage_max_len(config, base))


def argument_kwargs(job_dir: Path, config: TrainConfig, plan: Plan) -> tuple[dict, dict, dict]:
    """FlagEmbedding's (model, data, training) argument fields for this job, config.extra applied last."""
    from transformers import TrainingArguments

    model_kwargs = {"model_name_or_path": str(plan.base)}
    data_kwargs = {"train_data": [str(Path(config.train).resolve())], "train_group_size": config.group_size,
                   "query_max_len": config.query_max_len, "passage_max_len": plan.passage_max_len,
                   "knowledge_distillation": plan.distill, "cache_path": str(job_dir / "cache")}
    training_kwargs = {
        "output_dir": str(job_dir / "checkpoints"), "learning_rate": config.learning_rate(),
        "num_train_epochs": config.epochs, "max_steps": config.max_steps if config.max_steps > 0 else -1,
        "per_device_train_batch_size": plan.batch_size, "weight_decay": config.weight_decay, "seed": config.seed,
        # Transformers 5: a float below 1 is a ratio of the total steps (warmup_ratio is gone).
        "warmup_steps": min(max(float(config.warmup_ratio), 0.0), 0.999),
        "logging_strategy": "steps", "logging_steps": config.logging_steps, "save_strategy": "steps",
        "save_steps": config.save_steps, "save_total_limit": CHECKPOINTS_KEPT, "eval_strategy": "no",
        "report_to": "none",
        "dataloader_num_workers": 0, "remove_unused_columns": False, "disable_tqdm": True,
        "resume_from_checkpoint": str(plan.resume_from) if plan.resume_from else None,
        **precision_flags(config.precision),
    }
    # Transformers 5 renamed gradient_checkpointing to activation_checkpointing; the old name mirrors the new one,
    # and that is what FlagEmbedding's runners read.
    checkpointing = ("activation_checkpointing" if "activation_checkpointing" in
                     {f.name for f in fields(TrainingArguments)} else "gradient_checkpointing")
    training_kwargs[checkpointing] = config.gradient_checkpointing
    if config.gradient_checkpointing:
        training_kwargs[f"{checkpointing}_kwargs"] = {"use_reentrant": False}
    if config.task == "embedder":
        training_kwargs.update(temperature=config.temperature, sentence_pooling_method=plan.pooling,
                               normalize_embeddings=True)
        if plan.architecture == "m3":
            training_kwargs.update(unified_finetuning=config.unified,
                                   use_self_distill=bool(config.unified and config.self_distill))
    else:
        training_kwargs["dataloader_drop_last"] = True
    _apply_extra(config.extra, _argument_classes(config, plan), (model_kwargs, data_kwargs, training_kwargs))
    return model_kwargs, data_kwargs, training_kwargs


def _argument_classes(config: TrainConfig, plan: Plan) -> tuple[type, type, type]:
    if config.task == "embedder":
        from studio.training.embedder import argument_classes

        return argument_classes(plan.architecture)
    from studio.training.reranker import argument_classes

    return argument_classes()


def build_runner(job_dir: Path, config: TrainConfig, plan: Plan, stop: StopRequest | None = None):
    """The FlagEmbedding runner for the job: model prepared (LoRA, freezing), trainer built, not started; the
    phase file says which stage it is in, and a stop asked for meanwhile ends it between stages."""
    kwargs = argument_kwargs(job_dir, config, plan)
    prepared = make_prepare(config, plan.architecture)

    def prepare(tokenizer, model) -> None:
        prepared(tokenizer, model)
        if stop is not None:
            stop.checkpoint()
        write_phase(job_dir, "reading_data")  # the runner reads the training file next

    write_phase(job_dir, "loading_model")
    if config.task == "embedder":
        from studio.training import embedder

        runner = embedder.build_runner(plan.architecture, *kwargs, prepare)
    else:
        from studio.training import reranker

        runner = reranker.build_runner(*kwargs, prepare)
    # Their checkpoints hold the inner transformer; the Trainer's own loader expects the wrapper's keys.
    model = runner.model
    runner.trainer._load_from_checkpoint = lambda checkpoint, _model=None: load_checkpoint_weights(
        model, Path(checkpoint))
    return runner


def seed_draws(trainer, seed: int):
    """Give the trainer's dataset draws seeded by (seed, epoch, item) (callbacks.SeededDraws): a resumed run then
    fetches exactly the batches the uninterrupted run would have. Returns the callback that tracks the epoch."""
    from studio.training.callbacks import DrawEpoch, SeededDraws

    draws = SeededDraws(trainer.train_dataset, seed)
    trainer.train_dataset = draws
    return DrawEpoch(draws)


def make_evaluator(runner, config: TrainConfig, plan: Plan):
    """Validation loss over config.valid with the runner's own dataset class, collator and model; None without it."""
    if not config.valid:
        return None
    import torch

    from studio.training.callbacks import EvalLoss

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

    from studio.training.model_export import export_model

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
    write_phase(job_dir, "checking")
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

    from studio.training.callbacks import StudioCallback

    studio_callback = StudioCallback(job_dir, make_evaluator(runner, config, plan),
                                     int(config.extra.get("eval_steps") or config.save_steps), stop_requested=stop,
                                     save_every=float(config.save_every or 0) * 60,
                                     phase=lambda name: write_phase(job_dir, name))
    trainer.remove_callback(PrinterCallback)  # our progress lines replace its raw log dicts
    trainer.add_callback(seed_draws(trainer, config.seed))
    for callback in callbacks or ():  # before ours: what they do at a step (e.g. ask to cancel) is seen at that step
        trainer.add_callback(callback)
    trainer.add_callback(studio_callback)

    if plan.resume_from:
        print(f"resuming from {plan.resume_from.name}: continues from step {checkpoint_step(plan.resume_from)}",
              flush=True)
    write_phase(job_dir, "starting")
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
        saved = latest_checkpoint(job_dir / "checkpoints")
        final["checkpoint_step"] = step = checkpoint_step(saved) if saved else None
        print(f"cancelled at step {state.global_step}; " + (
            f"resume continues from step {step} ({saved})" if step else
            "no checkpoint yet: resume starts again from step 1"), flush=True)
        return EXIT_CANCELLED, None, final
    write_phase(job_dir, "exporting")
    out = export(runner, job_dir, config, plan, final)
    print(f"model written to {out}", flush=True)
    return EXIT_OK, str(out), final


def _cancelled_early(job_dir: Path) -> dict:
    """The final figures of a job stopped before training began: the checkpoint resume continues from, if any."""
    saved = latest_checkpoint(Path(job_dir) / "checkpoints")
    step = checkpoint_step(saved) if saved else None
    print("cancelled before training began; " + (f"resume continues from step {step}" if step else
                                                  "no checkpoint yet: resume starts again from step 1"), flush=True)
    return {"step": step or 0, "checkpoint_step": step}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def explain(exc: BaseException) -> str:
    """A plain-words message for result.json."""
    if isinstance(exc, WorkerError):
        return str(exc)
    text = str(exc)
    if type(exc).__name__ == "OutOfMemoryError" or "CUDA out of memory" in text or (
            "out of memory" in text and ("CUDA" in text or "HIP" in text or "MPS" in text)):
        return "out of GPU memory: lower the batch size or passage length"
    if isinstance(exc, MemoryError):
        return "out of memory: lower the batch size or passage length"
    if isinstance(exc, (FileNotFoundError, FileExistsError, PermissionError)):
        return _first_line(exc)
    return f"{type(exc).__name__}: {_first_line(exc)}"


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
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    stop = StopRequest(job_dir).install()
    heartbeat = Heartbeat(job_dir, on_beat=stop.watch_file).start()
    started = time.time()
    try:
        try:
            config = TrainConfig.load(job_dir)
        except (OSError, ValueError, TypeError) as exc:
            raise WorkerError(f"cannot read {job_dir / 'config.json'}: {_first_line(exc)}") from None
        code, model_dir, final = run_job(job_dir, config, callbacks, stop)
    except Cancelled:
        stop.training = True  # a second signal must not interrupt writing the result
        code, model_dir, final = EXIT_CANCELLED, None, _cancelled_early(job_dir)
    except Exception as exc:  # noqa: BLE001 - every failure ends as result.json + exit 2
        stop.training = True  # a signal now must not interrupt writing the result
        traceback.print_exc()
        message = explain(exc)
        print(f"failed: {message}", flush=True)
        write_result(job_dir, "failed", error=message)
        return EXIT_FAILED
    finally:
        stop.training = True  # a late signal must not raise in what follows
        heartbeat.stop()
        stop.restore()
    status = "succeeded" if code == EXIT_OK else "cancelled"
    write_result(job_dir, status, model_dir, final=final)
    print(f"{status} in {time.time() - started:.0f}s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
