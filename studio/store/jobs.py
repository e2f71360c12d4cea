"""Training job records. The worker never writes here; the app records what it observes of the worker."""

from __future__ import annotations

from sqlite_utils import Database

from studio.errors import NotFoundError
from studio.store.audit import record
from studio.store.connection import immediate

_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


def create_job(db: Database, *, name: str, task: str, job_dir: str, output_dir: str, created_by: str = "") -> int:
    """Insert a queued job and return its id."""
    with immediate(db):
        job_id = db.execute(
            "INSERT INTO jobs (name, task, status, job_dir, output_dir, created_by) VALUES (?, ?, 'queued', ?, ?, ?)",
            [name, task, job_dir, output_dir, created_by]).lastrowid
        record(db, actor=created_by or "system", action="job.create", entity="job", entity_id=job_id,
               after={"name": name, "task": task})
    return job_id


def set_job_dir(db: Database, job_id: int, job_dir: str) -> None:
    """Record the folder made for a job (inside the caller's transaction, when there is one)."""
    with immediate(db):
        db.execute("UPDATE jobs SET job_dir = ? WHERE id = ?", [job_dir, job_id])


def get_job(db: Database, job_id: int) -> dict:
    rows = list(db.query("SELECT * FROM jobs WHERE id = ?", [job_id]))
    if not rows:
        raise NotFoundError("job_not_found", job_id=job_id)
    return rows[0]


def list_jobs(db: Database, status: str | None = None) -> list[dict]:
    """Newest first, optionally only one status."""
    if status:
        return list(db.query("SELECT * FROM jobs WHERE status = ? ORDER BY id DESC", [status]))
    return list(db.query("SELECT * FROM jobs ORDER BY id DESC"))


def mark_running(db: Database, job_id: int, pid: int) -> None:
    with immediate(db):
        db.execute(f"UPDATE jobs SET status = 'running', pid = ?, started_at = {_NOW}, ended_at = NULL, "
                   "exit_code = NULL, error = NULL WHERE id = ?", [pid, job_id])


def mark_queued(db: Database, job_id: int, *, actor: str = "system") -> None:
    """Queue an ended job again (resume), audited as ``job.resume`` by `actor`."""
    with immediate(db):
        before = get_job(db, job_id)["status"]
        db.execute("UPDATE jobs SET status = 'queued', pid = NULL, exit_code = NULL, error = NULL, ended_at = NULL "
                   "WHERE id = ?", [job_id])
        record(db, actor=actor, action="job.resume", entity="job", entity_id=job_id, before={"status": before},
               after={"status": "queued"})


def request_cancel(db: Database, job_id: int, status: str, *, actor: str) -> None:
    """Audit that `actor` asked a job in `status` to stop (its end is recorded once it has stopped)."""
    with immediate(db):
        record(db, actor=actor, action="job.cancel", entity="job", entity_id=job_id, before={"status": status})


def mark_ended(db: Database, job_id: int, status: str, *, exit_code: int | None = None, error: str | None = None,
               actor: str = "system") -> None:
    """Record the end of a job (succeeded, failed or cancelled), once."""
    with immediate(db):
        db.execute(f"UPDATE jobs SET status = ?, exit_code = ?, error = ?, ended_at = {_NOW} WHERE id = ?",
                   [status, exit_code, error, job_id])
        record(db, actor=actor, action=f"job.{status}", entity="job", entity_id=job_id,
               after={"exit_code": exit_code, "error": error})
