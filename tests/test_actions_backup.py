"""The backup action (①): an admin's, audited with what the copy holds; lower roles refused and audited, nothing
written."""

import json

import pytest

from studio import backups
from studio.actions import Actor
from studio.actions import backup as backup_actions
from studio.errors import Forbidden
from studio.store import opened
from studio.store.annotators import ensure_annotator
from studio.store.backup import verify

ADMIN, EXPERT, ANNOTATOR = Actor("ada", "admin", True), Actor("eve", "expert", True), Actor("alice", "annotator", True)


@pytest.fixture
def project(demo, tmp_path, monkeypatch):
    monkeypatch.setattr(backups, "BACKUPS_DIR", tmp_path / "backups")
    with opened(demo.db_path) as db:
        for actor in (ADMIN, EXPERT, ANNOTATOR):
            ensure_annotator(db, actor.name, actor.role)
    return demo


def audit_rows(project, action: str) -> list[dict]:
    with opened(project.db_path) as db:
        return list(db.query("SELECT actor, after FROM audit_log WHERE action = ? ORDER BY id", [action]))


def test_an_admin_backs_up_into_a_file_or_into_backups(project, tmp_path):
    info = backup_actions.make_backup(project, ADMIN, tmp_path / "out.db")  # backup.make_backup, as the CLI does
    assert info.path == tmp_path / "out.db" and verify(info.path).ratings == info.ratings > 0
    timed = backup_actions.make_backup(project, ADMIN)  # as the page's button does
    assert timed.path.parent == tmp_path / "backups" and timed.path.name.startswith(project.db_path.stem + "-")
    entries = audit_rows(project, "backup")
    assert [e["actor"] for e in entries] == ["ada", "ada"]
    assert json.loads(entries[0]["after"]) == {"file": "out.db", "bytes": info.bytes, "ratings": info.ratings,
                                               "integrity": "ok"}


@pytest.mark.parametrize("actor", [EXPERT, ANNOTATOR], ids=lambda a: a.role)
def test_only_an_admin_may_back_up(project, tmp_path, actor):
    with pytest.raises(Forbidden):
        backup_actions.make_backup(project, actor, tmp_path / "out.db")
    with pytest.raises(Forbidden):
        backup_actions.make_backup(project, actor)
    assert not (tmp_path / "out.db").exists() and not (tmp_path / "backups").exists()
    refused = [json.loads(r["after"])["action"] for r in audit_rows(project, "refused") if r["actor"] == actor.name]
    assert refused == ["backup.make_backup"] * 2
    assert audit_rows(project, "backup") == []
