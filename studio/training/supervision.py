"""The worker's side of being supervised: the heartbeat it keeps, and the requests to stop it heeds.

:class:`Heartbeat` rewrites ``JOB_DIR/heartbeat`` every few seconds (the app takes a stale one for a dead worker);
:class:`StopRequest` turns SIGTERM or the app's ``JOB_DIR/cancel`` file into a stop: at once before training has
begun (:class:`~studio.training.failures.Cancelled`), after the current optimizer step and its checkpoint during
it (the training callback reads the request).
"""

from __future__ import annotations

import _thread
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from studio.training.failures import Cancelled
from studio.training.job_folder import JobFolder

HEARTBEAT_SECONDS = 2.0


class StopRequest:
    """A request to stop the job: SIGTERM, or the app's cancel file in the job folder.

    Before :meth:`begin_training` the main thread is interrupted at once (:class:`Cancelled`): loading a model can
    take a minute and there is nothing to save. From then on the request is only noted; the training callback
    stops after the current optimizer step and saves a checkpoint there. Calling the object says whether a stop
    was asked for.
    """

    def __init__(self, job_dir: Path):
        self.cancel_path = JobFolder(job_dir).cancel
        self.requested = self.training = False
        self._interrupting = False
        self._previous = None

    def __call__(self) -> bool:
        return self.requested or self.cancel_path.exists()

    def install(self) -> "StopRequest":
        """Handle SIGTERM (only the main thread may; elsewhere the cancel file alone is watched)."""
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_signal)
        return self

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _on_signal(self, signum, frame) -> None:
        if not self.requested:
            self.requested = True
            print("stop requested: " + ("stopping after the current step, with a checkpoint" if self.training
                                        else "training has not begun, stopping now"), flush=True)
        if not self.training:
            raise Cancelled()

    def watch_file(self) -> None:
        """From the heartbeat thread: turn the app's cancel file into a request (SIGTERM's path in the main
        thread before training, a flag the callback reads during it)."""
        if self.requested or not self.cancel_path.exists():
            return
        if self.training or self._previous is None:
            self.requested = True
        elif not self._interrupting:
            self._interrupting = True
            _thread.interrupt_main(signal.SIGTERM)  # runs _on_signal in the main thread

    def checkpoint(self) -> None:
        """Between loading stages: stop now if asked to (covers a cancel file the heartbeat has not seen yet)."""
        if not self.training and self():
            self.requested = True
            raise Cancelled()

    def begin_training(self) -> None:
        """From now on a request stops training after the current step, with a checkpoint."""
        self.checkpoint()
        self.training = True


class Heartbeat:
    """Rewrites ``JOB_DIR/heartbeat`` with "<pid> <unix time>" every few seconds from a daemon thread, and calls
    `on_beat` (the cancel file watch) each time."""

    def __init__(self, job_dir: Path, every: float = HEARTBEAT_SECONDS, on_beat: Callable[[], None] | None = None):
        self.folder = JobFolder(job_dir)
        self.path = self.folder.heartbeat
        self.every = every
        self.on_beat = on_beat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="studio-heartbeat", daemon=True)

    def beat(self) -> None:
        try:
            self.folder.write_atomic(self.path, f"{os.getpid()} {int(time.time())}\n")
        except OSError:
            pass  # a full disk must not kill training; the app sees a stale heartbeat

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.beat()
            if self.on_beat is not None:
                self.on_beat()

    def start(self) -> "Heartbeat":
        self.beat()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.beat()
