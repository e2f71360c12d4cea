"""Actors for per-role tests, and the check every refused action must pass."""

from __future__ import annotations

import pytest

from studio.actions import Actor, Project
from studio.errors import Forbidden
from studio.store import opened

ANNOTATOR = Actor("alice", "annotator", signed_in=True)
EXPERT = Actor("eve", "expert", signed_in=True)
ADMIN = Actor("root", "admin", signed_in=True)


def refusals(project: Project) -> list[dict]:
    """The audit log's refusals, oldest first."""
    from studio.store.audit import history

    with opened(project.db_path) as db:
        return [r for r in reversed(history(db, entity="action", limit=1000)) if r["action"] == "refused"]


def assert_refused(project: Project, actor: Actor, fn, *args, **kwargs) -> None:
    """`fn(project, actor, …)` raises Forbidden and leaves a refusal under the real actor in the audit log."""
    before = len(refusals(project))
    with pytest.raises(Forbidden) as info:
        fn(project, actor, *args, **kwargs)
    assert info.value.params["actor"] == actor.name
    after = refusals(project)
    assert len(after) == before + 1
    assert after[-1]["actor"] == actor.name and after[-1]["after"]["role"] == actor.role
