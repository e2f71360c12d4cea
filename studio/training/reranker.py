"""Cross-encoder reranker fine-tuning through FlagEmbedding's encoder-only reranker runner.

The runner loads ``AutoModelForSequenceClassification`` with ``num_labels=1``; a base without a classification
head (the embedded all-MiniLM-L6-v2 is a plain ``BertModel``) gets a new, randomly initialised head, which
Transformers reports as missing weights and trains from scratch.
"""

from __future__ import annotations


from FlagEmbedding.abc.finetune.reranker import (AbsRerankerDataArguments, AbsRerankerModelArguments,
                                                 AbsRerankerTrainingArguments)
from FlagEmbedding.finetune.reranker.encoder_only.base import EncoderOnlyRerankerRunner

from studio.training.hook import Prepare, PrepareHook

# Names a sequence-classification head goes by; LoRA keeps these fully trainable (peft ``modules_to_save``).
HEAD_NAMES = ("classifier", "pre_classifier", "score")


class StudioRerankerRunner(PrepareHook, EncoderOnlyRerankerRunner):
    """FlagEmbedding's encoder-only reranker runner, with a hook run right after it builds the model."""


def argument_classes() -> tuple[type, type, type]:
    """FlagEmbedding's (model, data, training) argument dataclasses for the reranker."""
    return AbsRerankerModelArguments, AbsRerankerDataArguments, AbsRerankerTrainingArguments


def head_modules(model) -> list[str]:
    """Names of the classification head's top-level modules in a ``...ForSequenceClassification`` model."""
    children = {name for name, _ in model.named_children()}
    return [name for name in HEAD_NAMES if name in children]


def build_runner(model_kwargs: dict, data_kwargs: dict, training_kwargs: dict, prepare: Prepare | None = None):
    """A FlagEmbedding reranker runner (model, dataset, collator and trainer built; training not started)."""
    model_cls, data_cls, training_cls = argument_classes()
    return StudioRerankerRunner(model_cls(**{"model_type": "encoder", **model_kwargs}), data_cls(**data_kwargs),
                                training_cls(**training_kwargs), prepare)
