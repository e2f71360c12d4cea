"""Start, watch, cancel and resume training jobs; the worker runs in its own process group.

The job's truth is split on purpose: the jobs row says what the app decided (queued, started, ended) and the job
folder says what the worker did (heartbeat, metrics, result.json). :func:`refresh` reconciles the two, so a page
reload or an app restart re-attaches to a running worker and notices one that died.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlite_utils import Database

from studio import config as cfg
from studio.errors import StudioError
from studio.store import jobs as store_jobs
from studio.store.connection import immediate
from studio.training.config import EXIT_CANCELLED, EXIT_OK, TrainConfig, check_base

# A job's error when its worker vanished without a result (the UI shows it in the user's language: train.worker_died).
WORKER_DIED = ("the training process stopped without finishing (killed, out of memory, or the machine restarted); "
               "resume continues from the last checkpoint")
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
    room. What the worker would refuse (settings, training file, base model) raises StudioError / InputError before
    anything is written, and the row and the folder are made together: a failure leaves neither."""
    config.name = check_name(config.name)
    config.validate()
    models_dir = Path(models_dir or cfg.MODELS_DIR)
    config.base = check_base(config.base, models_dir)
    config.output_dir = str((models_dir / config.name).resolve())
    if Path(config.output_dir).exists():
        raise StudioError("model_exists", name=config.name)
    config.train = str(Path(config.train).resolve())
    if config.valid:
        config.valid = str(Path(config.valid).resolve())
    return _record(db, config, Path(jobs_dir or cfg.JOBS_DIR), created_by)


def _record(db: Database, config: TrainConfig, jobs_dir: Path, created_by: str) -> int:
    """Insert the job row and make its folder in one transaction: the row is rolled back if the folder fails, and the
    folder removed if the row does."""
    job_dir = None
    try:
        with immediate(db):
            job_id = store_jobs.create_job(db, name=config.name, task=config.task, job_dir="",
                                           output_dir=config.output_dir, created_by=created_by)
            job_dir = new_job_dir(jobs_dir, job_id, config.name)
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
    for stale in ("cancel", "result.json"):
        (job_dir / stale).unlink(missing_ok=True)
    log = open(job_dir / "log.txt", "ab")
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


def _alive(job: dict) -> bool:
    proc = _children.get(job["id"])
    if proc is not None:
        return proc.poll() is None
    pid = job["pid"]
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    beat = Path(job["job_dir"]) / "heartbeat"
    # A live pid with a stale heartbeat is another process that reused the number, or a hung worker.
    return beat.exists() and time.time() - beat.stat().st_mtime < cfg.HEARTBEAT_TIMEOUT_SECONDS


def read_result(job_dir: str | Path) -> dict | None:
    path = Path(job_dir) / "result.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def refresh(db: Database, job_id: int, *, cancelling: bool = False) -> dict:
    """Bring a running job's row up to date with its worker; returns the row. `cancelling`: the app stopped the
    worker, so a worker that died (killed after the grace period) ended by cancellation, not failure."""
    job = store_jobs.get_job(db, job_id)
    if job["status"] != "running" or _alive(job):
        return job
    proc = _children.pop(job_id, None)
    code = proc.returncode if proc is not None else None
    result = read_result(job["job_dir"])
    if result and result.get("status") in ("succeeded", "failed", "cancelled"):
        status, error = result["status"], result.get("error")
        code = code if code is not None else {"succeeded": EXIT_OK, "cancelled": EXIT_CANCELLED}.get(status, 2)
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


def cancel(db: Database, job_id: int, *, grace_seconds: float = 20.0, actor: str = "system") -> dict:
    """Ask a job to stop after its current step (keeping its last checkpoint); kill its process group if it does
    not stop within `grace_seconds`. A queued job is cancelled at once."""
    job = store_jobs.get_job(db, job_id)
    if job["status"] not in ("queued", "running"):
        return job
    store_jobs.request_cancel(db, job_id, job["status"], actor=actor)
    if job["status"] == "queued":
        store_jobs.mark_ended(db, job_id, "cancelled", actor=actor)
        return store_jobs.get_job(db, job_id)
    (Path(job["job_dir"]) / "cancel").write_text(str(time.time()), encoding="utf-8")
    deadline = time.time() + grace_seconds
    while time.time() < deadline and _alive(job):
        time.sleep(0.25)
    if _alive(job):
        try:
            os.killpg(job["pid"], signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        proc = _children.get(job_id)
        if proc is not None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(job["pid"], signal.SIGKILL)
                proc.wait()
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
    config.resume = True
    config.save(job_dir)
    result = job_dir / "result.json"
    if result.exists():
        shutil.move(result, job_dir / f"result.{int(time.time())}.json")
    store_jobs.mark_queued(db, job_id, actor=actor)
    return store_jobs.get_job(db, job_id)


def checkpoints(job_dir: str | Path) -> list[Path]:
    """The job's checkpoints, oldest first."""
    folder = Path(job_dir) / "checkpoints"
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def log_tail(job_dir: str | Path, lines: int = 40) -> str:
    """The last lines of the worker's log (progress bars' carriage returns folded)."""
    path = Path(job_dir) / "log.txt"
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 64_000))
        text = f.read().decode("utf-8", errors="replace")
    rows = [row.split("\r")[-1] for row in text.splitlines()]
    return "\n".join(rows[-lines:])
