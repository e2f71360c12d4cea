"""The learning-curve action (⑧): an admin's, since it trains; an expert or annotator is refused and audited. Its
evaluation set never holds the training file's queries (nor its validation twin's), its work folder is a fresh one
under jobs/curves/, and the page names the training file inside exports/. The real training run is in
tests/test_learning_curve.py; here the curve itself is replaced by a recorder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors import ADMIN, ANNOTATOR, EXPERT, assert_refused
from studio import config
from studio.actions import Project, curve
from studio.errors import StudioError
from studio.evaluation import learning_curve as lc
from studio.store import opened

REAL_RUN_CURVE = lc.run_curve


@pytest.fixture
def demo(db_path, tmp_path, monkeypatch) -> Project:
    """The demo project (gold labels over 20 queries), its jobs/, models/ and exports/ in tmp_path."""
    from studio.demo import load_demo

    for name in ("JOBS_DIR", "MODELS_DIR", "EXPORTS_DIR"):
        monkeypatch.setattr(config, name, tmp_path / name.split("_")[0].lower())
    with opened(db_path) as db:
        load_demo(db)
    return Project(db_path)


def gold_queries(project: Project) -> set[str]:
    from studio.store.gold import gold_set

    with opened(project.db_path) as db:
        gold = gold_set(db)
    return {text for q, text in gold.queries.items() if any(v > 0 for v in gold.labels[q].values())}


def training_file(path: Path, queries) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"query": q, "pos": ["p"], "neg": ["n"]}, ensure_ascii=False) + "\n"
                            for q in queries), encoding="utf-8")
    return path


@pytest.fixture
def recorded(monkeypatch) -> list[dict]:
    """Replace the curve's training runs with a recorder that returns a two-point curve."""
    calls: list[dict] = []

    def fake(train_file, evalset, **kwargs):
        calls.append({"train_file": train_file, "evalset": evalset, **kwargs})
        points = [lc.Point(0.5, 2, 42, 0.4, 0.5, 1.0), lc.Point(1.0, 4, 42, 0.45, 0.6, 1.0)]
        return lc.summarize(points, base_ndcg=0.3, base_recall=0.4, workdir=str(kwargs["workdir"]))

    monkeypatch.setattr(lc, "run_curve", fake)
    return calls


def test_an_expert_or_annotator_may_not_run_a_learning_curve(demo, tmp_path, recorded):
    train = training_file(tmp_path / "exports" / "train.jsonl", sorted(gold_queries(demo))[:4])
    for actor in (EXPERT, ANNOTATOR):
        assert_refused(demo, actor, curve.learning_curve, str(train), "db")
    assert recorded == [] and not (tmp_path / "jobs").exists()


def test_an_admin_runs_it_on_the_gold_labels_without_the_training_and_validation_queries(demo, tmp_path, recorded):
    labelled = sorted(gold_queries(demo))
    training_file(tmp_path / "exports" / "run" / "train.jsonl", labelled[:4])
    training_file(tmp_path / "exports" / "run" / "train.valid.jsonl", labelled[4:6])
    result = curve.learning_curve(demo, ADMIN, "run/train.jsonl", "db", fractions=(0.5, 1.0), seeds=(1, 2),
                                  options={"epochs": 2}, lang="zh-CN")
    [call] = recorded
    assert call["train_file"] == (tmp_path / "exports" / "run" / "train.jsonl").resolve()
    assert set(call["evalset"].queries.values()) == set(labelled[6:])
    assert (call["fractions"], call["seeds"], call["options"], call["lang"]) == ((0.5, 1.0), (1, 2), {"epochs": 2},
                                                                                  "zh-CN")
    assert call["workdir"].parent == (tmp_path / "jobs" / "curves").resolve() and call["workdir"].is_dir()
    assert "train" in call["workdir"].name and result.still_rising is True
    with opened(demo.db_path) as db:
        [entry] = list(db.query("SELECT actor, after FROM audit_log WHERE action = 'curve.run'"))
    assert entry["actor"] == ADMIN.name and json.loads(entry["after"])["levels"] == [[2, 0.4], [4, 0.45]]
    again = curve.learning_curve(demo, ADMIN, str(tmp_path / "exports" / "run" / "train.jsonl"), "beir")
    assert recorded[1]["workdir"] != call["workdir"], "a fresh work folder each time"
    assert recorded[1]["evalset"].name == "demo/test without the queries of train.jsonl and train.valid.jsonl"
    assert again.workdir == str(recorded[1]["workdir"])


def test_what_the_action_refuses(demo, tmp_path, recorded, monkeypatch):
    for name, code in (("../outside.jsonl", "path_outside"), ("", "train_file_none"),
                       ("run/none.jsonl", "train_file_missing"), (str(tmp_path / "gone.jsonl"), "train_file_missing")):
        with pytest.raises(StudioError) as err:
            curve.learning_curve(demo, ADMIN, name, "beir")
        assert err.value.code == code, name
    assert recorded == []
    train = training_file(tmp_path / "exports" / "train.jsonl", sorted(gold_queries(demo))[:4])
    monkeypatch.setattr(lc, "run_curve", REAL_RUN_CURVE)  # it refuses the options before anything trains
    with pytest.raises(StudioError) as err:
        curve.learning_curve(demo, ADMIN, str(train), "db", options={"task": "reranker"})
    assert err.value.code == "curve_fixed_option"
    assert list((tmp_path / "jobs" / "curves").iterdir()) == [], "no empty work folder is left behind"


def test_fractions_and_seeds_typed_in_a_field():
    assert curve.parse_fractions("") == lc.DEFAULT_FRACTIONS == (0.25, 0.5, 1.0)
    assert curve.parse_fractions("0.5, 0.25,1") == curve.parse_fractions("25%,50,100") == (0.25, 0.5, 1.0)
    assert curve.parse_seeds("") == (42,) and curve.parse_seeds("1, 2,3") == (1, 2, 3)
    for text in ("a,b", "0.5", "0,1", "50,50"):
        with pytest.raises(StudioError) as err:
            curve.parse_fractions(text)
        assert err.value.code == "curve_bad_fractions", text
    for text in ("x", "1.5", "1,1", "-1"):
        with pytest.raises(StudioError) as err:
            curve.parse_seeds(text)
        assert err.value.code == "curve_bad_seeds", text


def test_studio_eval_learning_curve_prints_the_levels_and_the_verdict(demo, tmp_path, recorded):
    from click.testing import CliRunner

    from studio.cli import cli

    train = training_file(tmp_path / "train.jsonl", sorted(gold_queries(demo))[:4])
    result = CliRunner().invoke(cli, ["--db", str(demo.db_path), "eval", "--learning-curve", "--exclude-train",
                                      str(train), "--db", "--fractions", "50,100", "--seeds", "42,43"])
    assert result.exit_code == 0, result.output
    assert "0 labelled queries (base default): nDCG@10 0.3000" in result.output
    assert "4 labelled queries (100%): nDCG@10 0.4500" in result.output and "Still rising" in result.output
    assert recorded[-1]["fractions"] == (0.5, 1.0) and recorded[-1]["seeds"] == (42, 43)
    result = CliRunner().invoke(cli, ["--db", str(demo.db_path), "eval", "--learning-curve", "--db"])
    assert result.exit_code != 0 and "--learning-curve trains on --exclude-train FILE" in result.output
