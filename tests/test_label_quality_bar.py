"""Issue #29's bar, end to end on a small scale: a simulated team of five rates through ②'s own functions
(`next_pair` / `submit_rating`, with the server's clock) after ``studio controls add --from-gold`` and ``studio
controls rate 0.2``; ``studio annotators report --json`` must flag the careless rater ``low_control_accuracy``, the
lenient one ``lenient``, the fast one ``fast`` and neither good rater; no pair has more than two ratings and no
control answer is stored as a rating; ``studio judge --model default --json`` reports ``kappa_vs_gold`` equal to
scikit-learn's on the labels it returns. (bench/label_quality.py runs the same on the man-page sets.)"""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from sklearn.metrics import cohen_kappa_score

from studio.cli import cli
from studio.ingest.records import Document, ImportBatch, PairRecord, Query
from studio.store import connect, opened
from studio.store import ratings as store_ratings
from studio.store.annotators import ensure_annotator
from studio.store.imports import import_batch

TEAM = ("good1", "good2", "careless", "lenient", "fast")
N_PAIRS, N_CONTROLS = 220, 40
SECONDS = 20.0
TOPICS = ["kernel modules", "file permissions", "network sockets", "process signals", "disk quotas",
          "cron schedules", "locale settings", "shell history", "mail delivery", "printer queues", "time zones"]


def truth_of(i: int) -> int:
    """Gold mostly irrelevant, as pooled relevance data is: 0 ×13, 1 ×4, 2 ×3 in every 20."""
    return 0 if i % 20 < 13 else 1 if i % 20 < 17 else 2


def records(n: int) -> list[PairRecord]:
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        text = {2: f"How to configure {topic}: the steps and the options, explained.",
                1: f"A note that mentions {topic} in passing among other things.",
                0: f"Recipes for bread and cakes, number {i}."}[truth_of(i)]
        out.append(PairRecord(Query(f"how do I configure {topic} ({i})", f"q{i}"), Document(text, f"d{i}"),
                              line=i + 2, reference_label=truth_of(i)))
    return out


class Rater:
    """How one simulated person labels a pair whose gold label is `truth`, and how long they take."""

    def __init__(self, name: str, seed: int):
        self.name, self.rng = name, random.Random(seed)

    def label(self, truth: int) -> int:
        if self.name == "careless":
            return self.rng.randrange(3)
        if self.name == "lenient" and truth == 0 and self.rng.random() < 0.6:
            return 1
        if self.name.startswith("good") and self.rng.random() < 0.08:
            return max(0, min(2, truth + self.rng.choice((-1, 1))))  # a slip either way
        return truth

    def seconds(self) -> float:
        return (SECONDS / 15 if self.name == "fast" else SECONDS) * self.rng.uniform(0.7, 1.3)


def run(db_path, *args) -> str:
    result = CliRunner().invoke(cli, ["--db", str(db_path), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout  # progress bars go to stderr


@pytest.fixture(scope="module")
def rated(tmp_path_factory):
    """The project after the team has rated every pair they were served (module scope: built once)."""
    path = tmp_path_factory.mktemp("bar") / "studio.db"
    db = connect(path)
    import_batch(db, ImportBatch("import", "heldout.csv", records(N_PAIRS)))
    for name in TEAM:
        ensure_annotator(db, name)
    truth = {r["id"]: r["reference_label"] for r in db.query("SELECT id, reference_label FROM pairs")}
    db.close()
    run(path, "controls", "add", "--from-gold", "--n", str(N_CONTROLS))
    run(path, "controls", "rate", "0.2")

    clock = SimpleNamespace(now=1_000_000.0)
    patch = pytest.MonkeyPatch()
    patch.setattr(store_ratings, "time", SimpleNamespace(time=lambda: clock.now))
    random.seed(7)  # the control draw
    people = {name: Rater(name, seed) for seed, name in enumerate(TEAM)}
    served = {name: 0 for name in TEAM}
    db = connect(path)
    try:
        busy = True
        while busy:
            busy = False
            for name, rater in people.items():
                view = store_ratings.next_pair(db, name)
                if view is None:
                    continue
                busy = True
                served[name] += 1
                clock.now += rater.seconds()
                store_ratings.submit_rating(db, name, view.pair_id, rater.label(truth[view.pair_id]))
    finally:
        patch.undo()
        db.close()
    return SimpleNamespace(path=path, truth=truth, served=served)


def test_the_report_flags_the_careless_lenient_and_fast_raters_and_no_good_one(rated):
    report = json.loads(run(rated.path, "annotators", "report", "--json"))
    lines = {line["name"]: line for line in report["annotators"]}
    assert set(TEAM) <= set(lines)
    for name in TEAM:  # controls were served at about the rate asked: enough answers to judge each person
        assert lines[name]["control_answers"] >= 10, (name, lines[name])
        assert lines[name]["median_seconds"] is not None
    assert "low_control_accuracy" in lines["careless"]["flags"]
    assert "lenient" in lines["lenient"]["flags"]
    assert "fast" in lines["fast"]["flags"]
    assert lines["good1"]["flags"] == [] and lines["good2"]["flags"] == []
    assert lines["fast"]["median_seconds"] < SECONDS / 5 < lines["good1"]["median_seconds"]


def test_controls_never_become_ratings_and_no_pair_has_three(rated):
    with opened(rated.path) as db:
        assert next(db.query("SELECT max(n) AS m FROM (SELECT count(*) AS n FROM ratings GROUP BY pair_id)"))["m"] <= 2
        answers = next(db.query("SELECT count(*) AS n FROM control_answers"))["n"]
        assert answers >= 10 * len(TEAM)
        as_ratings = next(db.query("SELECT count(*) AS n FROM control_answers c JOIN ratings r "
                                   "ON r.pair_id = c.pair_id AND r.annotator_id = c.annotator_id"))["n"]
        assert as_ratings == 0
        rated_controls = next(db.query("SELECT count(*) AS n FROM ratings r JOIN controls c "
                                       "ON c.pair_id = r.pair_id"))["n"]
        assert rated_controls == 0  # a control is never served as a pair to rate
        # every served item was either a rating or a control answer of that person
        for name, n in rated.served.items():
            got = next(db.query("SELECT (SELECT count(*) FROM ratings r WHERE r.annotator_id = a.id) + "
                                "(SELECT count(*) FROM control_answers c WHERE c.annotator_id = a.id) AS n "
                                "FROM annotators a WHERE a.name = ?", [name]))["n"]
            assert got == n


def test_judge_default_reports_kappa_vs_gold_equal_to_scikit_learn(rated):
    out = json.loads(run(rated.path, "judge", "--model", "default", "--pairs", "gold", "--json"))
    assert out["judgments"]
    with opened(rated.path) as db:
        gold = {(r["q"], r["d"]): r["label"] for r in db.query(
            "SELECT q.key AS q, d.key AS d, g.label FROM gold g JOIN queries q ON q.id = g.query_id "
            "JOIN documents d ON d.id = g.document_id WHERE g.label IS NOT NULL")}
    scored = [j for j in out["judgments"] if (j["query_id"], j["doc_id"]) in gold]
    assert len(scored) == out["kappa_pairs"] and out["kappa_on"] == "cross-fitted"  # out of fold, on every gold pair
    ours = cohen_kappa_score([gold[(j["query_id"], j["doc_id"])] for j in scored], [j["label"] for j in scored])
    assert out["kappa_vs_gold"] == pytest.approx(ours, abs=1e-9)
