"""Advice before a job starts: how many optimizer steps it will take, and what to change when that is too few for a
fine-tune to move the model (the Train tab and ``studio train`` say so, and offer the fix)."""

from __future__ import annotations

import math
from pathlib import Path

from studio.training.train_file import count_lines

# Fewer optimizer steps than this and a fine-tune barely moves the model: the Train tab says so before it starts.
FEW_STEPS = 20


def optimizer_steps(train_lines: int, batch_size: int, epochs: float, max_steps: int = -1) -> int:
    """The optimizer steps a job takes, counted as Transformers counts them (batches per epoch rounded up)."""
    if max_steps and max_steps > 0:
        return int(max_steps)
    return math.ceil(math.ceil(train_lines / max(int(batch_size), 1)) * float(epochs))


def too_few_steps(train_file: str | Path | None, batch_size: int, epochs: float,
                  max_steps: int = -1) -> tuple[int, int] | None:
    """(optimizer steps, training lines) when a job on `train_file` would take fewer than FEW_STEPS steps; None when
    it takes enough, or when the file or the settings cannot tell."""
    lines = count_lines(train_file) if train_file else None
    if not lines or batch_size < 1 or epochs <= 0:
        return None
    steps = optimizer_steps(lines, batch_size, epochs, max_steps)
    return (steps, lines) if steps < FEW_STEPS else None


def steps_fix(train_file: str | Path | None, batch_size: int, epochs: float,
              max_steps: int = -1) -> tuple[str, int | float, int] | None:
    """What to change so that a job that would take fewer than FEW_STEPS optimizer steps takes at least that many:
    (setting, new value, steps it then takes), or None when it already takes enough or the file cannot tell.

    With max_steps set, max_steps is raised to FEW_STEPS; otherwise epochs are raised to the fewest whole epochs
    that reach it (a file of 3 batches at 1 epoch: 7 epochs, 21 steps).
    """
    few = too_few_steps(train_file, batch_size, epochs, max_steps)
    if few is None:
        return None
    if max_steps and max_steps > 0:
        return "max_steps", FEW_STEPS, FEW_STEPS
    _, lines = few
    batches = math.ceil(lines / max(int(batch_size), 1))
    new_epochs = math.ceil(FEW_STEPS / batches)
    return "epochs", new_epochs, optimizer_steps(lines, batch_size, new_epochs)
