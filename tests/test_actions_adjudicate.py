"""④'s case actions (cases, case, skip, undo, adjudicate as a change) through the actions layer: experts and admins
act as themselves; a signed-in annotator is refused each of them and nothing changes."""

from __future__ import annotations

import pytest

from actors import ADMIN, ANNOTATOR, assert_refused
from studio.actions import Actor, Project, agree
from studio.store import opened

EVE = Actor("eve", "expert", signed_in=True)


@pytest.fixture
def p(db_path) -> Project:
    from conftest import make_batch
    from studio.store.annotators import ensure_annotator
    from studio.store.imports import import_batch

    with opened(db_path) as db:
        import_batch(db, make_batch(3, source="ratings", ratings=[
            (0, "alice", 2), (0, "bob", 0), (1, "alice", 1), (1, "carol", 0), (2, "alice", 1), (2, "bob", 1)]))
        ensure_annotator(db, "eve", "expert")
        ensure_annotator(db, "root", "admin")
        db.execute("INSERT INTO model_raters (name, kind, spec, created_by) VALUES ('llm:gemma', 'llm', "
                   "'http://127.0.0.1:8080/v1', 'root')")
        pair = next(db.query("SELECT id FROM pairs WHERE id NOT IN (SELECT pair_id FROM ratings WHERE rating != 1)"))
        db.execute("INSERT INTO second_looks (pair_id, rater_id, model_label, agreed_label, created_by) "
                   "VALUES (?, 1, 2, 1, 'root')", [pair["id"]])
    return Project(db_path)


def test_an_expert_skips_decides_changes_and_undoes_as_themselves(p):
    found = agree.cases(p, EVE)
    assert [c["kind"] for c in found.open] == ["disagreement", "disagreement", "second_look"]
    assert found.decided == [] and found.annotator_pairs == [("alice", "bob"), ("alice", "carol")]
    first, second, look = (c["pair_id"] for c in found.open)
    agree.skip(p, EVE, first)
    assert [c["pair_id"] for c in agree.open_cases(p, EVE)] == [second, look, first]
    assert [c["pair_id"] for c in agree.open_cases(p, ADMIN)] == [first, second, look], "eve's skip is hers"
    agree.adjudicate(p, EVE, look, 1, "the model over-reads it")
    assert agree.case(p, EVE, look)["decision"] == 1 and not agree.case(p, EVE, look)["open"]
    changed = agree.adjudicate(p, ADMIN, look, 2, "it does answer")
    assert changed["before"]["label"] == 1 and agree.cases(p, EVE).decided[0]["expert"] == "root"
    assert agree.undo(p, ADMIN)["restored"]["label"] == 1
    assert agree.undo(p, EVE)["pair_id"] == look
    assert agree.case(p, EVE, look)["second_look_open"], "the second look is open again"
    assert [c["pair_id"] for c in agree.cases(p, EVE, annotators=("carol", "alice")).open] == [second]
    assert agree.open_cases(p, EVE, query="query 0") == [c for c in agree.open_cases(p, EVE)
                                                          if c["pair_id"] == first]


def test_a_signed_in_annotator_is_refused_every_case_action(p):
    pair = agree.open_cases(p, EVE)[0]["pair_id"]
    agree.adjudicate(p, EVE, pair, 1)
    with opened(p.db_path) as db:
        before = list(db.query("SELECT * FROM adjudications")), list(db.query("SELECT * FROM second_looks"))
    for fn, args in ((agree.cases, ()), (agree.case, (pair,)), (agree.skip, (pair,)), (agree.undo, ()),
                     (agree.adjudicate, (pair, 2))):
        assert_refused(p, ANNOTATOR, fn, *args)
    with opened(p.db_path) as db:
        assert (list(db.query("SELECT * FROM adjudications")), list(db.query("SELECT * FROM second_looks"))) == before
