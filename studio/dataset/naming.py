"""How an export names its files: the validation twin ``X.valid.jsonl`` beside a training file ``X.jsonl``.

One place for the convention the export writes (:mod:`studio.dataset.triplets`), a job picks up
(:mod:`studio.actions.jobs`), an evaluation leaves out (:mod:`studio.evaluation.runner`) and the pickers hide
(:mod:`studio.actions.files`).
"""

from __future__ import annotations

from pathlib import Path

VALID_SUFFIX = ".valid.jsonl"


def is_validation_file(path: str | Path) -> bool:
    return Path(path).name.endswith(VALID_SUFFIX)


def validation_twin(train_file: str | Path) -> Path | None:
    """``X.valid.jsonl`` beside the training file ``X.jsonl`` when it exists; None otherwise (and for a file that is
    itself a validation file, or not ``.jsonl``)."""
    path = Path(train_file)
    if not path.name.endswith(".jsonl") or is_validation_file(path):
        return None
    twin = path.with_name(path.name[: -len(".jsonl")] + VALID_SUFFIX)
    return twin if twin.is_file() else None
