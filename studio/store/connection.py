"""Opening the database: PRAGMAs, migrations and write transactions that take the lock up front."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from studio.private import FILE_MODE, private_file, tighten
from studio.store.schema import migrate

_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def connect(path: str | Path) -> Database:
    """Open (creating if needed) the studio database at `path`, migrated to the current schema.

    The file, its -wal/-shm and write lock are 0600 (:func:`_private`). WAL lets annotators read while one of them
    writes; ``synchronous=FULL`` makes a committed rating survive a power cut, not only a process kill;
    ``busy_timeout`` makes concurrent writers wait instead of failing.
    The connection may be used from any thread, one at a time (Gradio runs handlers in a thread pool).
    """
    if str(path) != ":memory:":
        _private(Path(path))
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    db = Database(conn)
    db.write_lock_path = f"{Path(path).resolve()}-writelock"  # see immediate()
    key = str(Path(path).resolve())
    if key not in _migrated:
        with _migrate_lock:
            migrate(db)
            _migrated.add(key)
    return db


def _private(path: Path) -> None:
    """The database file, its -wal/-shm and its write lock readable by this account only (0600): the file holds
    password hashes and every rating. Created so before SQLite opens it (SQLite gives -wal/-shm the database's
    mode); an existing one made 0644 by an older version is tightened."""
    private_file(path)
    for suffix in ("-wal", "-shm", "-writelock"):
        tighten(f"{path}{suffix}", FILE_MODE)


@contextmanager
def opened(path: str | Path) -> Iterator[Database]:
    """``with opened(path) as db:`` — connect, and close when done."""
    db = connect(path)
    try:
        yield db
    finally:
        db.close()


@contextmanager
def _writer_turn(db: Database) -> Iterator[None]:
    """Wait for this database's writer turn: an exclusive ``flock`` on ``<db>-writelock``.

    SQLite's own wait for the write lock polls with growing sleeps (1, 2, 5 … 100 ms) and is not first come, first
    served: under twenty writers some waited seconds (bench/annotate_store.py). The kernel wakes a flock waiter
    as soon as the lock is free, so writers take turns in microseconds. An in-memory database needs no turn.
    """
    path = getattr(db, "write_lock_path", None)
    if not path or path.startswith(":memory:"):
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _begin_immediate(db: Database, attempts: int = 3) -> None:
    """BEGIN IMMEDIATE, retried a bounded number of times: a writer outside the studio's turns (a script, the
    sqlite3 shell) can hold the lock past ``busy_timeout``; only then does "database is locked" reach the caller."""
    for attempt in range(attempts):
        try:
            db.conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


@contextmanager
def immediate(db: Database, *, durable: bool = True) -> Iterator[Database]:
    """A write transaction that takes SQLite's write lock at BEGIN, in this database's writer turn.

    Read-then-write logic (assignment, the two-raters check) must not start as a deferred read: two
    connections could both read "one slot left" and then both write. ``BEGIN IMMEDIATE`` serialises them.
    `durable=False` skips the fsync at commit (``synchronous=NORMAL``) for writes that may be lost in a power
    cut without harm — a reservation; the next durable commit makes it durable too. Nested use falls back to
    sqlite-utils' savepoints.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    with _writer_turn(db):
        if not durable:
            db.conn.execute("PRAGMA synchronous=NORMAL")
        try:
            _begin_immediate(db)
            try:
                yield db
            except BaseException:
                db.conn.rollback()
                raise
            else:
                db.conn.execute("COMMIT")
        finally:
            if not durable:
                db.conn.execute("PRAGMA synchronous=FULL")
