"""A consistent copy of the live database, taken while people rate: SQLite's online backup API.

``sqlite3.Connection.backup`` copies the pages of one read snapshot: in WAL mode writers go on meanwhile and the
copy holds exactly what was committed when it started. The copy is written under a temporary name beside its
destination (0600, like the database: it holds password hashes and every rating), switched to a self-contained
rollback journal (no -wal/-shm to carry along), checked with ``PRAGMA integrity_check`` and only then renamed into
place, so a half-written or corrupt file never carries a backup's name.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from studio.errors import StudioError
from studio.private import FILE_MODE, private_file


@dataclass(frozen=True)
class BackupInfo:
    """A written backup: where, how big, and what it holds (checked on the copy itself)."""

    path: Path
    bytes: int
    ratings: int
    pairs: int
    annotators: int
    integrity: str  # "ok": PRAGMA integrity_check found nothing wrong


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (one may not exist yet)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def backup(db_path: str | Path, out: str | Path, *, overwrite: bool = False) -> BackupInfo:
    """Copy the database at `db_path` into `out` while it is in use, verified; returns what the copy holds.

    Raises:
        StudioError: ``no_database`` (nothing at `db_path`), ``backup_is_live`` (`out` is the live database or
            its -wal/-shm/-writelock), ``backup_exists`` (`out` is there and `overwrite` is off),
            ``backup_failed`` (the copy could not be written, or ``integrity_check`` found it damaged: nothing is
            left at `out`).
    """
    db_path, out = Path(db_path), Path(out)
    if not db_path.is_file():
        raise StudioError("no_database", path=str(db_path))
    live = [db_path, *(Path(f"{db_path}{s}") for s in ("-wal", "-shm", "-writelock", "-journal"))]
    if any(same_file(out, p) for p in live):
        raise StudioError("backup_is_live", path=str(out))
    if out.exists() and not overwrite:
        raise StudioError("backup_exists", path=str(out))
    if out.is_dir():
        raise StudioError("backup_failed", path=str(out), error="it is a folder")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        private_file(tmp)
        source = sqlite3.connect(str(db_path), timeout=30)
        try:
            target = sqlite3.connect(str(tmp))
            try:
                source.backup(target)  # one step: one read snapshot, writers are not held up (WAL)
                target.execute("PRAGMA journal_mode=DELETE")
                info = _check(target, out)
            finally:
                target.close()
        finally:
            source.close()
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, out)
    except sqlite3.Error as exc:
        raise StudioError("backup_failed", path=str(out), error=str(exc)) from exc
    except OSError as exc:
        raise StudioError("backup_failed", path=str(out), error=exc.strerror or str(exc)) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return BackupInfo(out, out.stat().st_size, *info)


def _check(db: sqlite3.Connection, out: Path) -> tuple[int, int, int, str]:
    """(ratings, pairs, annotators, "ok") of a fresh copy; a copy that fails ``integrity_check`` is refused."""
    problems = [row[0] for row in db.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise StudioError("backup_failed", path=str(out), error="; ".join(problems[:3]))

    def count(table: str) -> int:
        try:
            return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        except sqlite3.OperationalError:  # a database made before the table existed
            return 0

    return count("ratings"), count("pairs"), count("annotators"), "ok"


def verify(path: str | Path) -> BackupInfo:
    """Open a backup file read-only and check it as :func:`backup` does (before restoring it, say).

    Raises:
        StudioError: ``no_database``; ``backup_failed`` when it is not a sound SQLite database.
    """
    path = Path(path)
    if not path.is_file():
        raise StudioError("no_database", path=str(path))
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            info = _check(db, path)
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise StudioError("backup_failed", path=str(path), error=str(exc)) from exc
    return BackupInfo(path, path.stat().st_size, *info)
