"""Agreement, adjudication and the audit log through the actions layer: experts (and admins) only."""

from __future__ import annotations

import pytest

from actors import ADMIN, ANNOTATOR, assert_refused
from studio.actions import Actor, Project, agree
from studio.errors import RuleError
from studio.store import opened


@pytest.fixture
def p(db_path) -> Project:
    from conftest import make_batch
    from studio.store import connect
    from studio.store.annotators import ensure_annotator
    from studio.store.imports import import_batch

    db = connect(db_path)
    import_batch(db, make_batch(3, source="ratings", ratings=[(0, "alice", 2), (0, "bob", 0), (1, "alice", 1),
                                                               (1, "bob", 1)]))
    ensure_annotator(db, "eve", "expert")
    db.close()
    return Project(db_path)


EVE = Actor("eve", "expert", signed_in=True)


def test_an_expert_sees_agreement_and_decides_as_themselves(p):
    result = agree.agreement(p, EVE)
    assert result.report.double_rated == 2 and len(result.disagreements) == 1
    case = agree.open_cases(p, EVE)[0]
    assert {case["annotator_a"], case["annotator_b"]} == {"alice", "bob"}
    decided = agree.adjudicate(p, EVE, case["pair_id"], 2, "the dose is stated")
    assert decided["expert"] == "eve" and agree.open_cases(p, EVE) == []
    entry = agree.audit_log(p, EVE)[0]
    assert (entry["actor"], entry["action"], entry["after"]["label"]) == ("eve", "adjudicate", 2)
    assert agree.gold_counts(p, EVE)["by_origin"]["adjudicated"] == 1


def test_an_admin_may_do_what_an_expert_may(p):
    assert agree.agreement(p, ADMIN).report.double_rated == 2


def test_a_signed_in_annotator_is_refused_everything_here_and_nothing_changes(p):
    pair = agree.open_cases(p, EVE)[0]["pair_id"]
    for fn, args in ((agree.agreement, ()), (agree.open_cases, ()), (agree.gold_counts, ()),
                     (agree.audit_log, ()), (agree.adjudicate, (pair, 0))):
        assert_refused(p, ANNOTATOR, fn, *args)
    with opened(p.db_path) as db:
        assert next(db.query("SELECT count(*) AS n FROM adjudications"))["n"] == 0


def test_the_deciding_person_must_be_an_expert_on_the_team(p):
    # An Actor with an admin role but naming an annotator (a CLI mistake): the store checks the person's own role.
    pair = agree.open_cases(p, EVE)[0]["pair_id"]
    with pytest.raises(RuleError):
        agree.adjudicate(p, Actor("alice", "admin"), pair, 2)
