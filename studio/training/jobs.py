"""Start, watch, cancel and resume training jobs; the worker runs in its own process group.

The job's truth is split on purpose: the jobs row says what the app decided (queued, started, ended) and the job
folder says what the worker did (heartbeat, phase, metrics, checkpoints, result.json). :func:`refresh` reconciles
the two, so a page reload or an app restart re-attaches to a running worker and notices one that died.

Cancelling asks (the ``cancel`` file) and never kills a worker that is alive and heartbeating: it finishes its
step, saves a checkpoint and exits, however long that step takes. Only a worker whose heartbeat has gone stale
(frozen, or stopped without exiting) is stopped by force, and only one this process started.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database

from studio import config as cfg
from studio.errors import StudioError
from studio.store import jobs as store_jobs
from studio.store.connection import immediate
from studio.training import preflight
from studio.training.base_model import check_base
from studio.training.checkpoints import resume_step
from studio.training.config import TrainConfig
from studio.training.job_folder import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, PHASES, JobFolder

# A job's error when its worker vanished without a result (the UI shows it in the user's language: train.worker_died,
# with the step its resume continues from, read from the checkpoints on disk).
WORKER_DIED = ("the training process stopped without finishing (killed, out of memory, or the machine restarted); "
               "resume continues from its newest checkpoint, or from step 1 without one")
WORKER_DIED_PREFIX = "the training process stopped without finishing"  # rows written before the wording changed
_children: dict[int, subprocess.Popen] = {}  # workers this process started (so they can be reaped)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_name(name: str) -> str:
    """A model name is a plain folder name: letters, digits, '.', '_' and '-'."""
    name = (name or "").strip()
    if not _NAME.match(name) or ".." in name:
        raise StudioError("bad_model_name", name=name)
    return name


def create(db: Database, config: TrainConfig, *, jobs_dir: Path | None = None, models_dir: Path | None = None,
           created_by: str = "") -> int:
    """Check the job, then record it and write its folder and config.json; it starts when :func:`start_queued` finds
    room. What the worker would refuse (settings, training file, base model), a folder it could not write (the jobs
    folder, models/) and a disk too small for its checkpoints and model (preflight) raise StudioError / InputError
    before anything is written, and the row and the folder are made together: a failure leaves neither."""
    config.name = check_name(config.name)
    config.validate()
    models_dir = Path(models_dir or cfg.MODELS_DIR)
    jobs_dir = Path(jobs_dir or cfg.JOBS_DIR)
    config.base = check_base(config.base, models_dir)
    config.output_dir = str((models_dir / config.name).resolve())
    if Path(config.output_dir).exists():
        raise StudioError("model_exists", name=config.name)
    config.train = str(Path(config.train).resolve())
    if config.valid:
        config.valid = str(Path(config.valid).resolve())
    check_writable(jobs_dir, models_dir)
    preflight.check_disk(config, jobs_dir, models_dir)
    return _record(db, config, jobs_dir, created_by)


def check_writable(jobs_dir: Path, models_dir: Path) -> None:
    """Refuse a job whose folder or model could not be written, naming the folder (nothing is left behind)."""
    preflight.check_writable(jobs_dir, "job_folder_failed")
    preflight.check_writable(models_dir, "models_folder_unwritable")


def _record(db: Database, config: TrainConfig, jobs_dir: Path, created_by: str) -> int:
    """Insert the job row and make its folder in one transaction: the row is rolled back if the folder fails, and the
    folder removed if the row does."""
    job_dir = None
    try:
        with immediate(db):
            job_id = store_jobs.create_job(db, name=config.name, task=config.task, job_dir="",
                                           output_dir=config.output_dir, created_by=created_by)
            job_dir = new_job_dir(jobs_dir, job_id, config.name)
            JobFolder(job_dir).checkpoints.mkdir()
            config.save(job_dir)
            store_jobs.set_job_dir(db, job_id, str(job_dir))
    except OSError as exc:
        _discard(job_dir)
        raise StudioError("job_folder_failed", path=str(job_dir or jobs_dir), detail=exc.strerror or str(exc)) from exc
    except BaseException:
        _discard(job_dir)
        raise
    return job_id


def _discard(job_dir: Path | None) -> None:
    if job_dir is not None:
        shutil.rmtree(job_dir, ignore_errors=True)


def new_job_dir(jobs_dir: Path, job_id: int, name: str) -> Path:
    """Make and return ``<id:05d>-<name>`` under `jobs_dir`, or ``-2``, ``-3``... after it when that folder exists: a
    job of another database using the same jobs folder (ids start at 1 in each), or one left by a deleted database."""
    jobs_dir.mkdir(parents=True, exist_ok=True)
    stem, n = f"{job_id:05d}-{name}", 1
    while True:
        folder = (jobs_dir / (stem if n == 1 else f"{stem}-{n}")).resolve()
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            n += 1


def command(job_dir: str | Path, gpus: int = 1) -> list[str]:
    """The worker's command line; several GPUs run the same worker under torchrun."""
    if gpus > 1:
        return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={gpus}", "-m",
                "studio.training.worker", str(job_dir)]
    return [sys.executable, "-m", "studio.training.worker", str(job_dir)]


def launch(db: Database, job_id: int, gpus: int = 1) -> subprocess.Popen:
    """Start the worker of a job now, detached from this process (it survives an app restart)."""
    job = store_jobs.get_job(db, job_id)
    job_dir = Path(job["job_dir"])
    folder = JobFolder(job_dir)
    folder.clear_run_files()
    log = open(folder.log, "ab")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    proc = subprocess.Popen(command(job_dir, gpus), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            cwd=cfg.PROJECT_ROOT, env=env, start_new_session=True)
    log.close()
    _children[job_id] = proc
    store_jobs.mark_running(db, job_id, proc.pid)
    return proc


def start_queued(db: Database, max_running: int | None = None) -> list[int]:
    """Start queued jobs, oldest first, while fewer than `max_running` are running. Returns the started ids."""
    limit = max_running or cfg.MAX_RUNNING_JOBS
    refresh_all(db)
    running = len(store_jobs.list_jobs(db, "running"))
    started = []
    for job in sorted(store_jobs.list_jobs(db, "queued"), key=lambda j: j["id"]):
        if running >= limit:
            break
        launch(db, job["id"])
        started.append(job["id"])
        running += 1
    return started


def cancel_requested(job_dir: str | Path) -> bool:
    """Whether the app has asked this job's worker to stop (it is finishing its step, then saving)."""
    return JobFolder(job_dir).cancel_requested()


def read_phase(job_dir: str | Path) -> str | None:
    """What the worker says it is doing (job_folder.PHASES: loading_model, reading_data, training...), or None."""
    try:
        phase = JobFolder(job_dir).phase.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return phase if phase in PHASES else None


def _stale(job_dir: Path) -> bool:
    """No heartbeat for HEARTBEAT_TIMEOUT_SECONDS: the worker is dead, frozen, or never got going."""
    folder = JobFolder(job_dir)
    age = folder.age(folder.heartbeat)
    if age is None:  # never beat: judged from when it was asked to stop
        age = folder.age(folder.cancel)
    return age is not None and age > cfg.HEARTBEAT_TIMEOUT_SECONDS


def _alive(job: dict) -> bool:
    job_dir = Path(job["job_dir"])
    proc = _children.get(job["id"])
    if proc is not None:
        if proc.poll() is not None:
            return False
        if cancel_requested(job_dir) and _stale(job_dir):
            kill(proc)  # asked to stop, and silent past the timeout: it will not save anything any more
            return False
        return True
    pid = job["pid"]
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    # A live pid with a stale heartbeat is another process that reused the number, or a hung worker.
    age = JobFolder(job_dir).age(JobFolder(job_dir).heartbeat)
    return age is not None and age < cfg.HEARTBEAT_TIMEOUT_SECONDS


def kill(proc: subprocess.Popen) -> None:
    """Stop a worker this process started, and everything it started, by force."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def read_result(job_dir: str | Path) -> dict | None:
    return JobFolder(job_dir).read_result()


def refresh(db: Database, job_id: int, *, cancelling: bool = False) -> dict:
    """Bring a running job's row up to date with its worker; returns the row. A worker that ended without a result
    after being asked to stop (or with `cancelling`) ended by cancellation, not failure: its resume continues from
    whatever checkpoint it left (:func:`studio.training.checkpoints.resume_step`)."""
    job = store_jobs.get_job(db, job_id)
    if job["status"] != "running" or _alive(job):
        return job
    cancelling = cancelling or cancel_requested(job["job_dir"])
    proc = _children.pop(job_id, None)
    code = proc.returncode if proc is not None else None
    result = read_result(job["job_dir"])
    if result and result.get("status") in ("succeeded", "failed", "cancelled"):
        status, error = result["status"], result.get("error")
        ended = {"succeeded": EXIT_OK, "cancelled": EXIT_CANCELLED}
        code = code if code is not None else ended.get(status, EXIT_FAILED)
    else:
        status = "failed"
        error = WORKER_DIED
    if cancelling and status == "failed":  # killed by us: that is a cancellation, not a failure
        status, error = "cancelled", None if error == WORKER_DIED else error
    store_jobs.mark_ended(db, job_id, status, exit_code=code, error=error)
    return store_jobs.get_job(db, job_id)


def refresh_all(db: Database) -> None:
    """Refresh every running job (call at start-up: re-attaches to live workers, marks dead ones failed)."""
    for job in store_jobs.list_jobs(db, "running"):
        refresh(db, job["id"])


def cancel(db: Database, job_id: int, *, wait: bool = True, actor: str = "system",
           on_wait: Callable[[float], None] | None = None, poll_seconds: float = 0.25) -> dict:
    """Ask a job to stop; returns its row. A queued job is cancelled at once. A running one finishes its current
    optimizer step, saves a checkpoint there and exits: with `wait`, this waits for that as long as the worker is
    alive and heartbeating (a step can take minutes on a busy CPU), calling `on_wait` with the seconds waited about
    once a second; without, it returns at once, the job still running (its end shows in the next refresh). A
    worker that stops heartbeating is stopped by force (config.HEARTBEAT_TIMEOUT_SECONDS)."""
    job = store_jobs.get_job(db, job_id)
    if job["status"] not in ("queued", "running"):
        return job
    store_jobs.request_cancel(db, job_id, job["status"], actor=actor)
    if job["status"] == "queued":
        store_jobs.mark_ended(db, job_id, "cancelled", actor=actor)
        return store_jobs.get_job(db, job_id)
    JobFolder(job["job_dir"]).request_cancel()
    if not wait:
        return refresh(db, job_id)
    started = reported = time.time()
    while _alive(job):
        if on_wait is not None and time.time() - reported >= 1:
            reported = time.time()
            on_wait(reported - started)
        time.sleep(poll_seconds)
    return refresh(db, job_id, cancelling=True)


def resume(db: Database, job_id: int, *, actor: str = "system") -> dict:
    """Queue a failed or cancelled job again; its worker continues from the newest checkpoint."""
    job = store_jobs.get_job(db, job_id)
    if job["status"] not in ("failed", "cancelled"):
        raise StudioError("job_not_resumable", job_id=job_id, status=job["status"])
    job_dir = Path(job["job_dir"])
    config = TrainConfig.load(job_dir)
    config.validate()  # a job that cannot run (its training file gone, say) is refused, not queued to fail again
    check_base(config.base)
    if Path(config.output_dir).exists():  # another job or a copy took the name meanwhile: the export would fail
        raise StudioError("model_exists", name=config.name)
    preflight.check_writable(Path(config.output_dir).parent, "models_folder_unwritable")
    config.resume = True
    config.save(job_dir)
    result = JobFolder(job_dir).result
    if result.exists():
        shutil.move(result, result.with_name(f"{result.stem}.{int(time.time())}{result.suffix}"))
    store_jobs.mark_queued(db, job_id, actor=actor)
    return store_jobs.get_job(db, job_id)


def resume_point(job_dir: str | Path) -> int | None:
    """The step a resume of this job continues from (its newest complete checkpoint), None: from step 1."""
    return resume_step(job_dir)


def checkpoints(job_dir: str | Path) -> list[Path]:
    """The job's checkpoints, oldest first."""
    folder = JobFolder(job_dir).checkpoints
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def log_tail(job_dir: str | Path, lines: int = 40) -> str:
    """The last lines of the worker's log (progress bars' carriage returns folded)."""
    path = JobFolder(job_dir).log
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 64_000))
        text = f.read().decode("utf-8", errors="replace")
    rows = [row.split("\r")[-1] for row in text.splitlines()]
    return "\n".join(rows[-lines:])
