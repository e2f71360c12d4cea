"""A hook into FlagEmbedding's runners, run right after they build the model (LoRA, freezing)."""

from __future__ import annotations

from collections.abc import Callable

Prepare = Callable[[object, object], None]  # (tokenizer, FlagEmbedding model) -> None, changes the model in place


class PrepareHook:
    """Mix in before a FlagEmbedding runner class: ``class Runner(PrepareHook, EncoderOnlyEmbedderRunner)``."""

    def __init__(self, model_args, data_args, training_args, prepare: Prepare | None = None):
        self._prepare = prepare
        super().__init__(model_args, data_args, training_args)

    def load_tokenizer_and_model(self):
        tokenizer, model = super().load_tokenizer_and_model()
        if self._prepare:
            self._prepare(tokenizer, model)
        return tokenizer, model
