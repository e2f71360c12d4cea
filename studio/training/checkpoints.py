"""A job's Trainer checkpoints (``JOB_DIR/checkpoints/checkpoint-<step>/``): finding the newest complete one, clearing
half-written ones, and loading one back into a FlagEmbedding model.

A checkpoint holds weights, optimizer, scheduler, RNG states and trainer state (what ``resume_from_checkpoint``
needs to continue exactly); ``trainer_state.json`` is written last, so a folder without it is incomplete.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from studio.training.failures import WorkerError
from studio.training.job_folder import JobFolder

# Checkpoints kept in a job folder unless config.extra sets the Trainer's save_total_limit.
CHECKPOINTS_KEPT = 2


def checkpoint_step(path: Path) -> int | None:
    """The step of a ``checkpoint-<step>`` folder name, or None for any other name."""
    prefix, _, number = path.name.rpartition("-")
    return int(number) if prefix == "checkpoint" and number.isdigit() else None


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The complete ``checkpoint-<step>`` folder (its trainer_state.json, written last, is there) with the highest
    step, or None. A folder the worker was killed while writing is not complete."""
    best: tuple[int, Path] | None = None
    folder = Path(folder)
    if folder.is_dir():
        for path in folder.iterdir():
            step = checkpoint_step(path)
            if step is not None and path.is_dir() and (path / "trainer_state.json").is_file() and (
                    best is None or step > best[0]):
                best = (step, path)
    return best[1] if best else None


def resume_step(job_dir: str | Path) -> int | None:
    """The step a job's resume continues from: that of its newest complete checkpoint, None when it has none
    (it then starts again from step 1)."""
    found = latest_checkpoint(JobFolder(job_dir).checkpoints)
    return checkpoint_step(found) if found else None


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
