"""The job folder (``jobs/<name>/``): the one place that names its files, shared by the app (:mod:`studio.training.jobs`)
and the worker process (:mod:`studio.training.worker`, :mod:`studio.training.callbacks`).

The app and the worker talk through these files only (the worker may outlive the app):

- ``config.json``: the job's :class:`~studio.training.config.TrainConfig`, written by the app;
- ``log.txt``: the worker's stdout and stderr;
- ``metrics.jsonl``: one line per logged step (loss, learning rate, eval loss), appended by the worker;
- ``phase``: what the worker does before step 1 (loading_model, reading_data...);
- ``heartbeat``: "<pid> <unix time>", rewritten every few seconds while the worker lives;
- ``cancel``: written by the app to ask the worker to stop (it saves a checkpoint first);
- ``result.json``: how the run ended (status, model folder, error, final metrics), written last by the worker;
- ``checkpoints/``: the Trainer's checkpoints, for a resume (:mod:`studio.training.checkpoints`);
- ``cache/``: FlagEmbedding's dataset cache.

The worker's exit code is part of the contract: :data:`EXIT_OK` succeeded, :data:`EXIT_FAILED` failed with a
plain-words error in ``result.json``, :data:`EXIT_CANCELLED` cancelled; anything else is a crash.

A leaf: it imports nothing of the studio.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

# What the worker is doing, written to the ``phase`` file in this order (the Train tab words each one).
PHASES = ("checking", "loading_model", "reading_data", "starting", "training", "stopping", "exporting")
EXIT_OK, EXIT_FAILED, EXIT_CANCELLED = 0, 2, 3


class JobFolder:
    """One job's folder and its files; plain paths plus the few reads and writes both sides make."""

    CONFIG = "config.json"
    LOG = "log.txt"
    METRICS = "metrics.jsonl"
    PHASE = "phase"
    HEARTBEAT = "heartbeat"
    CANCEL = "cancel"
    RESULT = "result.json"
    CHECKPOINTS = "checkpoints"
    CACHE = "cache"
    # What one run of the worker leaves behind; cleared before the next run (a resume) starts.
    RUN_FILES = (CANCEL, RESULT, PHASE, HEARTBEAT)

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"JobFolder({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def log(self) -> Path:
        return self.path / self.LOG

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS

    @property
    def phase(self) -> Path:
        return self.path / self.PHASE

    @property
    def heartbeat(self) -> Path:
        return self.path / self.HEARTBEAT

    @property
    def cancel(self) -> Path:
        return self.path / self.CANCEL

    @property
    def result(self) -> Path:
        return self.path / self.RESULT

    @property
    def checkpoints(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def cache(self) -> Path:
        return self.path / self.CACHE

    def write_atomic(self, file: Path, text: str) -> None:
        """Write `text` to `file` (one of this folder's) through a temporary file, so a reader never sees half."""
        tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, file)

    def clear_run_files(self) -> None:
        """Remove what the previous run of the worker left (:attr:`RUN_FILES`)."""
        for name in self.RUN_FILES:
            (self.path / name).unlink(missing_ok=True)

    def request_cancel(self) -> None:
        """Ask the worker to stop (the file's time is when it was asked)."""
        self.cancel.write_text(str(time.time()), encoding="utf-8")

    def cancel_requested(self) -> bool:
        """Whether the app has asked the worker to stop."""
        return self.cancel.exists()

    def write_result(self, status: str, model_dir: str | None = None, error: str | None = None,
                     final: dict | None = None) -> None:
        """``result.json``: {"status": succeeded|failed|cancelled, "model_dir", "error", "final"} (the worker, last)."""
        self.write_atomic(self.result, json.dumps(
            {"status": status, "model_dir": model_dir, "error": error, "final": final or {}},
            ensure_ascii=False, indent=2) + "\n")

    def write_phase(self, name: str) -> None:
        """``phase``: what the worker does now (one of :data:`PHASES`), for the page to show before step 1.

        Raises:
            ValueError: for a name not in :data:`PHASES`. A write that fails is ignored: the file is cosmetic,
                never a reason to fail a job.
        """
        if name not in PHASES:
            raise ValueError(f"unknown phase {name!r}")
        try:
            self.write_atomic(self.phase, name + "\n")
        except OSError:
            pass

    def read_result(self) -> dict | None:
        """``result.json`` as written by the worker, or None while there is none (or half of one)."""
        try:
            return json.loads(self.result.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # none yet, or half written
            return None

    def age(self, file: Path) -> float | None:
        """Seconds since `file` was last written, or None when it does not exist."""
        try:
            return time.time() - file.stat().st_mtime
        except OSError:
            return None
