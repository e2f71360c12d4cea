"""④ works like ②: skip a case (to the end of this expert's list), undo the last decision (the case comes back), change
a decision (audited before/after), filter by annotator pair or query — and second looks (two people agreed, a model
rater confidently did not) as cases of their own kind, settled by the expert's decision and by nothing else."""

from __future__ import annotations

import pytest

from conftest import make_batch
from studio.errors import RuleError, StudioError
from studio.store import adjudication as adj
from studio.store.annotators import ensure_annotator
from studio.store.audit import history
from studio.store.imports import import_batch


@pytest.fixture
def cases(db):
    """p0: alice 2 / bob 0 (width 2); p1: alice 1 / bob 1, a model said 0 (a second look); p2: alice 2 / carol 1;
    p3: alice 0 / bob 0 (agreed, nothing to decide); experts eve and frank. Returns (db, {name: pair id})."""
    import_batch(db, make_batch(4, source="ratings", ratings=[
        (0, "alice", 2), (0, "bob", 0), (1, "alice", 1), (1, "bob", 1), (2, "alice", 2), (2, "carol", 1),
        (3, "alice", 0), (3, "bob", 0)]))
    ensure_annotator(db, "eve", "expert")
    ensure_annotator(db, "frank", "expert")
    ids = {f"p{i}": next(db.query("SELECT p.id FROM pairs p JOIN queries q ON q.id = p.query_id WHERE q.key = ?",
                                  [f"q{i}"]))["id"] for i in range(4)}
    db.execute("INSERT INTO model_raters (name, kind, spec, created_by) VALUES ('model:default', 'model', "
               "'default', 'root')")
    db.execute("INSERT INTO judgments (rater_id, pair_id, label, score) VALUES (1, ?, 0, 0.02)", [ids["p1"]])
    db.execute("INSERT INTO second_looks (pair_id, rater_id, model_label, agreed_label, created_by) "
               "VALUES (?, 1, 0, 1, 'root')", [ids["p1"]])
    return db, ids


def order(db, expert: str, **filters) -> list[int]:
    return [c["pair_id"] for c in adj.open_cases(db, expert, **filters)]


def gold(db, pair_id: int) -> tuple:
    row = next(db.query("SELECT label, origin FROM gold WHERE pair_id = ?", [pair_id]))
    return row["label"], row["origin"]


def test_second_looks_are_cases_of_their_own_kind_and_the_model_alone_changes_no_gold(cases):
    db, p = cases
    assert order(db, "eve") == [p["p0"], p["p1"], p["p2"]], "widest first, then pair id; agreed p3 is no case"
    look = adj.open_cases(db, "eve")[1]
    assert (look["kind"], look["rating_a"], look["rating_b"], look["model_label"], look["agreed_label"],
            look["model_rater"], look["open"]) == ("second_look", 1, 1, 0, 1, "model:default", True)
    assert gold(db, p["p1"]) == (1, "agreed"), "a model's label never becomes gold by itself"
    with pytest.raises(RuleError) as err:
        adj.adjudicate(db, "eve", p["p3"], 1)
    assert err.value.code == "not_disagreement"


def test_deciding_a_second_look_settles_it_and_undo_brings_it_back(cases):
    db, p = cases
    decided = adj.adjudicate(db, "eve", p["p1"], 0, "the model is right: wrong drug")
    assert decided["second_look"]["model_label"] == 0 and decided["before"] is None
    assert list(db.query("SELECT * FROM second_looks")) == [] and gold(db, p["p1"]) == (0, "adjudicated")
    assert p["p1"] not in order(db, "eve")
    assert [c["pair_id"] for c in adj.decided_cases(db)] == [p["p1"]]
    undone = adj.undo_decision(db, "eve")
    assert (undone["pair_id"], undone["label"], undone["note"], undone["restored"], undone["second_look"]) == (
        p["p1"], 0, "the model is right: wrong drug", None, True)
    assert [(r["pair_id"], r["model_label"], r["agreed_label"]) for r in db.query("SELECT * FROM second_looks")] == [
        (p["p1"], 0, 1)]
    assert gold(db, p["p1"]) == (1, "agreed") and p["p1"] in order(db, "eve")
    entry = history(db, entity="pair", entity_id=p["p1"])[0]
    assert (entry["actor"], entry["action"], entry["before"]["label"]) == ("eve", "adjudicate.undo", 0)


def test_a_second_look_decided_in_one_transaction(cases, monkeypatch):
    """The second look goes only with the decision: when the audit entry fails, neither happens."""
    db, p = cases

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(adj, "record", broken)
    with pytest.raises(RuntimeError):
        adj.adjudicate(db, "eve", p["p1"], 0)
    assert len(list(db.query("SELECT * FROM second_looks"))) == 1
    assert list(db.query("SELECT * FROM adjudications")) == []


def test_skip_sends_a_case_to_the_end_of_this_experts_list_only(cases):
    db, p = cases
    adj.skip_case(db, "eve", p["p0"])
    assert order(db, "eve") == [p["p1"], p["p2"], p["p0"]]
    adj.skip_case(db, "eve", p["p1"])
    assert order(db, "eve") == [p["p2"], p["p0"], p["p1"]], "the case skipped last is at the very end"
    assert order(db, "frank") == [p["p0"], p["p1"], p["p2"]], "another expert's order is their own"
    assert [e["action"] for e in history(db, entity="pair")] == ["adjudicate.skip", "adjudicate.skip"]
    adj.adjudicate(db, "eve", p["p2"], 1)
    with pytest.raises(RuleError) as err:
        adj.skip_case(db, "eve", p["p2"])
    assert err.value.code == "case_decided"
    with pytest.raises(RuleError):
        adj.skip_case(db, "alice", p["p0"])  # only experts and admins


def test_undo_takes_back_the_last_decision_and_the_case_is_open_again(cases):
    db, p = cases
    adj.adjudicate(db, "eve", p["p0"], 1, "partly")
    adj.adjudicate(db, "eve", p["p2"], 2)
    assert adj.undo_decision(db, "eve")["pair_id"] == p["p2"]
    assert adj.undo_decision(db, "eve")["pair_id"] == p["p0"]
    assert order(db, "eve") == [p["p0"], p["p1"], p["p2"]] and list(db.query("SELECT * FROM adjudications")) == []
    with pytest.raises(StudioError) as err:
        adj.undo_decision(db, "eve")
    assert err.value.code == "nothing_to_undo_decision"
    with pytest.raises(StudioError):
        adj.undo_decision(db, "frank")  # nothing of theirs


def test_changing_a_decision_is_audited_and_undo_puts_the_earlier_one_back(cases):
    db, p = cases
    adj.adjudicate(db, "eve", p["p0"], 1, "partly")
    changed = adj.adjudicate(db, "frank", p["p0"], 2, "answers it fully")
    assert changed["before"] == {"label": 1, "expert": "eve", "note": "partly"} and gold(db, p["p0"]) == (2,
                                                                                                        "adjudicated")
    entry = history(db, entity="pair", entity_id=p["p0"])[0]
    assert (entry["before"]["label"], entry["after"]["label"], entry["actor"]) == (1, 2, "frank")
    with pytest.raises(StudioError):
        adj.undo_decision(db, "eve")  # her decision was changed since: no longer hers to take back
    undone = adj.undo_decision(db, "frank")
    assert undone["restored"] == {"label": 1, "expert": "eve", "note": "partly"}
    row = next(db.query("SELECT a.label, e.name, a.note FROM adjudications a JOIN annotators e ON e.id = a.expert_id"))
    assert (row["label"], row["name"], row["note"]) == (1, "eve", "partly")
    assert adj.undo_decision(db, "eve")["restored"] is None, "eve's decision is in effect again, so hers to undo"
    assert p["p0"] in order(db, "eve")


def test_filters_by_annotator_pair_in_either_order_and_by_query_text(cases):
    db, p = cases
    assert order(db, "eve", annotators=("carol", "alice")) == [p["p2"]]
    assert order(db, "eve", annotators=("alice", "bob")) == [p["p0"], p["p1"]]
    assert order(db, "eve", query="QUERY 2") == [p["p2"]]
    assert order(db, "eve", query="diabetes", annotators=("bob", "alice")) == [p["p0"], p["p1"]]
    assert order(db, "eve", query="no such words") == []
    assert adj.annotator_pairs(db) == [("alice", "bob"), ("alice", "carol")]
    adj.adjudicate(db, "eve", p["p2"], 1)
    assert [c["pair_id"] for c in adj.decided_cases(db, annotators=("alice", "carol"))] == [p["p2"]]
    assert adj.decided_cases(db, query="query 0") == []


def test_the_tab_skips_undoes_changes_filters_and_shows_a_second_look(db_path):
    """④'s handlers, as its buttons, keys and filters call them, over the demo project (20 disagreements)."""
    import json

    from studio.demo import load_demo
    from studio.store import opened
    from studio.ui.context import UIContext, make_i18n
    from studio.ui.tabs import adjudicate

    with opened(db_path) as db:
        load_demo(db)
        db.execute("INSERT INTO model_raters (name, kind, spec, created_by) VALUES ('model:default', 'model', "
                   "'default', 'root')")
        agreed = next(db.query("SELECT g.pair_id, g.label, q.text FROM gold g JOIN queries q ON q.id = g.query_id "
                               "WHERE g.origin = 'agreed' AND g.label = 2 AND g.query_id NOT IN (SELECT p.query_id "
                               "FROM pairs p JOIN pair_ratings r ON r.pair_id = p.id WHERE r.lo != r.hi) "
                               "ORDER BY g.pair_id LIMIT 1"))
    ctx, chen = UIContext(db_path, make_i18n()), "Prof. Chen (陈教授)"
    card, first, count, _, _ = adjudicate.current_case(ctx, "en", picked=chen)
    assert "20" in count and "second looks waiting" in count and "decided" in count

    skipped = adjudicate.skip(ctx, chen, first, "en")
    assert f"Skipped pair #{first}" in skipped[3] and skipped[1] != first
    decided = adjudicate.decide(ctx, chen, skipped[1], 2, "clear answer", "en")
    assert f"Final label for pair #{skipped[1]}: 2 · Relevant" in decided[3] and decided[5] == ""
    undone = adjudicate.undo(ctx, chen, "en")
    assert undone[1] == skipped[1] and "taken back" in undone[3] and undone[5] == "clear answer", "reason is back"

    adjudicate.decide(ctx, chen, undone[1], 2, "", "en")
    picked = adjudicate.current_case(ctx, "zh-CN", picked=chen, pick=undone[1])
    assert picked[1] == undone[1] and "已裁决：2 · 相关" in picked[0]
    changed = adjudicate.decide(ctx, chen, undone[1], 0, "misread it", "en")
    assert f"pair #{undone[1]} changed: 2 · Relevant → 0 · Irrelevant" in changed[3]

    choices = changed[6]["choices"]
    label, value = choices[1]
    a, b = json.loads(value)
    filtered = adjudicate.decide(ctx, None, None, 1, "", "en", pair_filter=value)  # no expert picked: asks for one
    assert "Choose an expert first" in filtered[3]
    card, shown, *_ = adjudicate.current_case(ctx, "en", picked=chen, pair_filter=value)
    assert a in card and b in card and label == f"{a} × {b}"

    with opened(db_path) as db:  # the model rater's helper opens a second look on a pair two people agreed on
        db.execute("INSERT INTO second_looks (pair_id, rater_id, model_label, agreed_label, created_by) "
                   "VALUES (?, 1, 0, 2, 'root')", [agreed["pair_id"]])
    card, shown, *_ = adjudicate.current_case(ctx, "zh-CN", picked=chen, query=agreed["text"][:6])
    assert shown == agreed["pair_id"] and "复核：两位标注员都评为 2 · 相关；模型评分者（model:default）评为 0 · 不相关" in card
    settled = adjudicate.decide(ctx, chen, shown, 2, "the model misread it", "en", query=agreed["text"][:6])
    assert "No open case matches the filter" in settled[0]
