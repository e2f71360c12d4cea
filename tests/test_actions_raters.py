"""The annotator report through the actions layer: experts and admins see everyone (model raters included), live; an
annotator only their own line, up to yesterday (as of the start of the current UTC day)."""

from __future__ import annotations

import pytest

from actors import ADMIN, EXPERT
from conftest import make_batch
from studio.actions import Actor, Project, raters
from studio.errors import StudioError
from studio.store import connect, opened
from studio.store.annotators import ensure_annotator
from studio.store.imports import import_batch
from studio.store.rater_stats import start_of_utc_day
from studio.store.ratings import submit_rating


@pytest.fixture
def p(db_path) -> Project:
    db = connect(db_path)
    import_batch(db, make_batch(4, source="ratings", ratings=[(0, "alice", 2), (0, "bob", 0), (1, "alice", 1),
                                                               (1, "bob", 1), (2, "bob", 2)]))
    ensure_annotator(db, "eve", "expert")
    db.execute("INSERT INTO model_raters (name, kind, spec, created_by) VALUES ('model:default', 'model', 'm', 'x')")
    db.execute("INSERT INTO judgments (rater_id, pair_id, label) SELECT 1, id, 1 FROM pairs")
    db.execute("UPDATE ratings SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', created_at, '-1 day')")  # yesterday
    db.conn.commit()
    db.close()
    return Project(db_path)


@pytest.mark.parametrize("actor", [EXPERT, ADMIN], ids=["expert", "admin"])
def test_experts_and_admins_see_every_person_and_the_model_raters(p, actor):
    report = raters.annotator_report(p, actor)
    assert [(a.name, a.kind) for a in report.lines] == [("alice", "person"), ("bob", "person"),
                                                        ("model:default", "model")]
    assert report.lines[0].kappa_vs_others["bob"]["n"] == 2
    assert set(report.drift) == {"alice", "bob"}


def test_an_annotator_sees_only_their_own_line(p):
    report = raters.annotator_report(p, Actor("bob", "annotator", signed_in=True))
    assert [a.name for a in report.lines] == ["bob"] and list(report.drift) == ["bob"]
    assert report.lines[0].ratings == 3 and report.lines[0].skips == 0
    assert "alice" not in str(report.to_json()["drift"])


def test_an_annotators_line_lags_a_day_and_only_they_may_ask_for_it(p):
    bob = Actor("bob", "annotator", signed_in=True)
    with opened(p.db_path) as db:
        pair = next(db.query("SELECT id FROM pairs WHERE id NOT IN (SELECT pair_id FROM ratings)"))["id"]
        submit_rating(db, "bob", pair, 0)  # today
    own = raters.annotator_report(p, bob)
    assert own.as_of == start_of_utc_day() and own.to_json()["as_of"] == own.as_of
    assert own.lines[0].ratings == 3, "today's rating shows tomorrow"
    assert [(a.name, a.ratings) for a in raters.annotator_report(p, EXPERT).lines[:2]] == [("alice", 2), ("bob", 4)]
    seen = raters.annotator_report(p, ADMIN, seen_by="bob")
    assert seen.as_of == own.as_of and seen.to_json()["annotators"] == own.to_json()["annotators"]
    assert raters.annotator_report(p, bob, seen_by="bob").to_json() == own.to_json()
    with pytest.raises(StudioError, match="only their own line"):
        raters.annotator_report(p, bob, seen_by="alice")


def test_a_missing_database_is_refused_when_it_must_exist(tmp_path):
    with pytest.raises(StudioError):
        raters.annotator_report(Project(tmp_path / "nope.db"), ADMIN, existing=True)
    assert not (tmp_path / "nope.db").exists()
