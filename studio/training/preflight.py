"""What a job will write, checked before it is recorded: the folders can be written, and the disk can hold it.

A job writes its folder and checkpoints under ``jobs/`` and its model to ``models/NAME`` at the very end. An
unwritable models folder or a disk too small used to show only then, after hours of training; these checks run
in a second, before the job's row exists.

Disk space is estimated, not measured: the base model's weights W; a full fine-tune's checkpoint holds the
weights and Adam's two moments (≈ 3 W), a LoRA checkpoint only the adapter (≈ 5 % of W is generous); the Trainer
keeps ``save_total_limit`` checkpoints and writes the next before removing the oldest; the exported model is W.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from studio.config import embedded_model_path
from studio.errors import StudioError
from studio.training.checkpoints import CHECKPOINTS_KEPT
from studio.training.config import TrainConfig

OPTIMIZER_STATES = 2    # Adam(W): two moments per trainable weight, as large as the weights
LORA_SHARE = 0.05       # a LoRA checkpoint (adapter, its optimizer state) against the whole model
_WEIGHTS = (".safetensors", ".bin", ".pt", ".pth")


@dataclass(frozen=True)
class DiskNeed:
    """Bytes a job will need: in its job folder (checkpoints, data cache) and in the models folder."""

    weights: int
    checkpoint: int
    checkpoints: int
    jobs: int
    models: int


def _existing(folder: Path) -> Path:
    """`folder` or its nearest existing parent."""
    folder = Path(os.path.abspath(folder))
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_writable(folder: str | Path, code: str) -> None:
    """Create `folder` (and its missing parents) and a file in it, then remove what was made: nothing is left.

    Raises:
        StudioError: `code` with ``path`` (the folder) and ``detail`` (why) when it cannot be done.
    """
    folder = Path(os.path.abspath(folder))
    made: list[Path] = []
    try:
        missing = []
        probe = folder
        while not probe.exists() and probe != probe.parent:
            missing.append(probe)
            probe = probe.parent
        for path in reversed(missing):
            path.mkdir()
            made.append(path)
        handle, name = tempfile.mkstemp(dir=folder, prefix=".studio-write-check-")
        os.close(handle)
        os.unlink(name)
    except OSError as exc:
        raise StudioError(code, path=str(folder), detail=exc.strerror or str(exc)) from None
    finally:
        for path in reversed(made):
            try:
                path.rmdir()
            except OSError:
                pass


def weights_bytes(folder: Path) -> int:
    """Bytes of a model folder's weights: its safetensors files (else its .bin files) and any .pt heads (M3)."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix in _WEIGHTS]
    main = [p for p in files if p.suffix == ".safetensors"] or [p for p in files if p.suffix == ".bin"]
    heads = [p for p in files if p.suffix in (".pt", ".pth")]
    return sum(p.stat().st_size for p in main + heads)


def base_folder(base: str) -> Path | None:
    """The folder of a base model as check_base returns it (``default``, a folder, a cached hub id), or None."""
    if base == "default":
        return embedded_model_path()
    path = Path(base)
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=base, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached: its size is unknown until the worker fetches it
        return None


def estimate(config: TrainConfig) -> DiskNeed | None:
    """What a job needs on disk (see the module's docstring); None when its base model is not on this machine."""
    folder = base_folder(str(config.base))
    if folder is None or not folder.is_dir():
        return None
    weights = weights_bytes(folder)
    share = LORA_SHARE if config.method == "lora" else 1 + OPTIMIZER_STATES
    checkpoint = int(weights * share)
    kept = config.extra.get("save_total_limit") or CHECKPOINTS_KEPT
    count = int(kept) + 1  # the next is written before the oldest goes
    data = sum(Path(p).stat().st_size for p in (config.train, config.valid) if p and Path(p).is_file())
    return DiskNeed(weights, checkpoint, count, jobs=count * checkpoint + 2 * data, models=weights)


def human(size: float) -> str:
    """Bytes as people read them: 950 MB, 2.3 GB."""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit in ("B", "KB", "MB") else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def check_disk(config: TrainConfig, jobs_dir: Path, models_dir: Path) -> DiskNeed | None:
    """Refuse a job the free space cannot hold (shutil.disk_usage), naming the folder; the estimate, if any.

    The job folder and the models folder are checked together when they share a disk, each on its own otherwise.
    """
    need = estimate(config)
    if need is None:
        return None
    jobs_at, models_at = _existing(jobs_dir), _existing(models_dir)
    together = os.stat(jobs_at).st_dev == os.stat(models_at).st_dev
    places = [(jobs_dir, jobs_at, need.jobs + need.models)] if together else [
        (jobs_dir, jobs_at, need.jobs), (models_dir, models_at, need.models)]
    for folder, existing, wanted in places:
        free = shutil.disk_usage(existing).free
        if wanted > free:
            raise StudioError("train_disk_full", path=str(Path(os.path.abspath(folder))), need=human(wanted),
                              free=human(free), model=human(need.weights), checkpoints=need.checkpoints,
                              checkpoint=human(need.checkpoint))
    return need
