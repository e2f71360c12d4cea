"""Accounts and the team, per role: only admins change them; passwords are stored as salted slow hashes."""

from __future__ import annotations

import pytest

from actors import ADMIN, ANNOTATOR, EXPERT, assert_refused
from studio.actions import Actor, Project
from studio.actions import team
from studio.errors import StudioError
from studio.store import opened


@pytest.fixture
def project(db_path) -> Project:
    return Project(db_path)


def stored_hash(project: Project, name: str) -> str | None:
    with opened(project.db_path) as db:
        return next(db.query("SELECT password_hash FROM annotators WHERE name = ?", [name]))["password_hash"]


def test_an_admin_adds_an_account_and_it_signs_in(project):
    row = team.add_account(project, ADMIN, "dr-wang", "correct horse", "expert")
    assert row["role"] == "expert" and row["can_sign_in"]
    assert team.sign_in(project, "dr-wang", "correct horse")
    assert not team.sign_in(project, "dr-wang", "wrong horse") and not team.sign_in(project, "nobody", "correct horse")
    hashed = stored_hash(project, "dr-wang")
    assert "correct horse" not in hashed and hashed.startswith("scrypt$")
    team.add_account(project, ADMIN, "dr-li", "correct horse")
    assert stored_hash(project, "dr-li") != hashed, "every password gets its own salt"


def test_the_signed_in_actor_takes_its_role_from_the_database(project):
    team.add_account(project, ADMIN, "dr-wang", "correct horse", "annotator")
    assert team.signed_in_actor(project, "dr-wang") == Actor("dr-wang", "annotator", signed_in=True)
    team.add_person(project, ADMIN, "dr-wang", "expert")
    assert team.signed_in_actor(project, "dr-wang").role == "expert", "a role change applies at the next action"
    team.remove_account(project, ADMIN, "dr-wang")
    with pytest.raises(StudioError, match="not signed in"):
        team.signed_in_actor(project, "dr-wang")
    assert not team.sign_in(project, "dr-wang", "correct horse")
    with pytest.raises(StudioError):
        team.signed_in_actor(project, None)


def test_short_passwords_and_bad_quick_start_entries_are_refused_whole(project):
    with pytest.raises(StudioError, match="at least 8"):
        team.add_account(project, ADMIN, "bob", "short")
    for spec in (":", "alice", ":password1", "alice:password1,bob:short", ""):
        with pytest.raises(StudioError):
            team.quick_start_accounts(project, spec)
    assert team.team(project, ADMIN) == [], "nothing written by a refused list"


def test_quick_start_keeps_the_role_of_someone_already_on_the_team(project):
    team.add_person(project, ADMIN, "eve", "expert")
    assert team.quick_start_accounts(project, "eve:password1,alice:password2") == ["eve", "alice"]
    roles = {p.name: (p.role, p.can_sign_in) for p in team.team(project, ADMIN)}
    assert roles == {"eve": ("expert", True), "alice": ("annotator", True)}


def test_removing_an_account_keeps_the_ratings(project, db):
    from conftest import make_batch
    from studio.store.imports import import_batch

    import_batch(db, make_batch(2, ratings=[(0, "bob", 2)]))
    team.add_account(project, ADMIN, "bob", "password1")
    team.remove_account(project, ADMIN, "bob")
    people = {p.name: p for p in team.team(project, ADMIN)}
    assert people["bob"].removed and people["bob"].ratings == 1 and not people["bob"].can_sign_in
    assert "bob" not in team.names(project, Actor.local())
    with pytest.raises(StudioError, match="your own"):
        team.remove_account(project, ADMIN, "root")


@pytest.mark.parametrize("actor", [ANNOTATOR, EXPERT])
def test_only_admins_change_the_team(project, actor):
    team.add_person(project, ADMIN, "eve", "expert")
    for fn, args in ((team.add_person, ("mallory", "admin")), (team.add_person, ("eve", "annotator")),
                     (team.add_account, ("mallory", "password1", "admin")), (team.set_password, ("eve", "password1")),
                     (team.remove_account, ("eve",)), (team.team, ())):
        assert_refused(project, actor, fn, *args)
    assert [(p.name, p.role, p.can_sign_in) for p in team.team(project, ADMIN)] == [("eve", "expert", False)]


def test_pickers_show_only_oneself_when_signed_in(project):
    for name, role in (("alice", "annotator"), ("eve", "expert"), ("root", "admin")):
        team.add_person(project, ADMIN, name, role)
    assert team.names(project, ANNOTATOR) == ["alice"] and team.experts(project, EXPERT) == ["eve"]
    assert team.names(project, Actor.local()) == ["alice", "eve", "root"]
    assert team.experts(project, Actor.local()) == ["eve", "root"]
    assert_refused(project, ANNOTATOR, team.experts)
