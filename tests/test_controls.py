"""Control pairs and time per pair, through the store functions ② calls (next_pair, submit_rating, skip, undo,
progress) and the `studio controls` verbs: controls are served like pairs, answered apart from ratings, and the
seconds per pair come only from the server's clock."""

from __future__ import annotations

import json
import random
from dataclasses import fields
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from studio.cli import cli
from studio.config import RATING_SECONDS_CAP
from studio.errors import StudioError
from studio.ingest.records import Document, ImportBatch, PairRecord, Query
from studio.store import controls, opened
from studio.store import ratings as store_ratings
from studio.store.annotators import ensure_annotator
from studio.store.imports import import_batch
from studio.store.queue import makeup as queue_makeup
from studio.store.ratings import next_pair, progress, release_session, skip_pair, submit_rating, undo_last


class Always:
    """An rng whose draw always falls under the rate (serve a control) or never does."""

    def __init__(self, value: float):
        self.value = value

    def random(self) -> float:
        return self.value


CONTROL, REGULAR = Always(0.0), Always(0.99)


class Clock:
    """The server's clock, moved by the test (store/ratings.py reads time.time())."""

    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(store_ratings, "time", SimpleNamespace(time=c.time))
    return c


@pytest.fixture
def demo_db(demo):
    """The demo project (80 agreed gold pairs, 80 untouched pairs) with alice and bob on the team and every gold
    pair a control."""
    with opened(demo.db_path) as db:
        for name in ("alice", "bob"):
            ensure_annotator(db, name)
        controls.add_from_gold(db, actor="admin")
        yield db


def control_ids(db) -> set[int]:
    return {r["pair_id"] for r in db.query("SELECT pair_id FROM controls")}


def most_ratings(db) -> int:
    return next(db.query("SELECT coalesce(max(n), 0) AS m FROM (SELECT count(*) AS n FROM ratings GROUP BY pair_id)"))["m"]


def test_controls_are_served_at_the_rate_and_answered_apart_from_ratings(demo_db):
    db = demo_db
    gold = control_ids(db)
    ratings_before = next(db.query("SELECT count(*) AS n FROM ratings"))["n"]
    controls.set_rate(db, 0.25, actor="admin")
    rng = random.Random(3)
    for _ in range(60):
        view = next_pair(db, "alice", rng=rng)
        submit_rating(db, "alice", view.pair_id, 1)
    answered = [r["pair_id"] for r in db.query(
        "SELECT x.pair_id FROM control_answers x JOIN annotators a ON a.id = x.annotator_id WHERE a.name = 'alice'")]
    assert 8 <= len(answered) <= 25, f"about a quarter of 60 served pairs are controls, got {len(answered)}"
    assert set(answered) <= gold and len(set(answered)) == len(answered)
    rated = [r["pair_id"] for r in db.query(
        "SELECT r.pair_id FROM ratings r JOIN annotators a ON a.id = r.annotator_id WHERE a.name = 'alice'")]
    assert len(rated) + len(answered) == 60 and not set(rated) & gold, "a control answer is never a rating"
    assert next(db.query("SELECT count(*) AS n FROM ratings"))["n"] == ratings_before + len(rated)
    assert most_ratings(db) == 2
    expected = {r["pair_id"]: r["label"] for r in db.query("SELECT pair_id, label FROM controls")}
    assert all(r["expected"] == expected[r["pair_id"]] for r in db.query("SELECT * FROM control_answers"))
    # Rate 0 serves no control at all.
    controls.set_rate(db, 0, actor="admin")
    for _ in range(10):
        view = next_pair(db, "bob", rng=CONTROL)
        assert view.pair_id not in gold
        submit_rating(db, "bob", view.pair_id, 0)


def test_the_regular_lanes_never_serve_a_control_and_progress_does_not_count_them(db):
    batch = ImportBatch("beir", "dir", [PairRecord(Query(f"q {i}", f"q{i}"), Document(f"d {i}", f"d{i}"),
                                                   reference_label=i % 3 if i < 3 else None) for i in range(6)])
    import_batch(db, batch, queue=True)
    for name in ("alice", "bob"):
        ensure_annotator(db, name)
    added = controls.add_from_gold(db, actor="admin")
    assert added["added"] == 3 and added["by_origin"]["reference"] == 3
    assert progress(db, "alice").total_pairs == 3 and progress(db, "alice").queue_left == 3
    shown = queue_makeup(db, unset="imported", orders_all=())
    assert (shown["untouched"], shown["reserved"]) == (3, 0), "① counts controls as neither work nor untouched"
    seen = set()
    for who in ("alice", "bob") * 3:
        view = next_pair(db, who, rng=REGULAR)
        if view:
            seen.add(view.pair_id)
            submit_rating(db, who, view.pair_id, 2)
    assert not seen & control_ids(db) and len(seen) == 3
    assert next_pair(db, "alice", rng=CONTROL) is None, "no control once the queue ran out: it would give itself away"
    p = progress(db, "alice")
    assert (p.queue_left, p.double_rated, p.total_pairs) == (0, 3, 3)
    assert controls.open_controls(db) == 3


def test_reload_serves_the_same_control_and_keeps_its_shown_time(demo_db, clock):
    db = demo_db
    controls.set_rate(db, 0.5, actor="admin")
    first = next_pair(db, "alice", session="tab-1", rng=CONTROL)
    assert first.pair_id in control_ids(db)
    clock.now += 30
    again = next_pair(db, "alice", session="tab-2", rng=REGULAR)  # a reload, or a second tab
    assert again == first
    hold = next(db.query("SELECT shown_at, session FROM control_holds"))
    assert hold["shown_at"] == 1_000_000.0 and hold["session"] == "tab-2"
    clock.now += 12
    submit_rating(db, "alice", first.pair_id, 2, "  sure ")
    answer = next(db.query("SELECT rating, note, seconds FROM control_answers"))
    assert answer == {"rating": 2, "note": "sure", "seconds": 42.0}
    assert not list(db.query("SELECT 1 FROM control_holds"))
    # A second tab sending the same answer again updates it, never makes it a rating.
    submit_rating(db, "alice", first.pair_id, 1)
    assert next(db.query("SELECT count(*) AS n, max(rating) AS r, max(seconds) AS s FROM control_answers")) == \
        {"n": 1, "r": 1, "s": 42.0}
    assert not list(db.query("SELECT 1 FROM ratings r JOIN annotators a ON a.id = r.annotator_id "
                             "WHERE a.name = 'alice'"))


def test_time_per_pair_is_the_servers_capped_and_not_reset_by_a_reload(project, clock):
    db = project
    view = next_pair(db, "alice")
    clock.now += 30
    assert next_pair(db, "alice") == view  # reload: same pair, same shown time
    assert next(db.query("SELECT shown_at FROM assignments"))["shown_at"] == 1_000_000.0
    clock.now += 12
    submit_rating(db, "alice", view.pair_id, 2)
    assert next(db.query("SELECT seconds FROM ratings WHERE pair_id = ?", [view.pair_id]))["seconds"] == 42.0
    lunch = next_pair(db, "alice")
    clock.now += 5000
    submit_rating(db, "alice", lunch.pair_id, 1)
    assert next(db.query("SELECT seconds FROM ratings WHERE pair_id = ?", [lunch.pair_id]))["seconds"] == \
        RATING_SECONDS_CAP
    # Undo holds the pair again, shown anew; the re-rating's seconds run from the undo.
    clock.now += 100
    undo_last(db, "alice")
    clock.now += 7
    submit_rating(db, "alice", lunch.pair_id, 2)
    assert next(db.query("SELECT seconds FROM ratings WHERE pair_id = ?", [lunch.pair_id]))["seconds"] == 7.0
    # A re-rating from elsewhere (no hold) keeps the seconds; a rating of a pair never held has none.
    submit_rating(db, "alice", lunch.pair_id, 0)
    assert next(db.query("SELECT seconds FROM ratings WHERE pair_id = ?", [lunch.pair_id]))["seconds"] == 7.0
    never_held = next(db.query("SELECT id FROM pairs WHERE id NOT IN (SELECT pair_id FROM assignments) "
                               "AND id NOT IN (SELECT pair_id FROM ratings) ORDER BY id DESC LIMIT 1"))["id"]
    submit_rating(db, "bob", never_held, 1)
    assert next(db.query("SELECT seconds FROM ratings WHERE pair_id = ?", [never_held]))["seconds"] is None


def test_skip_and_undo_of_a_control_behave_as_for_a_pair(demo_db, clock):
    db = demo_db
    controls.set_rate(db, 0.5, actor="admin")
    control = next_pair(db, "alice", rng=CONTROL).pair_id
    assert skip_pair(db, "alice", control) is None
    assert list(db.query("SELECT 1 FROM skips WHERE pair_id = ?", [control]))
    assert not list(db.query("SELECT 1 FROM control_holds"))
    assert undo_last(db, "alice") == store_ratings.Undone(control, "skip")
    clock.now += 5
    assert next_pair(db, "alice", rng=REGULAR).pair_id == control, "undo of a skip serves the control again"
    clock.now += 3
    submit_rating(db, "alice", control, 0, "off topic")
    assert next(db.query("SELECT seconds FROM control_answers"))["seconds"] == 8.0
    regular = next_pair(db, "alice", rng=REGULAR).pair_id  # on screen when undo is pressed: goes back
    undone = undo_last(db, "alice")
    assert undone == store_ratings.Undone(control, "rating", 0, "off topic")
    assert not list(db.query("SELECT 1 FROM control_answers"))
    assert not list(db.query("SELECT 1 FROM assignments WHERE pair_id = ?", [regular]))
    view = next_pair(db, "alice", rng=REGULAR)
    assert view.pair_id == control and view.my_rating is None
    # The same sequence on a regular pair returns the same kind of values.
    submit_rating(db, "alice", control, 1)
    pair = next_pair(db, "alice", rng=REGULAR).pair_id
    submit_rating(db, "alice", pair, 0, "off topic")
    assert undo_last(db, "alice") == store_ratings.Undone(pair, "rating", 0, "off topic")


def test_a_control_looks_like_a_pair_in_the_view_and_in_progress(demo_db):
    db = demo_db
    controls.set_rate(db, 0.5, actor="admin")
    before = progress(db, "alice")
    control = next_pair(db, "alice", rng=CONTROL)
    submit_rating(db, "alice", control.pair_id, 1)
    regular = next_pair(db, "alice", rng=REGULAR)
    assert [f.name for f in fields(control)] == [f.name for f in fields(regular)]
    assert (control.my_rating, control.my_note, regular.my_rating, regular.my_note) == (None, "", None, "")
    after = progress(db, "alice")
    assert (after.mine_today, after.mine_total) == (before.mine_today + 1, before.mine_total + 1)
    assert after.total_pairs == before.total_pairs == 180, "the demo's controls are double-rated: work done"
    submit_rating(db, "alice", regular.pair_id, 1)
    assert progress(db, "alice").mine_total == before.mine_total + 2


def test_left_in_my_queue_drops_by_one_for_a_control_as_for_a_pair(demo_db):
    db = demo_db
    controls.set_rate(db, 0.2, actor="admin")
    gold = control_ids(db)
    left = progress(db, "alice").queue_left
    assert left > progress(db, "alice").total_pairs - progress(db, "alice").double_rated - 60, "sanity"
    kinds = set()
    for rng in (CONTROL, REGULAR, CONTROL, REGULAR, REGULAR, CONTROL):
        view = next_pair(db, "alice", rng=rng)
        kinds.add(view.pair_id in gold)
        submit_rating(db, "alice", view.pair_id, 1)
        now = progress(db, "alice").queue_left
        assert now == left - 1, "the counter moves the same way whatever was served"
        left = now
    assert kinds == {True, False}
    # With controls off, a regular pair still counts one and nothing is promised for controls.
    controls.set_rate(db, 0, actor="admin")
    p = progress(db, "alice")
    assert p.queue_left <= p.total_pairs


def test_qualification_serves_controls_first_and_is_shown_not_blocking(demo_db):
    db = demo_db
    controls.set_qualification(db, 3, 0.8, actor="admin")  # rate 0: only the qualification serves controls
    gold = control_ids(db)
    expected = {r["pair_id"]: r["label"] for r in db.query("SELECT pair_id, label FROM controls")}
    left = progress(db, "alice").queue_left
    for i in range(3):
        view = next_pair(db, "alice", rng=REGULAR)
        assert view.pair_id in gold, f"qualification pair {i + 1} is a control"
        submit_rating(db, "alice", view.pair_id, expected[view.pair_id] if i else (expected[view.pair_id] + 1) % 3)
        assert progress(db, "alice").queue_left == left - i - 1
    assert next_pair(db, "alice", rng=REGULAR).pair_id not in gold, "qualified: regular pairs follow"
    assert controls.qualification(db) == [
        {"name": "alice", "answered": 3, "correct": 2, "accuracy": 0.6667, "status": "failed"}]
    assert controls.status(db)["qualification"][0]["status"] == "failed"
    # Someone who has rated already is not asked to qualify.
    assert next_pair(db, "Dr. Smith", rng=REGULAR).pair_id not in gold


def test_release_session_and_the_hold_timeout_free_a_control(demo_db, clock):
    db = demo_db
    controls.set_rate(db, 0.5, actor="admin")
    next_pair(db, "alice", session="s1", rng=CONTROL)
    assert release_session(db, "s1") == 1 and not list(db.query("SELECT 1 FROM control_holds"))
    held = next_pair(db, "alice", rng=CONTROL).pair_id
    clock.now += 31 * 60
    assert next_pair(db, "alice", rng=REGULAR).pair_id != held, "an abandoned control hold expires"


def test_add_from_gold_prefers_decisions_is_idempotent_and_clear_keeps_answers(demo):
    from studio.store.adjudication import adjudicate, disagreements

    with opened(demo.db_path) as db:
        case = disagreements(db)[0]["pair_id"]
        adjudicate(db, "Prof. Chen (陈教授)", case, 2)
        first = controls.add_from_gold(db, n=5, seed=1, actor="admin")
        assert (first["added"], first["existing"], first["by_origin"]["adjudicated"]) == (5, 0, 1)
        assert case in control_ids(db)
        assert next(db.query("SELECT label, origin FROM controls WHERE pair_id = ?", [case])) == \
            {"label": 2, "origin": "adjudicated"}
        again = controls.add_from_gold(db, n=5, seed=1, actor="admin")
        assert (again["added"], again["existing"], again["controls"]) == (0, 5, 5)
        assert controls.add_from_gold(db, actor="admin")["controls"] == 81
        ensure_annotator(db, "alice")
        controls.set_rate(db, 0.5, actor="admin")
        view = next_pair(db, "alice", rng=CONTROL)
        submit_rating(db, "alice", view.pair_id, 1)
        assert controls.clear_controls(db, actor="admin") == {"removed": 81, "answers_kept": 1}
        assert control_ids(db) == set() and controls.status(db)["answers"] == 1
        actions = [r["action"] for r in db.query("SELECT action FROM audit_log WHERE entity = 'controls'")]
        assert actions == ["controls.add", "controls.add", "controls.add", "controls.clear"]


@pytest.mark.parametrize("call, code", [
    (lambda db: controls.set_rate(db, 0.6, actor="a"), "controls_rate_range"),
    (lambda db: controls.set_rate(db, float("nan"), actor="a"), "controls_rate_range"),
    (lambda db: controls.set_rate(db, -0.1, actor="a"), "controls_rate_range"),
    (lambda db: controls.set_qualification(db, 2.5, 0.8, actor="a"), "controls_first_range"),
    (lambda db: controls.set_qualification(db, 5, 1.5, actor="a"), "controls_pass_mark_range"),
    (lambda db: controls.set_min_accuracy(db, 2, actor="a"), "controls_min_accuracy_range"),
    (lambda db: controls.add_from_gold(db, n=0, actor="a"), "controls_bad_n"),
    (lambda db: controls.add_from_gold(db, actor="a"), "controls_no_gold"),
])
def test_settings_out_of_range_are_clear_errors(db, call, code):
    with pytest.raises(StudioError) as info:
        call(db)
    assert info.value.code == code
    assert "error." not in info.value.message("en") and "error." not in info.value.message("zh-CN")
    assert controls.settings(db) == {"rate": 0.0, "qualify_first": 0, "pass_mark": 0.8, "min_accuracy": 0.7}


def run(db_path, *args):
    return CliRunner().invoke(cli, ["--db", str(db_path), *args], catch_exceptions=False)


def test_cli_verbs(demo):
    path = demo.db_path
    added = run(path, "controls", "add", "--from-gold", "--n", "10", "--json")
    assert added.exit_code == 0, added.output
    assert json.loads(added.output)["added"] == 10
    assert "0 control pairs added, 10 already controls" in run(path, "controls", "add", "--from-gold", "--n", "10").output
    rate = run(path, "controls", "rate", "0.2", "--min-accuracy", "0.6")
    assert rate.exit_code == 0 and "serving: 0.2 of the pairs served" in rate.output
    qualify = run(path, "controls", "qualify", "--first", "5", "--pass-mark", "0.9")
    assert qualify.exit_code == 0 and "first 5 pairs are controls, pass mark 0.9" in qualify.output
    status = json.loads(run(path, "controls", "status", "--json").output)
    assert (status["controls"], status["rate"], status["min_accuracy"], status["qualify_first"],
            status["pass_mark"]) == (10, 0.2, 0.6, 5, 0.9)
    assert sum(status["by_label"].values()) == 10
    assert "10 control pairs" in run(path, "controls").output
    bad = run(path, "controls", "rate", "0.9")
    assert bad.exit_code == 1 and "from 0.0 to 0.5" in bad.output and "Traceback" not in bad.output
    assert run(path, "controls", "qualify", "--first", "0").exit_code == 0
    cleared = run(path, "controls", "clear")
    assert cleared.exit_code == 0 and "10 control pairs removed" in cleared.output
    assert run(path, "controls", "add").exit_code == 2, "--from-gold is required"


def test_the_panel_in_import_shows_status_and_failures_in_both_languages(demo):
    from studio.ui.context import UIContext, make_i18n
    from studio.ui.tabs import import_

    ctx = UIContext(demo.db_path, make_i18n())
    message, status = import_.run_controls_add(ctx, 4, "en")
    assert "4 control pairs added" in message and "4 control pairs" in status
    message, status = import_.run_controls_rate(ctx, 0.9, 0.7, "zh-CN")
    assert "rs-error" in message and "0.5" in message
    message, status = import_.run_controls_rate(ctx, 0.2, 0.7, "zh-CN")
    assert "已保存" in message and "20%" in status
    message, status = import_.run_controls_qualify(ctx, 2, 1.0, "en")
    with opened(demo.db_path) as db:
        ensure_annotator(db, "alice")
        for _ in range(2):
            view = next_pair(db, "alice", rng=REGULAR)
            wrong = (controls.label_of(db, view.pair_id) + 1) % 3
            submit_rating(db, "alice", view.pair_id, wrong)
    rate, min_accuracy, first, mark, status = import_.controls_panel(ctx, "en")
    assert (rate, min_accuracy, first, mark) == (0.2, 0.7, 2, 1.0)
    assert "Failed the qualification" in status and "alice (0/2)" in status
    assert "资格测试" in import_.controls_panel(ctx, "zh-CN")[-1]
    message, status = import_.run_controls_clear(ctx, "en")
    assert "4 control pairs removed" in message
