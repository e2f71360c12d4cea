"""⑤ Data actions: the quality report and the triplet export are an admin's; anyone else is refused."""

import json
from pathlib import Path

import pytest

from studio import config
from studio.actions import Actor, Project, collect, data
from studio.config import embedded_model_path
from studio.errors import Forbidden
from studio.store import opened

ADMIN = Actor("root", "admin", signed_in=True)
BELOW_ADMIN = [Actor("Dr. Li (李医生)", "annotator", signed_in=True),
               Actor("Prof. Chen (陈教授)", "expert", signed_in=True)]


def rows(db_path, sql: str) -> list[dict]:
    with opened(db_path) as db:
        return list(db.query(sql))


def assert_refused(db_path, actor: Actor, action: str) -> None:
    refused = rows(db_path, "SELECT actor, after FROM audit_log WHERE action = 'refused'")
    assert [(r["actor"], json.loads(r["after"])) for r in refused] == [
        (actor.name, {"action": action, "role": actor.role, "needs": "admin"})]


@pytest.fixture
def demo(db_path, tmp_path, monkeypatch):
    """The demo project, with exports/ and models/ inside the test's folder."""
    monkeypatch.setattr(config, "EXPORTS_DIR", tmp_path / "exports")
    monkeypatch.setattr(config, "MODELS_DIR", tmp_path / "models")
    collect.load_demo(Project(db_path), ADMIN)
    return Project(db_path)


@pytest.fixture
def starred(tmp_path):
    """A model 'mini' in models/ made the default (★)."""
    from studio.models.registry import set_default

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mini").symlink_to(embedded_model_path(), target_is_directory=True)
    set_default("mini", tmp_path / "models")
    return "mini"


def test_admin_gets_the_quality_report_and_its_file(demo, tmp_path):
    out = tmp_path / "reports" / "quality.json"
    result = data.quality(demo, ADMIN, out_path=out)
    report = result.report
    assert report.counts["positives"] == 23 and report.gate_passed is True
    assert [f.code for f in report.findings] == ["few_triplets"] and result.thresholds["min_triplets"] == 1000
    assert result.path == out and json.loads(out.read_text(encoding="utf-8"))["counts"] == report.counts


@pytest.mark.parametrize("model", [None, "", "  "])
def test_quality_without_a_model_measures_with_the_starred_one(demo, starred, model):
    report = data.quality(demo, ADMIN, model).report
    assert report.lengths["model"].endswith("/models/mini"), "the ★ model's tokenizer, as the CLI does"


@pytest.mark.parametrize("actor", BELOW_ADMIN, ids=lambda a: a.role)
def test_quality_is_refused_below_admin(demo, tmp_path, actor):
    out = tmp_path / "reports" / "quality.json"
    with pytest.raises(Forbidden):
        data.quality(demo, actor, out_path=out)
    assert not out.exists() and not (tmp_path / "reports").exists()
    assert_refused(demo.db_path, actor, "data.quality")


def test_admin_exports_to_the_default_place_with_the_starred_model_and_an_audit_entry(demo, starred, tmp_path):
    result = data.export_triplets(demo, ADMIN, hard_negatives="bm25", negatives=5)
    exports = tmp_path / "exports"
    assert result.train_path.parent.parent == exports and result.train_path.name == "train.jsonl"
    kept_back = result.manifest["test"]
    assert result.counts["train_lines"] + result.counts["valid_lines"] + kept_back["queries"] == 20
    assert kept_back["fraction"] == 0.2 and kept_back["queries"] == len(kept_back["query_keys"]) >= 3, \
        "a test share is kept back by default, so ⑧ has something to measure a fine-tune on"
    written = {json.loads(line)["query"] for path in (result.train_path, result.valid_path)
               for line in path.read_text(encoding="utf-8").splitlines()}
    from studio.store.gold import gold_set

    with opened(demo.db_path) as db:
        texts = gold_set(db).queries
    assert not written & {texts[q] for q in kept_back["query_keys"]}, "no line for a test query"
    assert result.manifest["options"]["model"] == "mini", "no model named: the ★ one"
    first = json.loads(result.train_path.read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"query", "pos", "neg"} and len(first["neg"]) == 5
    entry = rows(demo.db_path, "SELECT actor, entity, after FROM audit_log WHERE action = 'export'")
    assert [(e["actor"], e["entity"]) for e in entry] == [("root", "export")]
    after = json.loads(entry[0]["after"])
    assert after["path"] == str(result.train_path) and after["counts"] == result.counts
    assert sorted(Path(f).name for f in after["files"]) == [
        "train.csv", "train.jsonl", "train.manifest.json", "train.valid.jsonl"]


def test_export_to_a_named_file(demo, tmp_path):
    out = tmp_path / "elsewhere" / "t.jsonl"
    result = data.export_triplets(demo, ADMIN, out, hard_negatives="none", valid_fraction=0.0, model="default")
    assert result.train_path == out and out.exists() and result.valid_path is None
    assert result.manifest["options"]["model"] == "default"


def test_a_refused_export_option_writes_nothing_and_audits_nothing(demo, tmp_path):
    with pytest.raises(Exception, match="rank window"):
        data.export_triplets(demo, ADMIN, hard_negatives="none", rank_window=(50, 10))
    assert not (tmp_path / "exports").exists()
    assert rows(demo.db_path, "SELECT * FROM audit_log WHERE action = 'export'") == []


@pytest.mark.parametrize("actor", BELOW_ADMIN, ids=lambda a: a.role)
def test_export_is_refused_below_admin(demo, tmp_path, actor):
    out = tmp_path / "exports" / "x" / "train.jsonl"
    with pytest.raises(Forbidden):
        data.export_triplets(demo, actor, out, hard_negatives="none")
    with pytest.raises(Forbidden):
        data.export_triplets(demo, actor, hard_negatives="none")
    assert not (tmp_path / "exports").exists(), "nothing written, not even the default folder"
    assert rows(demo.db_path, "SELECT * FROM audit_log WHERE action = 'export'") == []
    refused = rows(demo.db_path, "SELECT actor FROM audit_log WHERE action = 'refused'")
    assert refused == [{"actor": actor.name}] * 2


def test_the_model_of_data_is_the_starred_one(demo, starred):
    assert data.model_for_data(demo, ADMIN) == "mini"


@pytest.mark.parametrize("actor", BELOW_ADMIN, ids=lambda a: a.role)
def test_the_model_of_data_is_refused_below_admin(demo, actor):
    with pytest.raises(Forbidden):
        data.model_for_data(demo, actor)
    assert_refused(demo.db_path, actor, "data.model_for_data")
