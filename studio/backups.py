"""Backups in a folder of their own: timestamped copies of the database, the newest few kept, and the app's timer.

Each copy is :func:`studio.store.backup.backup` (consistent while people rate, verified, 0600) written as
``backups/annotations-YYYYmmdd-HHMMSS.db`` in a 0700 folder. ``studio serve --backup-every HOURS --backup-keep N``
makes one every HOURS and keeps the newest N; the ① Import tab's admin button makes one to download.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from studio.private import private_dir
from studio.store.backup import BackupInfo, backup

BACKUPS_DIR = Path(os.environ.get("STUDIO_BACKUPS", "backups"))  # beside exports/ and jobs/: the project's folder


def make_backup(db_path: str | Path, folder: str | Path | None = None, *, keep: int | None = None) -> BackupInfo:
    """A new timestamped backup of `db_path` in `folder` (default :data:`BACKUPS_DIR`); with `keep`, only the
    newest `keep` backups of this database stay in the folder afterwards."""
    folder = private_dir(Path(folder) if folder is not None else BACKUPS_DIR)
    stem, stamp = Path(db_path).stem, time.strftime("%Y%m%d-%H%M%S")
    # More than one in the same second (a button pressed twice): -2, -3 … after the newest of that second, so
    # names keep their order even after older ones were pruned.
    same = [_order(p, stem)[2] for p in backups_of(folder, stem) if _order(p, stem)[:2] == tuple(stamp.split("-"))]
    out = folder / (f"{stem}-{stamp}-{max(same) + 1}.db" if same else f"{stem}-{stamp}.db")
    info = backup(db_path, out)
    if keep is not None:
        prune(folder, stem, keep)
    return info


def backups_of(folder: str | Path, stem: str) -> list[Path]:
    """This database's backups in `folder` (``STEM-YYYYmmdd-HHMMSS[-N].db``), newest first by the time in their
    names; other files are not backups and are never touched."""
    folder = Path(folder)
    found = [(_order(p, stem), p) for p in (folder.glob(f"{stem}-*.db") if folder.is_dir() else []) if p.is_file()]
    return [path for _, path in sorted(((o, p) for o, p in found if o is not None), reverse=True)]


def _order(path: Path, stem: str) -> tuple[str, str, int] | None:
    """(date, time, number) of a backup's name ``STEM-YYYYmmdd-HHMMSS[-N].db``; None for any other name."""
    parts = path.name[len(stem) + 1:-len(".db")].split("-")
    if (len(parts) in (2, 3) and all(p.isdigit() for p in parts) and len(parts[0]) == 8 and len(parts[1]) == 6):
        return parts[0], parts[1], int(parts[2]) if len(parts) == 3 else 1
    return None


def prune(folder: str | Path, stem: str, keep: int) -> list[Path]:
    """Delete all but the newest `keep` (at least 1) backups of database `stem` in `folder`; returns the deleted."""
    old = backups_of(folder, stem)[max(int(keep), 1):]
    for path in old:
        path.unlink(missing_ok=True)
    return old


def start_backups(db_path: str | Path, every_hours: float, keep: int, folder: str | Path | None = None,
                  *, log=None) -> threading.Thread:
    """A daemon thread that backs `db_path` up every `every_hours` hours (the first one after `every_hours`) and
    keeps the newest `keep`; a failed backup is reported on stderr (`log`) and tried again at the next turn."""
    if every_hours <= 0:
        raise ValueError("every_hours must be above 0")
    say = log or (lambda text: print(text, file=sys.stderr, flush=True))

    def loop() -> None:
        while True:
            time.sleep(every_hours * 3600)
            try:
                info = make_backup(db_path, folder, keep=keep)
                say(f"backup: {info.path.name}, {info.ratings} ratings, integrity {info.integrity}")
            except Exception as exc:  # keep going: a full disk today may be free tomorrow
                say(f"backup failed: {exc}")

    thread = threading.Thread(target=loop, name="backups", daemon=True)
    thread.start()
    return thread
