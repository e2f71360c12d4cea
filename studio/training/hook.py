"""A hook into FlagEmbedding's runners, run right after they build the model (LoRA, freezing)."""

from __future__ import annotations

from collections.abc import Callable

Prepare = Callable[[object, object], None]  # (tokenizer, FlagEmbedding model) -> None, changes the model in place


class PrepareHook:
    """Mix in before a FlagEmbedding runner class: ``class Runner(PrepareHook, EncoderOnlyEmbedderRunner)``."""

    def __init__(self, model_args, data_args, training_args, prepare: Prepare | None = None):
        self._prepare = prepare
        super().__init__(model_args, data_args, training_args)

    def load_trainer(self):
        trainer = super().load_trainer()
        trainer.create_scheduler = _scheduler_keeping_a_step_after_warmup(trainer)
        return trainer

    def load_tokenizer_and_model(self):
        tokenizer, model = super().load_tokenizer_and_model()
        if self._prepare:
            self._prepare(tokenizer, model)
        return tokenizer, model


def _scheduler_keeping_a_step_after_warmup(trainer):
    """The trainer's `create_scheduler`, except that a warmup never takes every step of a run.

    Transformers rounds a warmup ratio up (``ceil(0.1 × 1) = 1``) and a warmup step's learning rate starts at 0:
    a one-step job (a demo-sized export at batch 32, one epoch) trained at learning rate 0 and saved the base model
    unchanged under a new name. Runs where the warmup leaves a step free keep Transformers' schedule exactly.
    """
    original = trainer.create_scheduler

    def create_scheduler(num_training_steps: int, optimizer=None):
        warmup = trainer.args.get_warmup_steps(num_training_steps)
        if trainer.lr_scheduler is None and warmup > 0 and warmup >= num_training_steps:
            from transformers import get_scheduler

            trainer.lr_scheduler = get_scheduler(
                trainer.args.lr_scheduler_type, optimizer=optimizer or trainer.optimizer,
                num_warmup_steps=max(num_training_steps - 1, 0), num_training_steps=num_training_steps,
                scheduler_specific_kwargs=trainer.args.lr_scheduler_kwargs)
            trainer._created_lr_scheduler = True
        return original(num_training_steps, optimizer)

    return create_scheduler
