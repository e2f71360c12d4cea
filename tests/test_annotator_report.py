"""The annotator report on a simulated team of five who rate through ② (`next_pair` / `submit_rating`): two good
raters, a careless one (random labels), a lenient one (rates irrelevant pairs 1 six times in ten) and a fast one
(right, at a fifteenth of the others' time). Control answers, controls and times are written with SQL, as the serving
side would write them; all of it two days ago (an annotator's own line shows their work up to yesterday)."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sklearn.metrics import cohen_kappa_score

from actors import ADMIN
from conftest import make_batch
from studio.actions import Actor, Project, raters
from studio.cli import cli
from studio.ingest.records import Document, ImportBatch, PairRecord, Query
from studio.raters.report import build_report, wilson_interval
from studio.store import connect, opened
from studio.store.annotators import ensure_annotator
from studio.store.imports import import_batch
from studio.store.adjudication import adjudicate
from studio.store.audit import history
from studio.store.rater_stats import read_stats, start_of_utc_day
from studio.store.ratings import next_pair, submit_rating, undo_last

TEAM = ("careless", "fast", "good1", "good2", "lenient")
N_PAIRS, N_CONTROLS = 70, 15
BASE_SECONDS = 20.0


def truth_of(i: int) -> int:
    """Gold labels mostly irrelevant, as relevance data is: 0 ×13, 1 ×4, 2 ×3 in every 20."""
    return 0 if i % 20 < 13 else 1 if i % 20 < 17 else 2


class Rater:
    """How one simulated person labels a pair with gold label `truth`, and how long they take."""

    def __init__(self, name: str, seed: int):
        self.name, self.rng, self.zeros, self.seen = name, random.Random(seed), 0, 0

    def label(self, truth: int) -> int:
        self.seen += 1
        if self.name == "careless":
            return self.rng.randrange(3)
        if self.name == "lenient" and truth == 0:
            self.zeros += 1
            return 1 if self.zeros % 10 < 6 else 0
        if self.name.startswith("good") and self.seen % 10 == 0:
            return 1 if truth != 1 else 0  # one slip in ten
        return truth

    def seconds(self) -> float:
        base = BASE_SECONDS / 15 if self.name == "fast" else BASE_SECONDS
        return base * self.rng.uniform(0.7, 1.3)


def records(n: int, prefix: str) -> list[PairRecord]:
    return [PairRecord(Query(f"{prefix} query {i} about kernels", f"{prefix}q{i}"),
                       Document(f"{prefix} document {i} on man pages", f"{prefix}d{i}"),
                       line=i + 2, reference_label=truth_of(i)) for i in range(n)]


@pytest.fixture(scope="module")
def team_db(tmp_path_factory):
    """The simulated project (module-scoped: built once, read by every test here)."""
    path = tmp_path_factory.mktemp("team") / "studio.db"
    db = connect(path)
    import_batch(db, ImportBatch("import", "heldout.csv", records(N_PAIRS, "h")))
    import_batch(db, ImportBatch("import", "controls.csv", records(N_CONTROLS, "c")))
    db.execute("UPDATE pairs SET in_queue = 0 WHERE id IN (SELECT p.id FROM pairs p JOIN queries q "
               "ON q.id = p.query_id WHERE q.key LIKE 'c%')")
    for name in TEAM:
        ensure_annotator(db, name)
    ensure_annotator(db, "eve", "expert")
    people = {name: Rater(name, seed) for seed, name in enumerate(TEAM)}
    truth = {r["id"]: r["reference_label"] for r in db.query("SELECT id, reference_label FROM pairs")}
    busy = True
    while busy:
        busy = False
        for name, rater in people.items():
            view = next_pair(db, name)
            if view is None:
                continue
            busy = True
            rating_id = submit_rating(db, name, view.pair_id, rater.label(truth[view.pair_id]))
            db.execute("UPDATE ratings SET seconds = ? WHERE id = ?", [rater.seconds(), rating_id])
    controls = [r["id"] for r in db.query("SELECT id FROM pairs WHERE in_queue = 0 ORDER BY id")]
    for pair in controls:
        db.execute("INSERT INTO controls (pair_id, label, origin, added_by) VALUES (?, ?, 'reference', 'admin')",
                   [pair, truth[pair]])
    for name, rater in people.items():
        me = next(db.query("SELECT id FROM annotators WHERE name = ?", [name]))["id"]
        for pair in controls:
            db.execute("INSERT INTO control_answers (pair_id, annotator_id, rating, expected, seconds) "
                       "VALUES (?, ?, ?, ?, ?)", [pair, me, rater.label(truth[pair]), truth[pair], rater.seconds()])
    backdate(db, days=2)
    db.conn.commit()
    db.close()
    return path


def backdate(db, *, days: int) -> None:
    """Move every rating, skip, control answer, decision and judgment `days` back in time."""
    for table in ("ratings", "skips", "control_answers", "adjudications", "judgments"):
        db.execute(f"UPDATE {table} SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', created_at, '-{days} days')")


@pytest.fixture
def report(team_db):
    with opened(team_db) as db:
        return build_report(read_stats(db))


def line(report, name):
    return next(a for a in report.lines if a.name == name)


def test_the_simulated_team_is_flagged_as_the_issue_asks(report):
    flags = {a.name: a.flags for a in report.lines}
    assert "low_control_accuracy" in flags["careless"]
    # Raising 0 to 1 often enough to lean by 0.3 is also 30 % of answers wrong: low accuracy comes with it.
    assert "lenient" in flags["lenient"] and "strict" not in flags["lenient"]
    assert flags["fast"] == ["fast"]
    assert flags["good1"] == [] and flags["good2"] == []
    assert set(flags) == set(TEAM), "eve did nothing: no line"


def test_counts_times_and_shares(team_db, report):
    with opened(team_db) as db:
        n_ratings = {r["name"]: r["n"] for r in db.query(
            "SELECT a.name, count(*) AS n FROM ratings r JOIN annotators a ON a.id = r.annotator_id GROUP BY a.name")}
        assert max(r["n"] for r in db.query("SELECT count(*) AS n FROM ratings GROUP BY pair_id")) == 2
        zeros = next(db.query("SELECT avg(rating = 0) AS share FROM ratings"))["share"]
    assert sum(n_ratings.values()) == 2 * N_PAIRS
    for name in TEAM:
        a = line(report, name)
        assert a.ratings == n_ratings[name] and a.control_answers == N_CONTROLS
        assert a.timed == a.ratings + N_CONTROLS
        assert abs(sum(a.label_share.values()) - 1) < 1e-9
    assert line(report, "fast").median_seconds < BASE_SECONDS / 10 < line(report, "good1").median_seconds
    assert report.team["median_seconds"] == pytest.approx(
        sorted(line(report, n).median_seconds for n in TEAM)[2])
    assert report.team["label_share"]["0"] == pytest.approx(zeros)
    assert line(report, "lenient").label_share["0"] < line(report, "good1").label_share["0"]


def test_control_accuracy_has_a_wilson_interval(report):
    good = line(report, "good1")
    low, high = good.control_accuracy_ci
    assert low < good.control_accuracy <= high <= 1
    assert wilson_interval(0, 0) is None
    # Wilson (1927) for 8 of 10: 0.4902 – 0.9433
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)


def test_kappa_equals_scikit_learn(team_db, report):
    with opened(team_db) as db:
        rows = list(db.query(
            """SELECT a1.name AS x, a2.name AS y, r1.rating AS rx, r2.rating AS ry FROM ratings r1
               JOIN ratings r2 ON r2.pair_id = r1.pair_id AND r2.annotator_id != r1.annotator_id
               JOIN annotators a1 ON a1.id = r1.annotator_id JOIN annotators a2 ON a2.id = r2.annotator_id"""))
        mine = list(db.query(
            """SELECT r.rating, p.reference_label AS gold FROM ratings r JOIN pairs p ON p.id = r.pair_id
               JOIN annotators a ON a.id = r.annotator_id WHERE a.name = 'careless'
               UNION ALL SELECT c.rating, c.expected FROM control_answers c JOIN annotators a
               ON a.id = c.annotator_id WHERE a.name = 'careless'"""))
    checked = 0
    for name in TEAM:
        for other, entry in line(report, name).kappa_vs_others.items():
            pairs = [(r["rx"], r["ry"]) for r in rows if r["x"] == name and r["y"] == other]
            assert entry["n"] == len(pairs)
            expected = cohen_kappa_score([p[0] for p in pairs], [p[1] for p in pairs], labels=[0, 1, 2])
            assert entry["kappa"] == pytest.approx(expected, abs=1e-12)
            checked += 1
    assert checked >= 8
    careless = line(report, "careless")
    assert careless.kappa_vs_gold["n"] == careless.gold_items == len(mine)
    assert careless.kappa_vs_gold["kappa"] == pytest.approx(
        cohen_kappa_score([r["rating"] for r in mine], [r["gold"] for r in mine], labels=[0, 1, 2]), abs=1e-12)
    assert careless.leniency == pytest.approx(sum(r["rating"] - r["gold"] for r in mine) / len(mine))


def test_drift_blocks_cover_each_persons_work_in_order(report):
    blocks = report.drift["good1"]
    good = line(report, "good1")
    assert sum(b["items"] for b in blocks) == good.ratings + good.control_answers
    assert [b["first_item"] for b in blocks] == [1 + 25 * i for i in range(len(blocks))]
    assert blocks[-1]["control_accuracy"] is not None, "the controls were answered last"
    assert all(b["median_seconds"] > BASE_SECONDS / 2 for b in blocks)
    assert sum(b["control_answers"] for b in blocks) == N_CONTROLS


def test_which_gold_counts_for_whom(db_path):
    """Agreed pairs (gold = the person's own rating) and the person's own adjudication never count; a reference
    label or someone else's adjudication does; a pair also answered as a control counts once."""
    db = connect(db_path)
    import_batch(db, make_batch(4, ratings=[(0, "ann", 2), (0, "bob", 2), (1, "ann", 0), (1, "eve", 2),
                                            (2, "ann", 1), (3, "ann", 0)]))
    ensure_annotator(db, "eve", "expert")
    ids = [r["id"] for r in db.query("SELECT id FROM pairs ORDER BY id")]
    ann, eve = (next(db.query("SELECT id FROM annotators WHERE name = ?", [n]))["id"] for n in ("ann", "eve"))
    db.execute("INSERT INTO adjudications (pair_id, label, expert_id) VALUES (?, 1, ?)", [ids[1], eve])
    db.execute("UPDATE pairs SET reference_label = 2 WHERE id IN (?, ?)", [ids[2], ids[3]])
    db.execute("INSERT INTO control_answers (pair_id, annotator_id, rating, expected) VALUES (?, ?, 0, 2)",
               [ids[3], ann])
    db.conn.commit()
    report = build_report(read_stats(db))
    db.close()
    # ann: pair 0 agreed (no), pair 1 adjudicated by eve (0 vs 1), pair 2 reference (1 vs 2), pair 3 control (0 vs 2)
    a = line(report, "ann")
    assert a.gold_items == 3 and a.leniency == pytest.approx((-1 - 1 - 2) / 3)
    assert a.control_answers == 1 and a.control_accuracy == 0
    # eve adjudicated pair 1 herself: her rating of it is not measured against her own decision
    assert line(report, "eve").gold_items == 0 and line(report, "eve").leniency is None
    # one shared pair each: agreeing on it leaves κ undefined (no expected disagreement), differing gives 0
    assert line(report, "ann").kappa_vs_others == {"bob": {"kappa": None, "n": 1}, "eve": {"kappa": 0.0, "n": 1}}


def test_model_raters_stand_beside_the_people(db_path):
    db = connect(db_path)
    import_batch(db, make_batch(16, ratings=[(i, "ann", i % 3) for i in range(12)]))
    ids = [r["id"] for r in db.query("SELECT id FROM pairs ORDER BY id")]
    gold = [0, 2, 1, 0]  # reference labels of the four pairs nobody rated: their gold
    for pair, label in zip(ids[12:], gold):
        db.execute("UPDATE pairs SET reference_label = ? WHERE id = ?", [label, pair])
    db.execute("INSERT INTO model_raters (name, kind, spec, created_by) VALUES ('model:default', 'model', 'x', 't')")
    model_labels = [(i + (i % 4 == 0)) % 3 for i in range(16)]
    for pair, label in zip(ids, model_labels):
        db.execute("INSERT INTO judgments (rater_id, pair_id, label, score) VALUES (1, ?, ?, 0.5)", [pair, label])
    db.conn.commit()
    report = build_report(read_stats(db))
    db.close()
    model = line(report, "model:default")
    assert model.kind == "model" and model.ratings == 16 and model.median_seconds is None
    assert model.kappa_vs_others["ann"]["n"] == 12
    assert model.kappa_vs_others["ann"]["kappa"] == pytest.approx(
        cohen_kappa_score(model_labels[:12], [i % 3 for i in range(12)], labels=[0, 1, 2]), abs=1e-12)
    assert model.kappa_vs_gold["n"] == 4 and model.kappa_vs_gold["kappa"] == pytest.approx(
        cohen_kappa_score(model_labels[12:], gold, labels=[0, 1, 2]), abs=1e-12)
    assert model.leniency == pytest.approx(sum(m - g for m, g in zip(model_labels[12:], gold)) / 4)
    assert model.flags == [] and model.control_answers == 0, "too few items for a flag; no controls"
    assert report.lines[-1] is model, "model raters come after the people"


def test_thresholds_come_from_the_settings_and_qualification_is_reported(team_db, tmp_path):
    import shutil

    path = tmp_path / "copy.db"
    shutil.copy(team_db, path)
    with opened(path) as db:
        db.execute("INSERT INTO settings (key, value) VALUES ('controls.min_accuracy', '0.95'), "
                   "('controls.qualify_first', '10'), ('controls.pass_mark', '0.9')")
        db.conn.commit()
        report = build_report(read_stats(db))
        good = line(report, "good1")
        assert good.qualification["answered"] == 10 and good.qualification["first"] == 10
        assert ("failed_qualification" in good.flags) == (good.qualification["accuracy"] < 0.9)
        assert "failed_qualification" in line(report, "careless").flags
        assert "low_control_accuracy" in line(report, "lenient").flags, "0.95 is stricter than the default"
        db.execute("UPDATE settings SET value = 'lots' WHERE key = 'controls.min_accuracy'")
        db.conn.commit()
        from studio.errors import StudioError

        with pytest.raises(StudioError, match="controls.min_accuracy"):
            read_stats(db)


def test_an_annotator_reads_only_their_own_line(team_db):
    own = raters.annotator_report(Project(team_db), Actor("careless", "annotator", signed_in=True))
    assert [a.name for a in own.lines] == ["careless"] and list(own.drift) == ["careless"]
    assert own.team["median_seconds"] is not None, "the team's reference figures stay"
    newcomer = raters.annotator_report(Project(team_db), Actor("zoe", "annotator", signed_in=True))
    assert newcomer.lines == [] and newcomer.drift == {}


def test_the_cli_prints_the_issues_json(team_db):
    result = CliRunner().invoke(cli, ["--db", str(team_db), "annotators", "report", "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    keys = {"name", "ratings", "median_seconds", "control_answers", "control_accuracy", "leniency",
            "kappa_vs_others", "flags"}
    assert all(keys <= set(a) for a in data["annotators"])
    assert {a["name"]: a["flags"] for a in data["annotators"]}["fast"] == ["fast"]
    table = CliRunner().invoke(cli, ["--db", str(team_db), "annotators", "report"], catch_exceptions=False).output
    assert "careless" in table and "low_control_accuracy: control accuracy below 70%" in table
    assert "κ against the others" in table
    missing = CliRunner().invoke(cli, ["--db", str(team_db) + ".nope", "annotators", "report"])
    assert missing.exit_code == 1 and "no database" in missing.output


def test_the_drift_figure_draws_three_panels(report):
    fig = raters.drift_figure(report.drift, "zh-CN", block=report.block)
    assert len(fig.data) == 3 * len(TEAM)
    assert "对照题正确率" in {a.text for a in fig.layout.annotations}


def test_the_agreement_tab_shows_the_report_to_each_role(team_db):
    from pathlib import Path
    from types import SimpleNamespace

    import plotly.graph_objects as go

    from studio.ui.context import UIContext, make_i18n
    from studio.ui.tabs import agreement

    ctx = UIContext(Path(team_db), make_i18n())
    intro, table, notes, drift = agreement.annotators_refresh(ctx, "en")
    assert intro == "" and len(table) == len(TEAM) and isinstance(drift, go.Figure)
    flags = dict(zip(table["name"], table["flags"]))
    assert flags["fast"] == "fast" and flags["good1"] == "✓" and "low control accuracy" in flags["careless"]
    assert "under a third of the team's" in notes and "failed qualification" not in notes, "qualification is off"
    ctx.auth = True
    intro, table, notes, drift = agreement.annotators_refresh(ctx, "zh-CN", SimpleNamespace(username="lenient"))
    assert list(table["姓名"]) == ["lenient"] and "偏宽松" in table["标记"][0]
    assert "你自己的一行，统计到昨天为止" in intro and start_of_utc_day()[:10] in intro
    assert {trace.name for trace in drift.data} == {"lenient"}


class Draw:
    """An rng for `next_pair` whose every draw is `value`: 0 serves a control, 0.99 a regular pair."""

    def __init__(self, value: float):
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.fixture
def today(team_db, tmp_path):
    """A copy of the team's project (all of it done two days ago) with work left for today: 4 more pairs to rate and
    one more control (expected label 0), controls served at rate 0.2. Returns (path, the new control's pair id)."""
    path = tmp_path / "today.db"
    shutil.copy(team_db, path)
    with opened(path) as db:
        import_batch(db, ImportBatch("import", "more.csv", records(4, "m")))
        import_batch(db, ImportBatch("import", "control.csv", records(1, "x")))
        control = next(db.query("SELECT p.id FROM pairs p JOIN queries q ON q.id = p.query_id "
                                "WHERE q.key = 'xq0'"))["id"]
        db.execute("UPDATE pairs SET in_queue = 0 WHERE id = ?", [control])
        db.execute("INSERT INTO controls (pair_id, label, origin, added_by) VALUES (?, 0, 'reference', 'admin')",
                   [control])
        db.execute("INSERT INTO settings (key, value) VALUES ('controls.rate', '0.2')")
        db.conn.commit()
    return path, control


def by_name(data: dict) -> dict:
    return {a["name"]: a for a in data["annotators"]}


def test_an_annotators_own_line_is_as_of_yesterday_so_todays_control_is_not_told_apart(today):
    """good1 answers today's control wrong, rates a pair, changes a control answer and a rating from before, and an
    expert changes an earlier decision on one of her pairs: her own line (all of it: counts, accuracy, leniency, κ,
    team figures, drift) does not move; an admin's report shows every change at once."""
    path, control = today
    project, good1 = Project(path), Actor("good1", "annotator", signed_in=True)
    with opened(path) as db:  # eve decided one of good1's disagreements two days ago, off its reference label
        case = next(db.query("SELECT r.pair_id, p.reference_label FROM ratings r JOIN annotators a "
                             "ON a.id = r.annotator_id JOIN pairs p ON p.id = r.pair_id WHERE a.name = 'good1' "
                             "AND EXISTS (SELECT 1 FROM ratings o WHERE o.pair_id = r.pair_id "
                             "AND o.annotator_id != r.annotator_id AND o.rating != r.rating)"))
        adjudicate(db, "eve", case["pair_id"], (case["reference_label"] + 1) % 3)
        backdate(db, days=2)
        db.execute("UPDATE audit_log SET at = strftime('%Y-%m-%dT%H:%M:%fZ', at, '-2 days')")
        db.conn.commit()
    mine, team = raters.annotator_report(project, good1).to_json(), raters.annotator_report(project, ADMIN).to_json()
    assert mine["as_of"] == start_of_utc_day() and team["as_of"] is None
    assert list(by_name(mine)) == ["good1"] and by_name(mine)["good1"] == by_name(team)["good1"], \
        "nothing was done today yet: the lagging line is the live one"
    with opened(path) as db:
        served = next_pair(db, "good1", rng=Draw(0.0))
        assert served.pair_id == control
        submit_rating(db, "good1", control, 2)
        submit_rating(db, "good1", next_pair(db, "good1", rng=Draw(0.99)).pair_id, 1)
        right = next(db.query("SELECT c.pair_id, c.expected FROM control_answers c JOIN annotators a "
                              "ON a.id = c.annotator_id WHERE a.name = 'good1' AND c.rating = c.expected"))
        submit_rating(db, "good1", right["pair_id"], (right["expected"] + 1) % 3)
        adjudicate(db, "eve", case["pair_id"], (case["reference_label"] + 2) % 3)  # she changes her decision
        changed = next(db.query("SELECT r.pair_id, r.rating FROM ratings r JOIN annotators a ON a.id = r.annotator_id "
                                "WHERE a.name = 'good1' AND r.pair_id != ? AND r.created_at < ?",
                                [case["pair_id"], start_of_utc_day()]))
        submit_rating(db, "good1", changed["pair_id"], (changed["rating"] + 1) % 3)

    assert raters.annotator_report(project, good1).to_json() == mine, "today's work shows tomorrow"
    before, now = by_name(team)["good1"], by_name(raters.annotator_report(project, ADMIN).to_json())["good1"]
    assert now["control_answers"] == before["control_answers"] + 1 and now["ratings"] == before["ratings"] + 1
    assert now["control_accuracy"] < before["control_accuracy"] and now["leniency"] != before["leniency"]
    # Tomorrow, her line is what the admin sees today (read as of the start of tomorrow).
    tomorrow = start_of_utc_day(datetime.now(timezone.utc) + timedelta(days=1))
    with opened(path) as db:
        later = build_report(read_stats(db, until=tomorrow), only="good1").to_json()
    assert by_name(later)["good1"] == now and later["as_of"] == tomorrow
    # Undoing an old rating and an old control answer (each re-rated today, so on top of her undo stack) deletes
    # items made before the cutoff: her line still does not move (they are put back from the undo's audit entry).
    with opened(path) as db:
        assert undo_last(db, "good1").pair_id == changed["pair_id"]
        assert undo_last(db, "good1").pair_id == right["pair_id"]
    assert raters.annotator_report(project, good1).to_json() == mine, "an undo of an old item tells a control apart"


def test_the_cutoff_is_checked_and_shown_in_the_cli_json(team_db):
    with opened(team_db) as db:
        from studio.errors import StudioError

        with pytest.raises(StudioError, match="not a timestamp"):
            read_stats(db, until="yesterday")
    seen = CliRunner().invoke(cli, ["--db", str(team_db), "annotators", "report", "--seen-by", "fast", "--json"],
                              catch_exceptions=False)
    assert seen.exit_code == 0, seen.output
    data = json.loads(seen.output)
    assert data["as_of"] == start_of_utc_day() and [a["name"] for a in data["annotators"]] == ["fast"]
    assert data["annotators"][0]["flags"] == ["fast"] and list(data["drift"]) == ["fast"]
    live = json.loads(CliRunner().invoke(cli, ["--db", str(team_db), "annotators", "report", "--json"]).output)
    assert live["as_of"] is None and len(live["annotators"]) == len(TEAM)
    text = CliRunner().invoke(cli, ["--db", str(team_db), "annotators", "report", "--seen-by", "fast"]).output
    assert f"Up to yesterday: as of {start_of_utc_day()[:10]} 00:00 UTC" in text


def test_an_annotator_opens_agreement_for_their_own_line_and_nothing_else(today):
    """With sign-in, ③ shows for an annotator; opening it (the tab's own refresh, as the page runs it) hides the
    agreement part without a refusal, fills the annotator report with their line alone, up to yesterday, and writes
    no "refused" entry. An expert opening it gets the agreement report and everyone, live."""
    import gradio as gr
    from gradio.state_holder import SessionState

    from studio.ui.app import build_app

    path, _ = today
    demo, _ = build_app(path, auth=True)
    tab = next(b for b in demo.blocks.values() if isinstance(b, gr.Tab) and b.id == "agreement")
    on_open = next(f for f in demo.fns.values() if (tab._id, "select") in f.targets)
    visible_tabs = next(f for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "visible_tabs")
    ids = [b.id for b in demo.blocks.values() if isinstance(b, gr.Tab)]

    def call(fn, inputs, name):
        out = asyncio.run(demo.process_api(fn, inputs, state=SessionState(demo), request=gr.Request(username=name),
                                           session_hash=f"s-{name}"))
        return out["data"]

    def refusals():
        with opened(path) as db:
            return [r for r in history(db, entity="action", limit=1000) if r["action"] == "refused"]

    shown = dict(zip(ids, (u["visible"] for u in call(visible_tabs, [], "good1"))))
    assert shown["agreement"] and shown["annotate"] and not shown["adjudicate"] and not shown["import"]
    out = call(on_open, ["en"], "good1")
    card, bars, pairs, which, heat, dis, details, part, intro, table, notes, drift = out
    assert part["visible"] is False and details["visible"] is False and card == ""
    assert pairs["data"] == [] and dis["data"] == [] and bars is None and heat is None
    assert "needs the" not in json.dumps(out), "no refusal is shown"
    assert [row[0] for row in table["data"]] == ["good1"] and "up to yesterday" in intro
    assert {trace["name"] for trace in json.loads(drift["plot"])["data"]} == {"good1"}, "nobody else's drift"
    assert refusals() == []
    card, _, pairs, _, _, _, details, part, intro, table, _, _ = call(on_open, ["en"], "eve")
    assert part["visible"] is True and details["visible"] is True and "pooled κ" in card and len(pairs["data"]) >= 5
    assert sorted(row[0] for row in table["data"]) == sorted(TEAM) and intro == ""
