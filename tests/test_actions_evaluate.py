"""Evaluate (⑧) through the actions layer: the evaluation set is loaded in one place (a BEIR folder's split or the
project's gold labels, minus a training file's queries); evaluating, the map and the report files are an expert's."""

from __future__ import annotations

import json

import pytest

from actors import ADMIN, ANNOTATOR, EXPERT, assert_refused
from studio import config
from studio.actions import files
from studio.actions import Project, evaluate, wording
from studio.config import DEMO_DIR
from studio.errors import StudioError
from studio.store import opened


@pytest.fixture
def p(db_path) -> Project:
    return Project(db_path)


@pytest.fixture
def exports(tmp_path, monkeypatch):
    folder = tmp_path / "exports"
    monkeypatch.setattr(config, "EXPORTS_DIR", folder)
    return folder


def gold_queries(project: Project) -> dict[str, str]:
    from studio.store.gold import gold_set

    with opened(project.db_path) as db:
        gold = gold_set(db)
    return {q: text for q, text in gold.queries.items() if any(v > 0 for v in gold.labels[q].values())}


def training_file(path, queries) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"query": q, "pos": ["p"], "neg": ["n"]}, ensure_ascii=False) + "\n"
                            for q in queries), encoding="utf-8")
    return str(path)


def test_an_expert_evaluates_on_the_gold_labels_without_a_training_files_queries(demo, tmp_path):
    labelled = gold_queries(demo)
    trained = sorted(labelled.values())[:5]
    train = training_file(tmp_path / "train.jsonl", [*trained, "a query the project does not have"])
    result = evaluate.evaluate(demo, EXPERT, ["default"], "db", exclude=train, ks="1,10")
    assert result.report["queries"] == len(labelled) - 5
    assert set(result.evalset.queries.values()) == set(labelled.values()) - set(trained)
    assert result.report["evalset"] == "gold labels without the queries of train.jsonl"
    assert set(result.report["models"][0]["metrics"]) >= {"ndcg@10", "p@1"}
    assert {q for q, _ in result.map_queries} == set(result.evalset.queries)
    whole = evaluate.evaluate(demo, EXPERT, ["default"], "db", ks=(10,), lang="zh-CN")
    assert whole.report["queries"] == len(labelled) and whole.report["evalset"] == "金标准标签"


def test_a_fine_tunes_validation_queries_are_left_out_with_its_training_queries(demo, tmp_path, monkeypatch):
    """⑧ fills "leave out" with train.jsonl; the queries of train.valid.jsonl beside it were learned from too (the
    job validates on them), so both are left out, and no trained-on warning is left to flag them."""
    monkeypatch.setattr(config, "MODELS_DIR", tmp_path / "models")
    labelled = sorted(gold_queries(demo).values())
    train = training_file(tmp_path / "run" / "train.jsonl", labelled[:4])
    valid = training_file(tmp_path / "run" / "train.valid.jsonl", labelled[4:6])
    model = tmp_path / "models" / "medical-v1"
    model.mkdir(parents=True)
    for part in config.embedded_model_path().iterdir():  # the embedded model, as if fine-tuned
        (model / part.name).symlink_to(part)
    (model / "studio_model.json").write_text(json.dumps({"train": train, "valid": valid}))
    result = evaluate.evaluate(demo, EXPERT, ["default", "medical-v1"], "db", exclude=train, ks="10")
    assert set(result.evalset.queries.values()) == set(labelled[6:])
    assert result.report["evalset"] == "gold labels without the queries of train.jsonl and train.valid.jsonl"
    assert not [w for w in result.report["warnings"] if w["kind"] == "trained_on_eval"]
    whole = evaluate.evaluate(demo, EXPERT, ["medical-v1"], "db", ks="10", lang="zh-CN", include_trained=True)
    [warning] = [w for w in whole.report["warnings"] if w["kind"] == "trained_on_eval"]
    assert warning["overlap"] == 6, "training and validation queries both counted"
    assert "train.jsonl 和 train.valid.jsonl" in wording.warning_lines(whole.report, "zh-CN")[-1]


def fine_tune_of_embedded(tmp_path, name: str, info: dict):
    """A folder in models/ that loads as the embedded model, with the studio_model.json a fine-tune would have."""
    model = tmp_path / "models" / name
    model.mkdir(parents=True)
    for part in config.embedded_model_path().iterdir():
        (model / part.name).symlink_to(part)
    (model / "studio_model.json").write_text(json.dumps(info))
    return model


def test_evaluation_leaves_out_what_any_model_of_a_system_learned_from_by_default(demo, tmp_path, monkeypatch):
    """No --exclude-train: every query a model in the evaluated systems was trained or validated on is left out —
    a dense stage's (from the fingerprints its studio_model.json recorded, after the files are gone) and a reranker's
    alike — and the report says how many; --include-trained keeps them and then recommends nothing."""
    from studio.training.train_file import fingerprint

    monkeypatch.setattr(config, "MODELS_DIR", tmp_path / "models")
    labelled = sorted(gold_queries(demo).values())
    fine_tune_of_embedded(tmp_path, "ft", {"train": "/gone/train.jsonl", "queries": {
        "train": [fingerprint(q) for q in labelled[:5]], "valid": [fingerprint(q) for q in labelled[5:7]]}})
    result = evaluate.evaluate(demo, EXPERT, [], "db", systems=["bm25", "ft+bm25"], ks="10")
    assert set(result.evalset.queries.values()) == set(labelled[7:])
    assert result.report["held_out"] == {"queries": len(labelled) - 7, "left_out": 7, "by_model": {"ft": 7},
                                         "included": False, "trained_on_evaluated": 0}
    assert result.report["recommended"] in ("bm25", "ft+bm25")
    assert "Left out 7 labelled queries" in wording.held_out_line(result.report, "en")
    html = evaluate.write_reports(demo, EXPERT, result.report, html=tmp_path / "r.html").html
    assert "Left out 7 labelled queries" in html.read_text(encoding="utf-8"), "the HTML report says it too"
    fusion = next(m["system"]["fusion"] for m in result.report["models"] if m["model"] == "ft+bm25")
    assert fusion["chosen_by"] == "tuned" and fusion["tune_queries"] == 2, "tuned on the validated-only queries"

    whole = evaluate.evaluate(demo, EXPERT, [], "db", systems=["bm25", "ft+bm25"], ks="10", include_trained=True)
    assert whole.report["queries"] == len(labelled) and whole.report["held_out"]["trained_on_evaluated"] == 7
    assert whole.report["recommended"] is None and whole.report["recommendation_withheld"] == "include_trained"
    assert "no system is recommended" in wording.held_out_line(whole.report, "en")


def test_a_rerankers_training_queries_are_left_out_too(demo, tmp_path, monkeypatch, tiny_reranker):
    from studio.training.train_file import fingerprint

    monkeypatch.setattr(config, "MODELS_DIR", tmp_path / "models")
    labelled = sorted(gold_queries(demo).values())
    reranker = tmp_path / "models" / "rr"  # the module's tiny reranker, with a fine-tune's record of its own
    reranker.mkdir(parents=True)
    for part in tiny_reranker.iterdir():
        (reranker / part.name).symlink_to(part)
    (reranker / "studio_model.json").write_text(json.dumps({"queries": {"train": [fingerprint(labelled[0])],
                                                                        "valid": []}}))
    result = evaluate.evaluate(demo, EXPERT, [], "db", systems=["bm25>rr"], ks="10", rerank_top=5)
    assert labelled[0] not in result.evalset.queries.values()
    assert result.report["held_out"]["by_model"] == {"rr": 1}


def test_nothing_held_out_is_refused_with_the_way_out(demo, tmp_path, monkeypatch):
    from studio.training.train_file import fingerprint

    monkeypatch.setattr(config, "MODELS_DIR", tmp_path / "models")
    labelled = gold_queries(demo).values()
    fine_tune_of_embedded(tmp_path, "ft", {"queries": {"train": [fingerprint(q) for q in labelled], "valid": []}})
    with pytest.raises(StudioError) as err:
        evaluate.evaluate(demo, EXPERT, ["ft"], "db", ks="10")
    assert err.value.code == "no_held_out_queries" and "--test-fraction" in str(err.value)


def test_a_beir_folders_split_and_the_first_model_as_the_baseline(p, tmp_path):
    queries = [json.loads(line)["text"] for line in (DEMO_DIR / "queries.jsonl").read_text("utf-8").splitlines()]
    train = training_file(tmp_path / "t.jsonl", queries[:27])
    result = evaluate.evaluate(p, EXPERT, ["default", "all-MiniLM-L6-v2"], "beir", folder=DEMO_DIR, exclude=train,
                               ks="10")
    assert result.report["queries"] == 3 and result.report["evalset"] == "demo/test without the queries of t.jsonl"
    [comparison] = result.report["comparisons"]
    assert (comparison["baseline"], comparison["model"]) == ("default", "all-MiniLM-L6-v2")
    assert all(row["delta"] == 0 for row in comparison["rows"]), "no ★ set: 'default' is the embedded model"
    assert evaluate.evaluate(p, ADMIN, ["default"], "beir").report["evalset"] == "demo/test", "the demo by default"


def test_what_the_evaluation_refuses(p, tmp_path):
    for kwargs, code in (({"ks": "1,0"}, "bad_cutoffs"), ({"exclude": str(tmp_path / "gone.jsonl")}, "train_file_missing")):
        with pytest.raises(StudioError) as err:
            evaluate.evaluate(p, EXPERT, ["default"], "beir", **kwargs)
        assert err.value.code == code
    with pytest.raises(StudioError) as err:
        evaluate.evaluate(p, EXPERT, [" "], "beir")
    assert err.value.code == "pick_models"
    with pytest.raises(StudioError) as err:
        evaluate.evaluate(p, EXPERT, ["default"], "db")
    assert err.value.code == "no_eval_queries", "an empty project has no gold labels"
    with pytest.raises(StudioError) as err:
        evaluate.evaluate(p, EXPERT, ["default"], "web")
    assert err.value.code == "bad_source"


def test_an_expert_draws_the_map_and_writes_the_reports(p, exports):
    result = evaluate.evaluate(p, EXPERT, ["default"], "beir", ks="10")
    drawn = evaluate.embedding_map(p, EXPERT, ["default", "default"], "beir", picked=[result.map_queries[0][0]])
    assert len(drawn.panels) == 1 and drawn.queries == result.evalset.queries
    assert sum(drawn.panels[0].selected) == 1
    files = evaluate.write_reports(p, EXPERT, result.report, lang="zh-CN", queries=drawn.queries)
    assert files.html.parent.parent == exports and "评估报告" in files.html.read_text(encoding="utf-8")
    assert (files.csv.name, files.queries.name) == ("metrics.csv", "queries.csv")
    assert len(files.queries.read_text(encoding="utf-8-sig").splitlines()) == 1 + 30
    named = evaluate.write_reports(p, EXPERT, result.report, csv=exports / "out" / "m.csv")
    assert named.html is None and named.queries == exports / "out" / "m.queries.csv" and named.queries.exists()


def test_an_annotator_may_not_evaluate_and_nothing_is_written(p, exports, tmp_path):
    report = {"models": [], "comparisons": [], "warnings": [], "evalset": "x", "queries": 0, "documents": 0}
    assert_refused(p, ANNOTATOR, evaluate.evaluate, ["default"], "beir")
    assert_refused(p, ANNOTATOR, evaluate.embedding_map, ["default"], "beir")
    assert_refused(p, ANNOTATOR, evaluate.write_reports, report)
    assert_refused(p, ANNOTATOR, evaluate.write_reports, report, html=tmp_path / "r.html")
    assert not exports.exists() and not (tmp_path / "r.html").exists()


def test_the_page_names_folders_inside_the_project(tmp_path, monkeypatch):
    datasets = tmp_path / "datasets"
    (datasets / "scifact").mkdir(parents=True)
    (datasets / "scifact" / "corpus.jsonl").write_text("{}\n")
    (datasets / "notes").mkdir()
    monkeypatch.setattr(config, "DATASETS_DIR", datasets)
    assert files.dataset_names() == ["demo", "scifact"]
    assert files.dataset_folder("demo", field="BEIR folder") == DEMO_DIR
    assert files.dataset_folder("scifact", field="BEIR folder") == (datasets / "scifact").resolve()
    for name in (str(DEMO_DIR), "../datasets", "~/x"):
        with pytest.raises(StudioError) as err:
            files.dataset_folder(name, field="BEIR folder")
        assert err.value.code == "path_outside"
    monkeypatch.setattr(config, "EXPORTS_DIR", tmp_path / "exports")
    training_file(tmp_path / "exports" / "run" / "train.jsonl", ["q"])
    training_file(tmp_path / "exports" / "run" / "train.valid.jsonl", ["q"])
    assert files.training_file_names() == ["run/train.jsonl"]
    assert files.export_path("", field="x") is None
    with pytest.raises(StudioError):
        files.export_path("/etc/passwd", field="x")
