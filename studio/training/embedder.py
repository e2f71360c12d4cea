"""Embedder fine-tuning through FlagEmbedding's runners: BGE-M3 style (dense + sparse + ColBERT) or dense only.

FlagEmbedding is used as a library: its argument dataclasses are filled in from Python, its runner builds the
tokenizer, model, dataset, collator and trainer, and the studio only hooks in after the model is built (LoRA,
freezing: the ``prepare`` callable) and adds its callbacks to the runner's trainer. Both runners train
FlagEmbedding's models as their :mod:`~studio.training.fast_models` classes: the same numbers with less padding
(and, for M3, without the batch × length × vocab sparse tensor).
"""

from __future__ import annotations

import json
from pathlib import Path

from FlagEmbedding.abc.finetune.embedder import AbsEmbedderDataArguments, AbsEmbedderTrainingArguments
from FlagEmbedding.finetune.embedder.encoder_only.base import (EncoderOnlyEmbedderModelArguments,
                                                               EncoderOnlyEmbedderRunner)
from FlagEmbedding.finetune.embedder.encoder_only.m3 import (EncoderOnlyEmbedderM3ModelArguments,
                                                             EncoderOnlyEmbedderM3Runner,
                                                             EncoderOnlyEmbedderM3TrainingArguments)

from studio.training.fast_models import FastLoader
from studio.training.hook import Prepare, PrepareHook


POOLING_KEYS = (("pooling_mode_cls_token", "cls"), ("pooling_mode_mean_tokens", "mean"),
                ("pooling_mode_lasttoken", "last_token"))


class StudioEmbedderRunner(PrepareHook, FastLoader, EncoderOnlyEmbedderRunner):
    """FlagEmbedding's dense encoder-only runner: its model sped up (fast_models), a hook run once it is built."""


class StudioM3Runner(PrepareHook, FastLoader, EncoderOnlyEmbedderM3Runner):
    """FlagEmbedding's BGE-M3 runner: its model sped up (fast_models), a hook run once it is built."""


def base_pooling(base: str | Path, default: str = "cls") -> str:
    """The pooling of a sentence-transformers folder (its Pooling module's config): cls, mean or last_token."""
    base = Path(base)
    folder = "1_Pooling"
    modules = base / "modules.json"
    if modules.is_file():
        try:
            for module in json.loads(modules.read_text(encoding="utf-8")):
                if str(module.get("type", "")).endswith("Pooling"):
                    folder = module.get("path") or folder
                    break
        except (ValueError, AttributeError):
            pass
    config_path = base / folder / "config.json"
    if not config_path.is_file():
        return default
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except ValueError:
        return default
    mode = config.get("pooling_mode")  # newer sentence-transformers write the mode by name
    if isinstance(mode, str):
        return {"lasttoken": "last_token", "mean_tokens": "mean", "cls_token": "cls"}.get(mode, mode)
    for key, name in POOLING_KEYS:
        if config.get(key):
            return name
    return default


def argument_classes(architecture: str) -> tuple[type, type, type]:
    """FlagEmbedding's (model, data, training) argument dataclasses for ``m3`` or ``encoder``."""
    if architecture == "m3":
        return (EncoderOnlyEmbedderM3ModelArguments, AbsEmbedderDataArguments,
                EncoderOnlyEmbedderM3TrainingArguments)
    return EncoderOnlyEmbedderModelArguments, AbsEmbedderDataArguments, AbsEmbedderTrainingArguments


def build_runner(architecture: str, model_kwargs: dict, data_kwargs: dict, training_kwargs: dict,
                 prepare: Prepare | None = None):
    """A FlagEmbedding runner (model, dataset, collator and trainer built; training not started).

    Args:
        architecture: ``m3`` (EncoderOnlyEmbedderM3Runner: dense + sparse + ColBERT, ``unified_finetuning`` and
            ``use_self_distill`` in `training_kwargs`) or ``encoder`` (EncoderOnlyEmbedderRunner, dense only).
        model_kwargs, data_kwargs, training_kwargs: Fields of the :func:`argument_classes` dataclasses.
        prepare: Called with (tokenizer, model) once the runner has built the model, before the trainer exists.
    """
    model_cls, data_cls, training_cls = argument_classes(architecture)
    runner_cls = StudioM3Runner if architecture == "m3" else StudioEmbedderRunner
    return runner_cls(model_cls(**model_kwargs), data_cls(**data_kwargs), training_cls(**training_kwargs), prepare)
