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
