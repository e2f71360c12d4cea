"""Opening the database: PRAGMAs, migrations and write transactions that take the lock up front."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def connect(path: str | Path) -> Database:
    """Open (creating if needed) the studio database at `path`, migrated to the current schema.

    WAL lets annotators read while one of them writes; ``synchronous=FULL`` makes a committed rating survive a
    power cut, not only a process kill; ``busy_timeout`` makes concurrent writers wait instead of failing.
    The connection may be used from any thread, one at a time (Gradio runs handlers in a thread pool).
    """
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    db = Database(conn)
    key = str(Path(path).resolve())
    if key not in _migrated:
        with _migrate_lock:
            from studio.store.schema import migrate

            migrate(db)
            _migrated.add(key)
    return db


@contextmanager
def opened(path: str | Path) -> Iterator[Database]:
    """``with opened(path) as db:`` — connect, and close when done."""
    db = connect(path)
    try:
        yield db
    finally:
        db.close()


@contextmanager
def immediate(db: Database) -> Iterator[Database]:
    """A write transaction that takes SQLite's write lock at BEGIN.

    Read-then-write logic (assignment, the two-raters check) must not start as a deferred read: two
    connections could both read "one slot left" and then both write. ``BEGIN IMMEDIATE`` serialises them.
    Nested use falls back to sqlite-utils' savepoints.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.conn.rollback()
        raise
    else:
        db.conn.execute("COMMIT")
