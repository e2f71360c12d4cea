"""Backups (①): a consistent, verified copy of the database, made while people rate; and the app's backup timer.

Making a backup is an admin's: the copy holds every rating, every note and the accounts' password hashes. The CLI
names the file (``studio backup OUT.db``); the page makes one in the project's private backups/ folder and offers
it to download. Restoring is a copy with the app stopped (README, "Backups").
"""

from __future__ import annotations

import threading
from pathlib import Path

from studio import backups
from studio.actions.base import Actor, Project, action, audit
from studio.store.backup import BackupInfo, backup


@action("admin", cli="backup")
def make_backup(project: Project, actor: Actor, /, out: str | Path | None = None, *,
                overwrite: bool = False) -> BackupInfo:
    """Back the project's database up into `out` (the CLI's file), or, without `out`, into a new timestamped file
    in backups/ (the page's button); audited as the actor with what the copy holds.

    Raises:
        StudioError: ``no_database``, ``backup_is_live``, ``backup_exists``, ``backup_failed``
            (:func:`studio.store.backup.backup`).
    """
    if out is None:
        info = backups.make_backup(project.db_path)
    else:
        info = backup(project.db_path, out, overwrite=overwrite)
    audit(project, actor, "backup", entity="database",
          after={"file": info.path.name, "bytes": info.bytes, "ratings": info.ratings, "integrity": info.integrity})
    return info


def start_schedule(db_path: str | Path, every_hours: float, keep: int) -> threading.Thread:
    """The app's backup timer (``--backup-every HOURS --backup-keep N``), not a person's action: a timestamped
    backup in backups/ every `every_hours`, the newest `keep` kept (:func:`studio.backups.start_backups`)."""
    return backups.start_backups(db_path, every_hours, keep)
