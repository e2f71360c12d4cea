"""Export recipe (⑧ and `studio recipe export`) through the actions layer: an expert writes a recipe (audited), a
page names its folder inside exports/ only, and an annotator — who must not see gold labels — is refused."""

from __future__ import annotations

import json

import pytest

from actors import ADMIN, ANNOTATOR, EXPERT, assert_refused
from studio import config
from studio.actions import Project, recipe
from studio.errors import StudioError
from studio.store import opened
from studio.store.audit import history


@pytest.fixture
def p(project, db_path) -> Project:
    """A project with pairs and people but no gold labels yet."""
    return Project(db_path)


@pytest.fixture
def exports(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "EXPORTS_DIR", tmp_path / "exports")
    return tmp_path / "exports"


def test_an_annotator_is_refused(p, tmp_path):
    assert_refused(p, ANNOTATOR, recipe.export_recipe, "bm25", tmp_path / "r")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("actor", [EXPERT, ADMIN])
def test_an_expert_exports_a_recipe_and_the_export_is_audited(p, actor, tmp_path):
    path = recipe.export_recipe(p, actor, "bm25", tmp_path / "r")
    assert path == tmp_path / "r" / "recipe.json"
    written = json.loads(path.read_text(encoding="utf-8"))
    assert (written["format"], written["version"], written["spec"]) == ("relevance-studio-recipe", 1, "bm25")
    with opened(p.db_path) as db:
        entry = history(db, entity="recipe")[0]
    assert (entry["actor"], entry["action"]) == (actor.name, "recipe.export")
    assert entry["after"]["path"] == str(path) and entry["after"]["spec"] == "bm25"


def test_a_page_names_a_folder_inside_exports_and_nothing_outside(exports):
    assert recipe.page_folder("deploy/v1", "bm25") == (exports / "deploy" / "v1").resolve()
    default = recipe.page_folder("", "medical-v1+bm25>rr")
    assert default.parent == (exports / "recipes").resolve() and default.name.startswith("medical-v1+bm25~rr-")
    for name in ("/etc/x", "../x", "~/x"):
        with pytest.raises(StudioError) as err:
            recipe.page_folder(name, "bm25", "zh-CN")
        assert err.value.code == "path_outside" and err.value.params["field"] == "配方文件夹（exports/ 内）"


def test_without_a_folder_a_recipe_goes_under_exports_recipes(p, exports):
    path = recipe.export_recipe(p, EXPERT, "bm25")
    assert path.parent.parent == exports / "recipes" and path.name == "recipe.json"


def test_the_summary_says_what_was_written_in_both_languages(p, tmp_path):
    path = recipe.export_recipe(p, EXPERT, "bm25", tmp_path / "r")
    en, zh = recipe.summary_lines(path, "en"), recipe.summary_lines(path, "zh-CN")
    assert en[0] == f"Wrote {path}: the recipe of bm25."
    assert en[1].startswith("No threshold: BM25 scores depend") and zh[1].startswith("没有阈值：BM25 分数")


def test_bad_options_are_refused_before_anything_is_written(p, tmp_path):
    for spec, options, code in [("a+b+c", {}, "system_too_many"), ("bm25", {"target_precision": 0}, "bad_precision"),
                                ("default+bm25", {"source": "beir", "tune_on": "test"}, "tune_on_eval_split")]:
        with pytest.raises(StudioError) as err:
            recipe.export_recipe(p, EXPERT, spec, tmp_path / "r", **options)
        assert err.value.code == code
    assert not (tmp_path / "r").exists()


def test_the_recommended_system_of_a_report(p):
    report = {"recommendation": {"spec": "default+bm25", "fusion": {"method": "rrf", "weight": None}}}
    assert recipe.recommended(report) == ("default+bm25", {"method": "rrf", "weight": None})
    assert recipe.recommended({"recommendation": None}) is None


def test_a_report_that_scored_trained_on_queries_exports_no_recipe(p, tmp_path):
    """--include-trained: the numbers flatter the fine-tune, so no recipe is written from that report; a held-out
    report's recipe records how many held-out queries measured it and that none was trained on."""
    report = {"models": [{"model": "bm25", "metrics": {"ndcg@10": 0.5}, "system": {"spec": "bm25"}}],
              "queries": 12, "held_out": {"queries": 12, "left_out": 3, "by_model": {"ft": 3}, "included": True,
                                          "trained_on_evaluated": 3}}
    with pytest.raises(StudioError) as err:
        recipe.export_recipe(p, EXPERT, "bm25", tmp_path / "r", measured=report)
    assert err.value.code == "recipe_from_trained" and not (tmp_path / "r").exists()
    report["held_out"] = {**report["held_out"], "included": False, "trained_on_evaluated": 0, "queries": 9}
    written = json.loads(recipe.export_recipe(p, EXPERT, "bm25", tmp_path / "r", measured=report).read_text())
    assert written["measured"]["held_out_queries"] == 9 and written["measured"]["trained_on_evaluated"] == 0
    assert written["measured"]["left_out_trained"] == 3


# ----------------------------------------------------------------------------------- serving and int8 (issue 28)

def test_an_annotator_may_not_serve_a_recipe_and_an_expert_gets_a_service(p, tmp_path):
    from fastapi.testclient import TestClient

    from studio.actions import serve

    recipe.export_recipe(p, EXPERT, "bm25", tmp_path / "r")
    assert_refused(p, ANNOTATOR, serve.serve_recipe, tmp_path / "r")
    service = serve.serve_recipe(p, EXPERT, tmp_path / "r", documents=config.DEMO_DIR / "corpus.jsonl")
    assert (service.host, len(service.index), service.notes) == ("127.0.0.1", 95, [])
    hits = TestClient(service.app).post("/search", json={"query": "糖尿病 blood pressure", "k": 3}).json()["results"]
    assert len(hits) == 3 and all(hit["relevant"] is None for hit in hits)  # BM25 has no calibrated threshold
    with pytest.raises(StudioError) as err:
        serve.serve_recipe(p, EXPERT, tmp_path / "r", host="192.168.1.5")
    assert err.value.code == "serve_needs_token"
    assert serve.serve_recipe(p, EXPERT, tmp_path / "r", host="::1").host == "::1"


def tiny_beir(folder) -> None:
    """Six documents, three labelled queries."""
    (folder / "qrels").mkdir(parents=True)
    docs = ["Aspirin thins the blood.", "Coffee raises blood pressure.", "糖尿病足需要每天检查。",
            "Insulin lowers blood sugar.", "Sleep helps recovery.", "高血压患者应少吃盐。"]
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "title": "", "text": t}) + "\n"
                                                 for i, t in enumerate(docs)), encoding="utf-8")
    queries = {"q0": "blood thinner", "q1": "coffee and blood pressure", "q2": "糖尿病足"}
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}) + "\n"
                                                  for k, v in queries.items()), encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\nq1\td1\t1\nq2\td2\t1\n")


def test_int8_check_measures_speed_and_ndcg_on_the_evaluation_set(p, tmp_path):
    tiny_beir(tmp_path / "beir")
    path = recipe.export_recipe(p, EXPERT, "default", tmp_path / "r", source="beir", folder=tmp_path / "beir",
                                int8_check=True)
    q8 = json.loads(path.read_text(encoding="utf-8"))["int8"]
    assert (q8["queries"], q8["documents"], q8["evalset"], q8["max_drop"]) == (3, 6, "beir/test", 0.01)
    assert q8["ndcg_delta"] == pytest.approx(q8["ndcg_int8"] - q8["ndcg_fp32"], abs=1e-3)
    assert q8["speedup"] == pytest.approx(q8["fp32_s"] / q8["int8_s"], rel=0.05)
    assert q8["advertised"] == (q8["ndcg_delta"] >= -0.01 and q8["speedup"] > 1)
    lines = recipe.summary_lines(path)
    assert lines[-1].startswith(f"int8: {q8['speedup']:.2f}× the speed of fp32, nDCG@10 {q8['ndcg_delta']:+.4f} "
                                "on 3 held-out queries of beir/test: ")


def test_int8_check_needs_a_model_and_labelled_queries(tmp_path):
    nowhere = Project(tmp_path / "none.db")
    for spec, code in (("bm25", "int8_no_model"), ("default", "int8_needs_labels")):
        with pytest.raises(StudioError) as err:
            recipe.export_recipe(nowhere, EXPERT, spec, tmp_path / "r", int8_check=True)
        assert err.value.code == code
    assert not (tmp_path / "none.db").exists()
