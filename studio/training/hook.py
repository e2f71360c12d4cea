"""A hook into FlagEmbedding's runners, run right after they build the model (LoRA, freezing) and the trainer
(:func:`studio.training.trainer_patches.keep_a_step_after_warmup`)."""

from __future__ import annotations

from collections.abc import Callable

from studio.training.trainer_patches import keep_a_step_after_warmup

Prepare = Callable[[object, object], None]  # (tokenizer, FlagEmbedding model) -> None, changes the model in place


class PrepareHook:
    """Mix in before a FlagEmbedding runner class: ``class Runner(PrepareHook, EncoderOnlyEmbedderRunner)``."""

    def __init__(self, model_args, data_args, training_args, prepare: Prepare | None = None):
        self._prepare = prepare
        super().__init__(model_args, data_args, training_args)

    def load_trainer(self):
        trainer = super().load_trainer()
        keep_a_step_after_warmup(trainer)
        return trainer

    def load_tokenizer_and_model(self):
        tokenizer, model = super().load_tokenizer_and_model()
        if self._prepare:
            self._prepare(tokenizer, model)
        return tokenizer, model

