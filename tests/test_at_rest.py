"""At rest: what the studio writes is its account's only (the database with its password hashes and ratings, its
WAL/SHM and write lock, exports), and the CLI is audited as the OS user who ran it."""

from __future__ import annotations

import getpass
import os
import stat
import subprocess
import sys
from pathlib import Path


from studio.private import UMASK, is_private
from studio.store import connect, opened

ROOT = Path(__file__).resolve().parent.parent


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def studio(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """The real `studio` entry point in a fresh process (its umask is the caller's 022 until the CLI sets its own)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "STUDIO_EXPORTS": "exports", "STUDIO_JOBS": "jobs"}
    env.pop("STUDIO_DB", None)
    result = subprocess.run([sys.executable, "-m", "studio", "--db", "annotations.db", *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def test_a_project_made_through_the_cli_is_readable_by_its_account_only(tmp_path):
    old = os.umask(0o022)  # a usual login's umask: without the studio's own, all of this would be 0644 / 0755
    try:
        studio(tmp_path, "demo")
        studio(tmp_path, "export", "triplets", "--hard-negatives", "none")
        db_path = tmp_path / "annotations.db"
        written = [p for p in (tmp_path / "exports").rglob("*")]
        assert any(p.suffix == ".jsonl" for p in written) and any(p.suffix == ".csv" for p in written)
        for path in [db_path, tmp_path / "annotations.db-writelock", tmp_path / "exports", *written]:
            assert is_private(path), f"{path.relative_to(tmp_path)} is {mode(path)}"
        db = connect(db_path)  # open in this process (umask 022): SQLite makes -wal/-shm as the database is
        try:
            db.execute("CREATE TABLE IF NOT EXISTS probe (x)")
            for suffix in ("-wal", "-shm"):
                companion = Path(f"{db_path}{suffix}")
                assert companion.exists() and is_private(companion), f"{companion.name} is {mode(companion)}"
        finally:
            db.close()
    finally:
        os.umask(old)


def test_the_store_makes_the_database_private_without_the_cli(tmp_path):
    """A script opening the store directly: a new database is 0600, an old 0644 one is tightened."""
    old = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.db"
        with opened(fresh):
            pass
        assert mode(fresh) == "0o600"
        legacy = tmp_path / "legacy.db"
        legacy.touch(mode=0o644)
        os.chmod(legacy, 0o644)
        Path(f"{legacy}-writelock").touch()
        os.chmod(f"{legacy}-writelock", 0o644)
        with opened(legacy):
            pass
        assert mode(legacy) == "0o600" and mode(Path(f"{legacy}-writelock")) == "0o600"
    finally:
        os.umask(old)


def test_the_cli_sets_the_studio_umask_and_puts_it_back(tmp_path):
    from click.testing import CliRunner

    from studio.cli import cli
    from studio.cli.base import PRIVATE_UMASK

    assert PRIVATE_UMASK == UMASK
    with opened(tmp_path / "x.db"):
        pass
    old = os.umask(0o022)
    try:
        result = CliRunner().invoke(cli, ["--db", str(tmp_path / "x.db"), "annotators"], catch_exceptions=False)
        assert result.exit_code == 0
        assert os.umask(0o022) == 0o022, "an in-process caller gets its own umask back"
    finally:
        os.umask(old)


def test_the_cli_is_audited_as_the_os_user(tmp_path):
    studio(tmp_path, "demo")
    studio(tmp_path, "annotators", "add", "newcomer", "--role", "expert")
    with opened(tmp_path / "annotations.db") as db:
        actors = {r["actor"] for r in db.query("SELECT actor FROM audit_log WHERE entity = 'annotator'")}
    assert actors == {f"cli:{getpass.getuser()}"}


def test_the_cli_actor_falls_back_to_cli_when_the_os_cannot_name_the_user(monkeypatch):
    from studio.cli.base import cli_actor_name

    monkeypatch.setattr(getpass, "getuser", lambda: "ada")
    assert cli_actor_name() == "cli:ada"

    def nobody():
        raise OSError("No username set in the environment")

    monkeypatch.setattr(getpass, "getuser", nobody)
    assert cli_actor_name() == "cli"
