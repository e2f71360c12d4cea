"""The annotation queue is kept, not recomputed: counters that stay true, index-only choices, sessions that free
their pairs when they end."""

from __future__ import annotations

import random

from conftest import make_batch
from studio.actions import Actor, Project
from studio.actions import annotate
from studio.errors import StudioError
from studio.store import ratings as store_ratings
from studio.store.annotators import ensure_annotator
from studio.store.imports import import_batch
from studio.store.ratings import next_pair, progress, skip_pair, submit_rating, undo_last


def recomputed(db) -> dict:
    """Every counter the triggers keep, computed the slow way from the ratings and reservations themselves."""
    pairs = {r["id"]: (r["ratings_n"], r["holds_n"], r["occupant_id"]) for r in db.query(
        "SELECT id, ratings_n, holds_n, occupant_id FROM pairs")}
    truth = {}
    for pid in pairs:
        raters = [r["annotator_id"] for r in db.query("SELECT annotator_id FROM ratings WHERE pair_id = ?", [pid])]
        holders = [r["annotator_id"] for r in db.query("SELECT annotator_id FROM assignments WHERE pair_id = ?", [pid])]
        people = raters + holders
        truth[pid] = (len(raters), len(holders), people[0] if len(people) == 1 else pairs[pid][2])
    return {"pairs": (pairs, truth)}


def check_counters(db) -> None:
    (kept, truth), = recomputed(db).values()
    assert kept == truth, "per-pair counters drifted"
    counts = next(db.query("SELECT queued, double_rated FROM queue_counts"))
    assert counts["queued"] == next(db.query("SELECT count(*) AS n FROM pairs WHERE in_queue = 1"))["n"]
    assert counts["double_rated"] == next(db.query(
        "SELECT count(*) AS n FROM pairs p WHERE in_queue = 1 AND (SELECT count(*) FROM ratings r "
        "WHERE r.pair_id = p.id) >= 2"))["n"]
    for person in db.query("SELECT id, ratings_n, waiting_n FROM annotators"):
        assert person["ratings_n"] == next(db.query("SELECT count(*) AS n FROM ratings WHERE annotator_id = ?",
                                                    [person["id"]]))["n"]
        assert person["waiting_n"] == next(db.query(
            "SELECT count(*) AS n FROM ratings r JOIN pairs p ON p.id = r.pair_id WHERE r.annotator_id = ? AND "
            "p.in_queue = 1 AND (SELECT count(*) FROM ratings x WHERE x.pair_id = p.id) = 1", [person["id"]]))["n"]


def test_counters_stay_true_through_every_kind_of_change(db):
    import_batch(db, make_batch(30, ratings=[(0, "zoe", 2), (1, "zoe", 0), (1, "yan", 0)]))
    import_batch(db, make_batch(3, source="beir"), queue=False)  # pairs outside the queue
    people = ["alice", "bob", "carol", "dan"]
    for name in people:
        ensure_annotator(db, name)
    rng = random.Random(7)
    for _ in range(200):
        who = rng.choice(people)
        move = rng.random()
        view = next_pair(db, who)
        if view is None:
            continue
        if move < 0.6:
            submit_rating(db, who, view.pair_id, rng.choice((0, 1, 2)))
        elif move < 0.75:
            skip_pair(db, who, view.pair_id)
        elif move < 0.9:
            try:
                undo_last(db, who)
            except StudioError as exc:  # the one refusal: nothing of this annotator's left to undo
                assert exc.code == "nothing_to_undo", exc
        check_counters(db)
    check_counters(db)
    p = progress(db, "alice")
    assert p.total_pairs == 30 and p.double_rated <= 30


def test_the_next_pair_is_chosen_from_partial_indexes_not_a_scan(db):
    import_batch(db, make_batch(10))
    ensure_annotator(db, "alice")
    for sql in (store_ratings._LANE_ONE, store_ratings._LANE_ZERO):
        plan = " ".join(str(row) for row in db.conn.execute("EXPLAIN QUERY PLAN " + sql, {"me": 1}))
        assert "pairs_lane" in plan and "SCAN p " not in plan.replace("SCAN p USING INDEX pairs_lane0", ""), plan


def test_a_lone_annotator_keeps_getting_pairs_in_order_and_half_rated_pairs_come_first(db):
    import_batch(db, make_batch(8))
    ensure_annotator(db, "alice")
    ensure_annotator(db, "bob")
    served = []
    for _ in range(5):
        view = next_pair(db, "alice")
        served.append(view.pair_id)
        submit_rating(db, "alice", view.pair_id, 1)
    assert served == sorted(served), "imported order"
    assert next_pair(db, "bob").pair_id == served[0], "bob completes alice's pairs first"


def test_a_closed_session_frees_its_pair_at_once(db_path, db):
    import_batch(db, make_batch(1))
    project = Project(db_path)
    alice, bob = Actor("alice", "annotator", signed_in=True), Actor("bob", "annotator", signed_in=True)
    carol = Actor("carol", "annotator", signed_in=True)
    for actor in (alice, bob, carol):
        ensure_annotator(db, actor.name)
    held = annotate.start(project, alice, session="tab-a").pair.pair_id
    annotate.start(project, bob, session="tab-b")
    assert annotate.start(project, carol, session="tab-c").pair is None, "both slots are reserved"
    assert annotate.leave(project, "tab-a") == 1
    assert annotate.start(project, carol, session="tab-c").pair.pair_id == held, "alice's tab closed: carol gets it"
