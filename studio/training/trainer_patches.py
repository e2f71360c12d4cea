"""The two places where the studio changes how a Hugging Face ``Trainer`` built by FlagEmbedding behaves.

Both replace a method on one trainer instance (no class is patched), right after FlagEmbedding's runner builds it:

- :func:`keep_a_step_after_warmup` (applied by :class:`studio.training.hook.PrepareHook`): a warmup never takes every
  step of a run;
- :func:`load_checkpoints_into_wrapper` (applied by :func:`studio.training.worker.build_runner`): resuming loads a
  checkpoint with :func:`studio.training.checkpoints.load_checkpoint_weights`, replacing the Trainer's private
  ``_load_from_checkpoint``, whose keys do not match FlagEmbedding's checkpoints.
"""

from __future__ import annotations

from pathlib import Path

from studio.training.checkpoints import load_checkpoint_weights


def keep_a_step_after_warmup(trainer) -> None:
    """Make the trainer's `create_scheduler` keep one step after the warmup.

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

    trainer.create_scheduler = create_scheduler


def load_checkpoints_into_wrapper(trainer, model) -> None:
    """Make the trainer load a checkpoint into FlagEmbedding's `model` on resume.

    FlagEmbedding's checkpoints hold the inner transformer (and the M3 heads); the Trainer's own loader expects the
    wrapper's keys, so it would find none of them.
    """
    trainer._load_from_checkpoint = lambda checkpoint, _model=None: load_checkpoint_weights(model, Path(checkpoint))
