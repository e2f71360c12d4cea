"""What a job resolves to before anything heavy loads (:class:`Plan`: base folder, architecture, distillation,
pooling, batch size, checkpoint to resume from), and the FlagEmbedding / ``TrainingArguments`` fields it becomes.

Every check here raises :class:`~studio.training.failures.WorkerError` with words the user can act on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from studio.errors import StudioError
from studio.training.base_model import passage_max_len, resolve_architecture, resolve_base
from studio.training.checkpoints import CHECKPOINTS_KEPT, discard_partial_checkpoints, latest_checkpoint
from studio.training.config import TrainConfig
from studio.training.failures import WorkerError
from studio.training.job_folder import JobFolder
from studio.training.train_file import check_train_file

# config.extra may set any FlagEmbedding / TrainingArguments field, except those the job folder contract fixes.
FIXED_ARGUMENTS = {"output_dir", "resume_from_checkpoint", "train_data", "model_name_or_path", "report_to",
                   "do_train", "do_eval", "overwrite_output_dir"}


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


def check_jsonl(path: str | Path, what: str = "training") -> dict:
    """Validate a whole FlagEmbedding JSONL file, every line with the app's rules
    (:func:`studio.training.train_file.check_train_file`, scores optional).

    Returns:
        {"lines": count, "first_has_scores": bool, "all_have_scores": bool}

    Raises:
        WorkerError: missing file, wrong suffix, or the first bad line with the reason.
    """
    file = Path(path)
    if not file.is_file():
        raise WorkerError(f"the {what} file {file} does not exist")
    try:
        checked = check_train_file(file, distill="off", limit=None)
    except StudioError as exc:
        raise WorkerError(f"the {what} file is not valid FlagEmbedding JSONL: {exc.message('en')}") from None
    return {"lines": checked.lines, "first_has_scores": checked.first_has_scores,
            "all_have_scores": checked.all_have_scores}


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
        from studio.training.embedder import base_pooling  # imports FlagEmbedding

        pooling = base_pooling(base)
    batch_size = config.batch_size
    if config.task == "reranker" and train_info["lines"] < batch_size:
        # FlagEmbedding's reranker reshapes by the batch size, so incomplete batches are dropped: keep one.
        batch_size = train_info["lines"]
        print(f"only {batch_size} training lines: batch size lowered to {batch_size}", flush=True)
    checkpoints = JobFolder(job_dir).checkpoints
    resume_from = latest_checkpoint(checkpoints) if config.resume else None
    if config.resume:
        for name in discard_partial_checkpoints(checkpoints, resume_from):
            print(f"removed {name}: the worker stopped while writing it", flush=True)
        if resume_from is None:
            print("resume: no checkpoint yet: starts again from step 1 (from the base model)", flush=True)
    return Plan(base, architecture, train_info["lines"], valid_info["lines"] if valid_info else None, distill,
                bool(distill and valid_info and valid_info["all_have_scores"]), pooling, batch_size, resume_from,
                passage_max_len(config, base))


def argument_kwargs(job_dir: Path, config: TrainConfig, plan: Plan) -> tuple[dict, dict, dict]:
    """FlagEmbedding's (model, data, training) argument fields for this job, config.extra applied last."""
    from transformers import TrainingArguments

    folder = JobFolder(job_dir)
    model_kwargs = {"model_name_or_path": str(plan.base)}
    data_kwargs = {"train_data": [str(Path(config.train).resolve())], "train_group_size": config.group_size,
                   "query_max_len": config.query_max_len, "passage_max_len": plan.passage_max_len,
                   "knowledge_distillation": plan.distill, "cache_path": str(folder.cache)}
    training_kwargs = {
        "output_dir": str(folder.checkpoints), "learning_rate": config.learning_rate(),
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
    _apply_extra(config.extra, argument_classes(config, plan), (model_kwargs, data_kwargs, training_kwargs))
    return model_kwargs, data_kwargs, training_kwargs


def argument_classes(config: TrainConfig, plan: Plan) -> tuple[type, type, type]:
    """FlagEmbedding's (model, data, training) argument dataclasses for the job's task and architecture."""
    if config.task == "embedder":
        from studio.training.embedder import argument_classes as embedder_classes  # imports FlagEmbedding

        return embedder_classes(plan.architecture)
    from studio.training.reranker import argument_classes as reranker_classes  # imports FlagEmbedding

    return reranker_classes()


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
