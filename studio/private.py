"""Files only this account may read: the database (password hashes, every rating), its WAL/SHM and write lock,
exports, recipes, job folders and backups.

Two layers. The entry points (the ``studio`` CLI group, and so ``python studio.py`` and the training workers it
starts) set the process umask to :data:`UMASK`, so everything the studio creates is 0600 (files) / 0700 (folders)
without each writer having to remember. The database and its companions are also set explicitly here, because a
script or a test may open the store without going through the CLI, and because a database made by an older
version (0644) should be tightened the next time the studio opens it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

UMASK = 0o077  # group and others get nothing
FILE_MODE = 0o600
DIR_MODE = 0o700


def private_file(path: str | Path) -> Path:
    """Create `path` (empty) as 0600 if it is not there, or take group and other access away if it is.

    A file this account does not own (a shared, read-only copy) is left as it is: tightening it is its owner's call.
    Nothing happens when the folder is missing.
    """
    path = Path(path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        if path.is_file():
            tighten(path, FILE_MODE)
    except (FileNotFoundError, NotADirectoryError):
        pass  # no such folder: whoever opens the file reports that, in their own words
    return path


def private_dir(path: str | Path) -> Path:
    """Create the folder `path` (and its parents) if needed; `path` itself is made 0700."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    tighten(path, DIR_MODE)
    return path


def tighten(path: str | Path, mode: int) -> None:
    """Give `path` at most `mode` (group/other bits removed), when it exists and this account may change it."""
    try:
        current = stat.S_IMODE(os.stat(path).st_mode)
        if current & ~mode:
            os.chmod(path, current & mode)
    except (FileNotFoundError, PermissionError):
        pass


def is_private(path: str | Path) -> bool:
    """Whether neither group nor others may read, write or enter `path`."""
    return stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0
