"""Backups: a consistent, verified, private copy of the database taken while people rate; refused over the live
database; kept N at a time on a timer; offered by ①'s admin button; and restored by copying the file back."""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from conftest import make_batch
from studio import backups
from studio.cli import cli
from studio.errors import StudioError
from studio.store import opened
from studio.store.annotators import ensure_annotator
from studio.store.backup import backup, verify
from studio.store.imports import import_batch
from studio.store.ratings import submit_rating

PAIRS = 300


def ratings_in(path: Path) -> set[tuple[int, int, int]]:
    """(pair, annotator, rating) of every rating in a database file, read with plain sqlite3."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return set(db.execute("SELECT pair_id, annotator_id, rating FROM ratings"))
    finally:
        db.close()


@pytest.fixture
def busy(db_path):
    """A project of 300 pairs and a rater in another thread rating them all, twice over, at a person's pace, until
    stopped."""
    with opened(db_path) as db:
        import_batch(db, make_batch(PAIRS))
        for name in ("w1", "w2"):
            ensure_annotator(db, name)
    stop, done = threading.Event(), []

    def rate() -> None:
        with opened(db_path) as db:
            for pair_id in range(1, PAIRS + 1):
                for name in ("w1", "w2"):
                    if stop.is_set():
                        return
                    submit_rating(db, name, pair_id, pair_id % 3)
                    done.append(pair_id)
                    # a person's pace (all 600 ratings take at least 6 s), so the rater is still rating while the
                    # backups run however fast the machine rates
                    stop.wait(0.01)

    thread = threading.Thread(target=rate)
    thread.start()
    deadline = time.time() + 30
    while len(done) < 20 and time.time() < deadline:  # rating is under way before the first backup
        time.sleep(0.01)
    yield SimpleNamespace(db_path=db_path, done=done, thread=thread)
    stop.set()
    thread.join(30)


def test_a_backup_taken_while_people_rate_is_sound_and_holds_every_earlier_rating(busy, tmp_path):
    copies = []
    for n in range(3):
        committed = ratings_in(busy.db_path)  # every rating committed before this backup starts
        info = backup(busy.db_path, tmp_path / f"copy{n}.db")
        copies.append((committed, info))
        time.sleep(0.05)
    assert busy.thread.is_alive(), "the rater was still rating after the last backup: they ran side by side"
    for committed, info in copies:
        held = ratings_in(info.path)
        assert committed <= held, "a rating committed before the backup started is missing from it"
        assert info.ratings == len(held) and info.integrity == "ok"
        db = sqlite3.connect(info.path)
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",), "one self-contained file"
        db.close()
        assert stat.S_IMODE(info.path.stat().st_mode) == 0o600, "it holds password hashes and every rating"
    assert copies[0][1].ratings < copies[-1][1].ratings, "later backups see later ratings"
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left behind"


def test_the_live_database_is_never_overwritten_and_an_existing_file_only_on_request(db_path, tmp_path):
    with opened(db_path) as db:
        import_batch(db, make_batch(3))
    before = db_path.read_bytes()
    for target in (db_path, Path(f"{db_path}-wal"), tmp_path / "." / db_path.name):
        with pytest.raises(StudioError) as refused:
            backup(db_path, target, overwrite=True)
        assert refused.value.code == "backup_is_live"
    assert db_path.read_bytes() == before
    out = tmp_path / "copy.db"
    out.write_text("an older file")
    with pytest.raises(StudioError) as exists:
        backup(db_path, out)
    assert exists.value.code == "backup_exists" and out.read_text() == "an older file"
    assert backup(db_path, out, overwrite=True).pairs == 3
    with pytest.raises(StudioError) as missing:
        backup(tmp_path / "none.db", tmp_path / "x.db")
    assert missing.value.code == "no_database" and not (tmp_path / "x.db").exists()


def test_a_damaged_file_fails_verification(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    with pytest.raises(StudioError) as failed:
        verify(bad)
    assert failed.value.code == "backup_failed"


def test_restoring_a_backup_by_copying_it_back_brings_its_ratings_back(demo, tmp_path):
    """The README's restore: stop the app, copy the backup over annotations.db, delete -wal/-shm, start again."""
    live = demo.db_path
    saved = backup(live, tmp_path / "backup.db")
    expected = ratings_in(saved.path)
    with opened(live) as db:  # after the backup: a rating that the restore takes back
        ensure_annotator(db, "late")
        open_pair = next(db.query("SELECT p.id FROM pairs p LEFT JOIN ratings r ON r.pair_id = p.id "
                                  "GROUP BY p.id HAVING count(r.id) < 2 ORDER BY p.id LIMIT 1"))["id"]
        submit_rating(db, "late", open_pair, 2)
    assert ratings_in(live) != expected
    shutil.copyfile(saved.path, live)
    for suffix in ("-wal", "-shm"):
        Path(f"{live}{suffix}").unlink(missing_ok=True)
    result = CliRunner().invoke(cli, ["--db", str(live), "annotators", "--json"], catch_exceptions=False)
    assert result.exit_code == 0
    people = {p["name"]: p["ratings"] for p in json.loads(result.stdout)}
    assert "late" not in people and sum(people.values()) == saved.ratings == len(expected)
    assert ratings_in(live) == expected
    assert stat.S_IMODE(live.stat().st_mode) == 0o600


def test_the_cli_writes_a_verified_backup_and_refuses_the_live_database(demo, tmp_path):
    out = tmp_path / "b" / "annotations-backup.db"
    result = CliRunner().invoke(cli, ["--db", str(demo.db_path), "backup", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"backup written to {out}" in result.output and "integrity ok" in result.output
    assert verify(out).ratings == len(ratings_in(demo.db_path))
    again = CliRunner().invoke(cli, ["--db", str(demo.db_path), "backup", str(out)])
    assert again.exit_code == 1 and "already exists" in again.output
    forced = CliRunner().invoke(cli, ["--db", str(demo.db_path), "backup", str(out), "--force", "--json"])
    assert json.loads(forced.stdout)["integrity"] == "ok"
    live = CliRunner().invoke(cli, ["--db", str(demo.db_path), "backup", str(demo.db_path), "--force"])
    assert live.exit_code == 1 and "is the live database" in live.output
    none = CliRunner().invoke(cli, ["--db", str(tmp_path / "none.db"), "backup", str(tmp_path / "x.db")])
    assert none.exit_code == 1 and "no database at" in none.output and not (tmp_path / "none.db").exists()


def test_timed_backups_keep_the_newest_n_in_a_private_folder(demo, tmp_path):
    folder = tmp_path / "backups"
    made = []
    folder.mkdir()
    other = folder / f"{demo.db_path.stem}-notes.db"
    other.write_text("not a backup: never deleted")
    for _ in range(4):  # within a second or two: the names tell them apart and in order
        made.append(backups.make_backup(demo.db_path, folder, keep=2).path)
    kept = backups.backups_of(folder, demo.db_path.stem)
    assert kept == [made[3], made[2]] and len({p.name for p in made}) == 4
    assert other.exists()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    lines = []
    backups.start_backups(demo.db_path, 0.3 / 3600, 2, folder, log=lines.append)  # every 0.3 s
    deadline = time.time() + 20
    while not lines and time.time() < deadline:
        time.sleep(0.1)
    assert lines and lines[0].startswith("backup: ") and "integrity ok" in lines[0], lines
    assert len(backups.backups_of(folder, demo.db_path.stem)) == 2


def test_the_import_tab_offers_an_admin_a_backup_and_refuses_anyone_else(demo, tmp_path, monkeypatch):
    from studio.ui.context import UIContext, make_i18n
    from studio.ui.tabs import import_

    monkeypatch.setattr(backups, "BACKUPS_DIR", tmp_path / "backups")
    ctx = UIContext(demo.db_path, make_i18n(), auth=True)
    with opened(demo.db_path) as db:
        ensure_annotator(db, "ada", "admin")
        ensure_annotator(db, "eve", "expert")
    message, file = import_.make_backup(ctx, "zh-CN", SimpleNamespace(username="ada"))
    assert "rs-ok" in message and "已创建并通过校验" in message and str(tmp_path) not in message
    assert file["visible"] and Path(file["value"]).parent == tmp_path / "backups"
    assert verify(file["value"]).integrity == "ok"
    message, file = import_.make_backup(ctx, "en", SimpleNamespace(username="eve"))
    assert "needs the Admin role" in message and file == {"__type__": "update", "value": None, "visible": False}
    assert len(list((tmp_path / "backups").iterdir())) == 1
