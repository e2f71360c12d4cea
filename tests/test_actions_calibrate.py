"""Calibrate (⑧) through the actions layer and `studio calibrate`: an expert gets the thresholds that separate the
project's gold "relevant" from "irrelevant" pairs; an annotator, who must not see gold labels, is refused."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from actors import ANNOTATOR, EXPERT, assert_refused
from studio.actions import Project, calibrate
from studio.cli import cli
from studio.errors import StudioError
from studio.store import opened


@pytest.fixture
def one_kind(db_path) -> Project:
    """A project whose gold labels are all "relevant" (two raters agreed on 2)."""
    from conftest import make_batch
    from studio.store.imports import import_batch

    with opened(db_path) as db:
        import_batch(db, make_batch(3, ratings=[(i, who, 2) for i in range(2) for who in ("alice", "bob")]))
    return Project(db_path)


def run(db_path, *args):
    return CliRunner().invoke(cli, ["--db", str(db_path), *args], catch_exceptions=False)


def gold_pairs_per_query(project: Project) -> dict[str, int]:
    """Query text → how many of its gold labels are relevant or irrelevant (the pairs calibration scores)."""
    from studio.store.gold import gold_set

    with opened(project.db_path) as db:
        gold = gold_set(db)
    return {gold.queries[q]: sum(label != 1 for label in labels.values()) for q, labels in gold.labels.items()}


def test_an_expert_gets_the_thresholds_of_the_default_model(demo):
    result = calibrate.calibrate(demo, EXPERT, "default", target_precision=0.8)
    assert result.model == "all-MiniLM-L6-v2", "'default' is reported as the ★ model it means"
    assert (result.kind, result.pairs, result.positives, result.negatives) == ("dense", 64, 23, 41)
    kept = [r for s, r in zip(result.scores, result.relevant) if s >= result.best.threshold]
    assert result.best.precision == pytest.approx(sum(kept) / len(kept))
    assert result.best.recall == pytest.approx(sum(kept) / 23)
    assert result.at_precision.precision >= 0.8 and result.at_precision.threshold >= result.best.threshold
    lines = calibrate.summary_lines(result, "en")
    assert lines[0] == ("all-MiniLM-L6-v2 (cosine similarity) on 64 gold pairs: 23 relevant, 41 irrelevant "
                        "(16 partially relevant left out)")
    assert f"score >= {result.best.threshold:.4f}" in lines[1] and f"recall {result.best.recall:.4f}" in lines[1]
    assert lines[2].startswith("precision >= 0.80:")
    assert calibrate.summary_lines(result, "zh-CN")[0].startswith("all-MiniLM-L6-v2（余弦相似度），共 64 个金标准对")


def test_a_training_files_queries_and_its_validation_twins_are_left_out(demo, tmp_path):
    counts = gold_pairs_per_query(demo)
    texts = sorted(counts)
    (tmp_path / "train.jsonl").write_text(json.dumps({"query": texts[0], "pos": ["p"], "neg": ["n"]}) + "\n")
    (tmp_path / "train.valid.jsonl").write_text(json.dumps({"query": texts[1], "pos": ["p"], "neg": ["n"]}) + "\n")
    whole = calibrate.calibrate(demo, EXPERT, "default")
    held = calibrate.calibrate(demo, EXPERT, "default", exclude=tmp_path / "train.jsonl")
    assert held.pairs == whole.pairs - counts[texts[0]] - counts[texts[1]] < whole.pairs
    with pytest.raises(StudioError) as err:
        calibrate.calibrate(demo, EXPERT, "default", exclude=tmp_path / "gone.jsonl")
    assert err.value.code == "train_file_missing"


def test_an_annotator_is_refused(demo):
    assert_refused(demo, ANNOTATOR, calibrate.calibrate, "default")


def test_one_kind_of_gold_pair_says_how_many_of_each_there_are(one_kind):
    with pytest.raises(StudioError) as err:
        calibrate.calibrate(one_kind, EXPERT, "default")
    assert err.value.code == "calibration_needs_both"
    assert err.value.params == {"positives": 2, "negatives": 0}


def test_studio_calibrate_prints_thresholds_or_one_json_document(demo):
    printed = run(demo.db_path, "calibrate", "--model", "default", "--precision", "0.8", "--json")
    report = json.loads(printed.stdout)
    assert (report["model"], report["kind"], report["pairs"], report["target_precision"]) == \
        ("all-MiniLM-L6-v2", "dense", 64, 0.8)
    assert set(report["best"]) == {"threshold", "precision", "recall", "f1", "positives", "negatives"}
    assert report["at_precision"]["precision"] >= 0.8
    text = run(demo.db_path, "calibrate", "--precision", "0.8").output.splitlines()
    assert text[0].endswith("64 gold pairs: 23 relevant, 41 irrelevant (16 partially relevant left out)")
    assert text[1] == (f"best F1:          score >= {report['best']['threshold']:.4f}  precision "
                       f"{report['best']['precision']:.4f}  recall {report['best']['recall']:.4f}  "
                       f"F1 {report['best']['f1']:.4f}")


def test_studio_calibrate_explains_what_is_missing_in_one_line(one_kind, tmp_path):
    result = run(one_kind.db_path, "calibrate")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "there are 2 relevant and 0 irrelevant" in result.output
    missing = run(tmp_path / "typo.db", "calibrate")
    assert missing.exit_code == 1 and "no database at" in missing.output and "calibrate" in missing.output
    assert not (tmp_path / "typo.db").exists()
    assert run(one_kind.db_path, "calibrate", "--precision", "0").exit_code == 2


def test_a_fine_tunes_own_queries_are_left_out_by_default(demo, tmp_path, monkeypatch):
    """No --exclude-train: the queries the model's studio_model.json says it trained or validated on are left out
    (a fine-tune looks better separated on them), and the summary says how many; --include-trained keeps them."""
    from studio import config
    from studio.training.train_file import fingerprint

    monkeypatch.setattr(config, "MODELS_DIR", tmp_path / "models")
    counts = gold_pairs_per_query(demo)
    texts = sorted(counts)
    model = tmp_path / "models" / "ft"
    model.mkdir(parents=True)
    for part in config.embedded_model_path().iterdir():  # the embedded model, as if fine-tuned
        (model / part.name).symlink_to(part)
    (model / "studio_model.json").write_text(json.dumps(
        {"queries": {"train": [fingerprint(texts[0])], "valid": [fingerprint(texts[1])]}}))
    held = calibrate.calibrate(demo, EXPERT, "ft")
    whole = calibrate.calibrate(demo, EXPERT, "ft", include_trained=True)
    assert held.pairs == whole.pairs - counts[texts[0]] - counts[texts[1]]
    assert (held.left_out_queries, held.included_trained) == (2, False)
    assert whole.included_trained and whole.left_out_queries == 0
    assert "Left out the 2 labelled queries ft was trained or validated on." in calibrate.summary_lines(held, "en")
    assert calibrate.summary_lines(whole, "zh-CN")[1].startswith("⚠")
    out = run(demo.db_path, "calibrate", "--model", "ft", "--json")
    assert json.loads(out.output)["left_out_queries"] == 2
