"""A model as a third rater through the actions and `studio judge`: κ against gold equals scikit-learn's on the
labels it returns, judgments never enter ratings or gold, second looks and triage are counted, survive a queue
strategy and are undone; only an admin runs them, an expert reads them."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from sklearn.metrics import cohen_kappa_score

from actors import ANNOTATOR, EXPERT, ADMIN, assert_refused
from studio.actions import Project, judge
from studio.cli import cli
from studio.errors import StudioError
from studio.raters import KINDS
from studio.store import judgments, opened
from studio.store import queue as store_queue
from studio.store.gold import gold_set

DENSE = next(k for k in KINDS.values() if k.model_use == "embedder")
RERANKER = next(k for k in KINDS.values() if k.model_use == "reranker")


def snapshot(db_path) -> tuple:
    """What a model's label must never change: ratings, adjudications and the gold view."""
    with opened(db_path) as db:
        return tuple(list(db.query(f"SELECT * FROM {table} ORDER BY 1, 2")) for table in
                     ("ratings", "adjudications", "gold"))


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    """The demo project judged once by the ★ (embedded) model — its gold pairs through `studio judge --json`, its
    queue through the action — with what the gold looked like before."""
    from studio.demo import load_demo

    path = tmp_path_factory.mktemp("judged") / "studio.db"
    with opened(path) as db:
        load_demo(db)
    before = snapshot(path)
    done = CliRunner().invoke(cli, ["--db", str(path), "judge", f"--{DENSE.name}", "default", "--json"],
                              catch_exceptions=False)
    assert done.exit_code == 0, done.output
    on_gold = json.loads(done.stdout)
    on_queue = judge.judge(Project(path), ADMIN, DENSE.name, "default", pairs="queue")
    return path, before, on_gold, on_queue


@pytest.fixture
def copy(judged, tmp_path) -> Project:
    """A fresh copy of the judged project for a test that changes it."""
    shutil.copy(judged[0], tmp_path / "studio.db")
    return Project(tmp_path / "studio.db")


def test_kappa_vs_gold_is_scikit_learns_on_the_labels_it_returns(judged):
    path, _, result, _ = judged
    assert result["rater"] == f"{DENSE.name}:all-MiniLM-L6-v2", "'default' is named as the ★ model it means"
    with opened(path) as db:
        gold = gold_set(db).labels
    pairs = [(gold[j["query_id"]][j["doc_id"]], j["label"]) for j in result["judgments"]]
    assert len(pairs) == result["kappa_pairs"] == 80, "every gold pair of the demo, by its external ids"
    assert result["kappa_vs_gold"] == pytest.approx(cohen_kappa_score([g for g, _ in pairs], [m for _, m in pairs]),
                                                    abs=1e-12)
    assert result["kappa_on"] == "cross-fitted" and 0 < result["kappa_vs_gold"] < 1
    assert {j["label"] for j in result["judgments"]} <= {0, 1, 2} and all(j["score"] is not None
                                                                         for j in result["judgments"])


def test_judgments_never_enter_ratings_or_gold(judged):
    path, before, _, on_queue = judged
    assert snapshot(path) == before
    assert on_queue["kappa_vs_gold"] is None and on_queue["kappa_pairs"] == 0 and on_queue["asked"] == 100
    with opened(path) as db:
        assert next(db.query("SELECT count(*) AS n FROM gold WHERE label IS NOT NULL"))["n"] == 80


def test_an_expert_reads_the_raters_kappa_against_gold_and_each_person(judged):
    path, _, result, _ = judged
    (rater,) = judge.list_raters(Project(path), EXPERT)
    assert rater["rater"] == result["rater"] and rater["judged"] == 180
    assert rater["kappa_vs_gold"] == pytest.approx(result["kappa_vs_gold"]) and rater["kappa_pairs"] == 80
    assert len(rater["kappa_vs_people"]) == 3 and all(v["pairs"] > 0 for v in rater["kappa_vs_people"].values())


def test_only_an_admin_runs_and_uses_a_rater(copy):
    rater = judge.list_raters(copy, EXPERT)[0]["rater"]
    assert_refused(copy, EXPERT, judge.judge, DENSE.name, "default")
    assert_refused(copy, EXPERT, judge.second_look, rater)
    assert_refused(copy, EXPERT, judge.triage, rater)
    assert_refused(copy, ANNOTATOR, judge.list_raters)


def test_second_look_sends_agreed_pairs_the_model_contradicts_to_adjudication_and_undoes(copy):
    rater_name = judge.list_raters(copy, EXPERT)[0]["rater"]
    with opened(copy.db_path) as db:
        rater = judgments.rater(db, rater_name)
        agreed = list(db.query("SELECT pair_id, lo FROM pair_ratings WHERE n = 2 AND lo = hi AND lo IN (0, 2) "
                               "ORDER BY pair_id LIMIT 2"))
        # the model contradicts two agreed pairs by two levels (and agrees on every other)
        rows = [(r["pair_id"], 2 - r["lo"], None, None) for r in agreed]
        others = [(j["pair_id"], j["gold"], j["score"], None) for j in judgments.judgments(db, rater["id"])
                  if j["gold"] is not None and j["pair_id"] not in {r["pair_id"] for r in agreed}]
        judgments.save_judgments(db, rater["id"], rows + others, actor="test")
    before = snapshot(copy.db_path)
    done = judge.second_look(copy, ADMIN, rater_name)
    assert done == {"added": 2, "open": 2}
    assert judge.second_look(copy, ADMIN, rater_name) == {"added": 0, "open": 2}, "an open second look stays one"
    with opened(copy.db_path) as db:
        opened_rows = list(db.query("SELECT pair_id, model_label, agreed_label FROM second_looks ORDER BY pair_id"))
    assert [(r["pair_id"], r["model_label"], r["agreed_label"]) for r in opened_rows] == [
        (r["pair_id"], 2 - r["lo"], r["lo"]) for r in agreed]
    assert snapshot(copy.db_path) == before, "a second look changes no rating and no gold label"
    assert judge.list_raters(copy, EXPERT)[0]["second_looks"] == 2
    with opened(copy.db_path) as db:  # an expert decides the first in ④: settled, no longer open, kept by undo
        expert = next(db.query("SELECT id FROM annotators WHERE role = 'expert' LIMIT 1"))["id"]
        db.execute("INSERT INTO adjudications (pair_id, label, expert_id) VALUES (?, ?, ?)",
                   [agreed[0]["pair_id"], 2 - agreed[0]["lo"], expert])
        db.conn.commit()
    assert judge.list_raters(copy, EXPERT)[0]["second_looks"] == 1
    assert judge.second_look(copy, ADMIN, rater_name, undo=True) == {"removed": 1, "open": 0}
    with opened(copy.db_path) as db:
        assert [r["pair_id"] for r in db.query("SELECT pair_id FROM second_looks")] == [agreed[0]["pair_id"]]
        actions = [r["action"] for r in db.query("SELECT action FROM audit_log ORDER BY id")]
    assert actions[-3:] == ["judge.second_look", "judge.second_look", "judge.second_look_undo"]


def test_triage_sends_confident_zeros_back_keeps_an_audit_sample_survives_a_strategy_and_undoes(copy):
    rater_name = judge.list_raters(copy, EXPERT)[0]["rater"]
    with opened(copy.db_path) as db:
        order_before = store_queue.serving_order(db, 1000)
    done = judge.triage(copy, ADMIN, rater_name, audit=0.1, seed=1)
    assert done["back"] > 0 and done["audit"] >= 1 and done["triage_back"] == done["back"]
    assert done["audit"] == -(-(done["back"] + done["audit"]) // 10), "a tenth (rounded up) stays served"
    with opened(copy.db_path) as db:
        rows = {r["pair_id"]: r["audit"] for r in db.query("SELECT pair_id, audit FROM triage")}
        back = sorted(p for p, a in rows.items() if not a)
        order = store_queue.serving_order(db, 1000)
        scores = {j["pair_id"]: j for j in judgments.judgments(db, judgments.rater(db, rater_name)["id"])}
        settings = judgments.rater(db, rater_name)["settings"]
    assert all(scores[p]["label"] == 0 and scores[p]["score"] <= settings["thresholds"]["sure_irrelevant"]
               for p in rows), "only confident zeros"
    assert order[-len(back):] == back, "the triaged pairs are served last"
    assert [p for p in order if p not in back] == [p for p in order_before if p not in back]
    assert judge.triage(copy, ADMIN, rater_name)["back"] == 0, "triaging again adds nothing"

    with opened(copy.db_path) as db:  # an admin chooses a queue strategy: every untouched pair is ordered anew
        ids = [p["id"] for p in store_queue.untouched_pairs(db)]
        store_queue.apply_order(db, "test-order", list(reversed(ids)), actor="test")
        assert store_queue.serving_order(db, 1000)[-len(back):] == back, "triage survives a strategy"

    undone = judge.triage(copy, ADMIN, rater_name, undo=True)
    assert undone["removed"] == len(rows) and undone["triage_back"] == undone["triage_audit"] == 0
    with opened(copy.db_path) as db:
        assert all(r["priority"] is None for r in db.query(
            f"SELECT priority FROM pairs WHERE id IN ({','.join(map(str, back))})"))
    with pytest.raises(StudioError) as err:
        judge.triage(copy, ADMIN, rater_name, audit=1.0)
    assert err.value.code == "bad_audit_share"


def test_a_reranker_rates_the_gold_pairs_too(demo, tiny_reranker):
    result = judge.judge(demo, ADMIN, RERANKER.name, str(tiny_reranker), limit=10)
    assert result["rater"].startswith(f"{RERANKER.name}:") and result["settings"]["scored_by"] == "reranker"
    with opened(demo.db_path) as db:
        gold = gold_set(db).labels
    labels = [(gold[j["query_id"]][j["doc_id"]], j["label"]) for j in result["judgments"]]
    expected = cohen_kappa_score([g for g, _ in labels], [m for _, m in labels], labels=[0, 1, 2])
    assert result["kappa_pairs"] == 10 and (result["kappa_vs_gold"] is None or
                                             result["kappa_vs_gold"] == pytest.approx(expected))


@pytest.mark.parametrize("kind, spec, options, code", [
    (RERANKER.name, "default", {}, "model_not_reranker"),
    (DENSE.name, "default", {"pairs": "everything"}, "bad_pairs_choice"),
    ("oracle", "x", {}, "bad_rater_kind"),
])
def test_mistakes_are_said_in_the_studios_words(demo, kind, spec, options, code):
    with pytest.raises(StudioError) as err:
        judge.judge(demo, ADMIN, kind, spec, **options)
    assert err.value.code == code


def test_calibration_needs_gold_on_two_queries(db_path):
    from conftest import make_batch
    from studio.store.imports import import_batch

    with opened(db_path) as db:  # gold on one query only: nothing to fit one half on and check on the other
        import_batch(db, make_batch(1, ratings=[(0, "alice", 2), (0, "bob", 2)]))
    with pytest.raises(StudioError) as err:
        judge.judge(Project(db_path), ADMIN, DENSE.name, "default")
    assert err.value.code == "judge_needs_gold_queries"


def test_the_cli_lists_triages_and_undoes(copy):
    def run(*args: str):
        return CliRunner().invoke(cli, ["--db", str(copy.db_path), "judge", *args], catch_exceptions=False)

    done = run()
    assert done.exit_code != 0 and all(f"--{k}" in done.output for k in KINDS), "exactly one rater option"
    rater = json.loads(run("list", "--json").stdout)["raters"][0]
    assert rater["kappa_pairs"] == 80
    triaged = json.loads(run("triage", "--rater", rater["rater"], "--audit", "0.2", "--json").stdout)
    assert triaged["triage_back"] == triaged["back"] > 0
    assert "taken back" in run("triage", "--rater", rater["rater"], "--undo").stdout
    looks = json.loads(run("second-look", "--rater", rater["rater"], "--json").stdout)
    assert looks["added"] == looks["open"] == judge.list_raters(copy, EXPERT)[0]["second_looks"]
    missing = run("second-look", "--rater", "model:nope")
    assert missing.exit_code == 1 and "no model rater 'model:nope'" in missing.output
