"""Control pairs through the actions layer: admins set them up, experts read the status, annotators neither — and an
annotator is served and answers controls through ② (annotate.*) without being able to tell them apart."""

from __future__ import annotations

from actors import ADMIN, ANNOTATOR, EXPERT, assert_refused
from studio.actions import annotate, controls
from studio.store import opened


def test_an_admin_sets_up_controls_and_an_annotator_answers_one_like_a_pair(demo):
    added = controls.add_from_gold(demo, ADMIN, n=20, seed=2)
    assert (added["added"], added["status"]["controls"]) == (20, 20)
    status = controls.set_rate(demo, ADMIN, 0.5)
    assert status["rate"] == 0.5
    assert controls.set_min_accuracy(demo, ADMIN, 0.75)["min_accuracy"] == 0.75
    assert controls.set_qualification(demo, ADMIN, 2, 0.5)["qualify_first"] == 2
    first = annotate.start(demo, ANNOTATOR)  # alice is new: her first two pairs are controls
    with opened(demo.db_path) as db:
        expected = {r["pair_id"]: r["label"] for r in db.query("SELECT pair_id, label FROM controls")}
    assert first.pair.pair_id in expected
    after = annotate.rate(demo, ANNOTATOR, first.pair.pair_id, expected[first.pair.pair_id], "looks right")
    assert after.progress.mine_total == 1 and after.pair.pair_id in expected
    undone, queue = annotate.undo(demo, ANNOTATOR)
    assert (undone.pair_id, undone.kind, undone.rating, undone.note) == \
        (first.pair.pair_id, "rating", expected[first.pair.pair_id], "looks right")
    assert queue.pair.pair_id == first.pair.pair_id and queue.progress.mine_total == 0
    annotate.rate(demo, ANNOTATOR, first.pair.pair_id, expected[first.pair.pair_id])
    seen = controls.status(demo, EXPERT)
    assert (seen["answers"], seen["correct"], seen["people"]) == (1, 1, 1)
    assert seen["qualification"] == [{"name": "alice", "answered": 1, "correct": 1, "accuracy": 1.0,
                                      "status": "pending"}]
    with opened(demo.db_path) as db:
        assert not list(db.query("SELECT 1 FROM ratings r JOIN annotators a ON a.id = r.annotator_id "
                                 "WHERE a.name = 'alice'")), "a control answer is never a rating"
    cleared = controls.clear(demo, ADMIN)
    assert (cleared["removed"], cleared["answers_kept"], cleared["status"]["controls"]) == (20, 1, 0)


def test_only_admins_change_controls_and_annotators_do_not_see_their_status(demo):
    for fn, args in ((controls.add_from_gold, ()), (controls.clear, ()), (controls.set_rate, (0.2,)),
                     (controls.set_min_accuracy, (0.7,)), (controls.set_qualification, (5, 0.8))):
        assert_refused(demo, EXPERT, fn, *args)
        assert_refused(demo, ANNOTATOR, fn, *args)
    assert_refused(demo, ANNOTATOR, controls.status)
    assert controls.status(demo, EXPERT)["controls"] == 0
