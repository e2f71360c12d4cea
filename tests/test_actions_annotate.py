"""Rating through the actions layer: each person only ever as themselves, and blind to the other's rating."""

from __future__ import annotations

import pytest

from actors import assert_refused
from studio.actions import Actor, Project, agree
from studio.actions import annotate
from studio.errors import RuleError
from studio.store import opened

ALICE, BOB = Actor("alice", "annotator", signed_in=True), Actor("bob", "annotator", signed_in=True)


@pytest.fixture
def p(project, db_path) -> Project:  # `project` (conftest): 6 pairs; alice, bob, carol annotators; eve expert
    return Project(db_path)


def ratings(p: Project) -> list[tuple[str, int, int]]:
    with opened(p.db_path) as db:
        return [(r["name"], r["pair_id"], r["rating"]) for r in db.query(
            "SELECT a.name, r.pair_id, r.rating FROM ratings r JOIN annotators a ON a.id = r.annotator_id ORDER BY r.id")]


def test_rate_skip_undo_act_as_the_actor_only(p):
    first = annotate.start(p, ALICE).pair.pair_id
    queue = annotate.rate(p, ALICE, first, 2, "answers it")
    assert ratings(p) == [("alice", first, 2)] and queue.progress.mine_total == 1
    second = queue.pair.pair_id
    assert annotate.skip(p, ALICE, second).pair.pair_id not in (first, second)
    undone, queue = annotate.undo(p, ALICE)
    assert (undone.kind, undone.pair_id) == ("skip", second) and queue.pair.pair_id == second
    undone, queue = annotate.undo(p, ALICE)
    assert (undone.pair_id, undone.note) == (first, "answers it") and queue.pair.pair_id == first and ratings(p) == []


def test_the_other_raters_rating_is_never_in_what_an_annotator_gets(p):
    pair = annotate.start(p, ALICE).pair.pair_id
    annotate.rate(p, ALICE, pair, 0, "alice's secret note")
    seen = annotate.start(p, BOB).pair
    assert seen.pair_id == pair, "a pair with one rating comes first"
    assert seen.my_rating is None and seen.my_note == "" and "secret" not in repr(seen)
    assert "alice" not in repr(annotate.queue(p, BOB))


def test_a_person_cannot_fill_both_slots_of_a_pair(p):
    pair = annotate.start(p, ALICE).pair.pair_id
    annotate.rate(p, ALICE, pair, 2)
    annotate.rate(p, ALICE, pair, 1)  # rating again replaces one's own rating
    annotate.start(p, BOB)
    annotate.rate(p, BOB, pair, 1)
    with pytest.raises(RuleError):
        annotate.rate(p, Actor("carol", "annotator", signed_in=True), pair, 2)
    assert sorted(ratings(p)) == [("alice", pair, 1), ("bob", pair, 1)]


def test_an_annotator_cannot_see_agreement_disagreements_or_the_audit_log(p):
    pair = annotate.start(p, ALICE).pair.pair_id
    annotate.rate(p, ALICE, pair, 2)
    annotate.start(p, BOB)
    annotate.rate(p, BOB, pair, 0)
    for fn in (agree.agreement, agree.open_cases, agree.audit_log, agree.gold_counts):
        assert_refused(p, ALICE, fn)
    assert_refused(p, ALICE, agree.adjudicate, pair, 2, "I was right")
    expert = Actor("eve", "expert", signed_in=True)
    assert [c["pair_id"] for c in agree.open_cases(p, expert)] == [pair]
