"""Recipes: `studio recipe export` writes what was measured (models by path, fusion, BM25 tokenizer, reranker,
threshold, how a document's text is formed) with the runtime beside it, and the README's snippet — run here exactly
as printed, importing that runtime from the recipe folder — ranks documents as the studio's own search does."""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from actors import EXPERT
from studio import config
from studio.actions import Project
from studio.actions.recipe import export_recipe
from studio.evaluation import runner, systems
from studio.recipe import Recipe, build_recipe, calibration_target, measured_from
from studio.recipe_runtime import DOCUMENT_TEXT, document_text, tokenizer_of
from studio.retrieval import cpu_encode
from studio.retrieval.fusion import fuse_rrf, fuse_weighted
from studio.retrieval.tokenize import tokenize
from studio.store import opened
from studio.records import document_text as studio_document_text

README = Path(__file__).resolve().parent.parent / "README.md"
QUERIES = ("糖尿病的主要并发症有哪些？", "high blood pressure: can I drink coffee 咖啡 every day?")


def short_corpus(split_demo: Path) -> dict[str, str]:
    """The demo corpus's first 30 documents, cut to 80 characters: what the snippet indexes (encoding the whole
    corpus on a CPU takes seconds a query)."""
    corpus = runner.from_beir(split_demo, "test").corpus
    return {doc: text[:80] for doc, text in list(corpus.items())[:30]}


def readme_snippet() -> str:
    """The ```python block right after ``<!-- recipe-snippet -->`` in README.md, as printed."""
    after = README.read_text(encoding="utf-8").split("<!-- recipe-snippet -->", 1)[1]
    found = re.match(r"\s*```python\n(.*?)\n```", after, re.S)
    assert found, "README.md has no ```python block after <!-- recipe-snippet -->"
    return found.group(1)


def run_snippet(folder: Path, corpus: dict[str, str], query: str, monkeypatch) -> list[tuple[int, float]]:
    """Run the README snippet in `folder` (the recipe in folder/recipe/) with only `documents` (`corpus` as
    ``{"id", "text"}`` dicts) and `query` given."""
    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the snippet's sys.path.insert, undone after
    scope = {"documents": [{"id": key, "text": text} for key, text in corpus.items()], "query": query}
    exec(compile(readme_snippet(), "README.md", "exec"), scope)  # noqa: S102  (the README's own code)
    return scope["results"]


@pytest.fixture(scope="module")
def no_project(tmp_path_factory) -> Project:
    """A project without a database: no gold labels to calibrate on."""
    return Project(tmp_path_factory.mktemp("none") / "studio.db")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Project:
    """The demo project: 23 relevant, 41 irrelevant and 16 partially relevant gold pairs."""
    from studio.demo import load_demo

    project = Project(tmp_path_factory.mktemp("demo") / "studio.db")
    with opened(project.db_path) as db:
        load_demo(db)
    return project


@pytest.fixture(scope="module")
def tuned(split_demo, no_project, tmp_path_factory) -> Path:
    """The folder holding recipe/ for default+bm25, its fusion tuned on the train split."""
    folder = tmp_path_factory.mktemp("tuned")
    export_recipe(no_project, EXPERT, "default+bm25", folder / "recipe", source="beir", folder=split_demo,
                  split="test", tune_on="train")
    return folder


def studio_fused(recipe: dict, documents: dict[str, str], query: str) -> dict[str, float]:
    """The studio's own fused search for `query`: its BM25 and dense runs, fused by studio.retrieval.fusion."""
    depth = recipe["depth"]
    pool = runner.EvalSet("q", {"q": query}, documents, {})
    dense = runner.retrieve(pool, recipe["first_stage"][0]["model"], k=depth).run
    bm25 = systems.retrieve_bm25(pool, depth).run
    fusion = recipe["fusion"]
    fused = fuse_rrf(dense, bm25, depth=depth) if fusion["method"] == "rrf" else \
        fuse_weighted(dense, bm25, fusion["weight"], depth)
    return fused["q"]


def assert_same_ranking(results: list[tuple[int, float]], studio: dict[str, float], doc_ids: list[str]) -> None:
    """The snippet's top 10 are the studio's top 10: the same scores in order, each document scored as the studio
    scores it (documents tied on a score may come in either order)."""
    best = sorted(studio.values(), reverse=True)[:10]
    assert [s for _, s in results] == pytest.approx(best, abs=1e-5)
    for index, score in results:
        assert studio[doc_ids[index]] == pytest.approx(score, abs=1e-5)


# ------------------------------------------------------------------------------------------- the README snippet

@pytest.mark.parametrize("pin", ["", "@rrf"])
def test_the_readme_snippet_ranks_as_the_studios_fused_search(pin, tuned, split_demo, no_project, tmp_path,
                                                              monkeypatch):
    if pin:
        export_recipe(no_project, EXPERT, f"default+bm25{pin}", tmp_path / "recipe")
        folder = tmp_path
    else:
        folder = tuned
    recipe = json.loads((folder / "recipe" / "recipe.json").read_text(encoding="utf-8"))
    assert recipe["fusion"]["method"] == ("rrf" if pin else "weighted")  # the demo's tuning picks a weighted sum
    # The snippet encodes with sentence-transformers in fp32; the studio's bf16 CPU path moves cosines by ~1e-4,
    # which min-max fusion turns into score changes of ~3e-3: bit-for-bit parity is with the fp32 path.
    monkeypatch.setenv(cpu_encode.ENV, "0")
    corpus = short_corpus(split_demo)
    doc_ids = list(corpus)
    for query in QUERIES:
        results = run_snippet(folder, corpus, query, monkeypatch)
        assert len(results) == 10
        assert_same_ranking(results, studio_fused(recipe, corpus, query), doc_ids)


def test_the_runtimes_tokenizer_is_the_studios(tuned):
    recipe_tokenize = tokenizer_of(Recipe.load(tuned / "recipe").bm25["tokenizer"])
    texts = ["糖尿病的主要并发症有哪些？What are the complications of Type-2 diabetes (HbA1c > 7%)?",
             "高血压患者能喝咖啡吗 I/O x_y a 5 mg 2型糖尿病 ＡＢＣ１２ 中 the of Ünïcödé naïve café 𠀀字",
             "", "   ", "COVID-19疫苗 mRNA 接种后发烧38.5℃怎么办", "a an I 1 22 _ 乙"]
    texts += [json.loads(line)["text"] for line in (config.DEMO_DIR / "corpus.jsonl").open(encoding="utf-8")]
    texts += [json.loads(line)["text"] for line in (config.DEMO_DIR / "queries.jsonl").open(encoding="utf-8")]
    for text in texts:
        assert recipe_tokenize(text) == tokenize(text), text


@pytest.mark.parametrize("title, text", [("Title", "Body"), ("", "Body"), ("  Title ", "  Body\n"),
                                         ("Title only", ""), ("糖尿病", "  并发症 ")])
def test_a_documents_text_is_formed_as_the_studio_forms_it(title, text, tmp_path):
    # A corpus line read as `studio import beir` / ⑧'s evaluation read it (stripped, a missing text is the title).
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(json.dumps({"_id": "d", "title": title, "text": text}) + "\n")
    (tmp_path / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "query"}) + "\n")
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq\td\t1\n")
    studio_text = runner.from_beir(tmp_path, "test").corpus["d"]
    assert document_text({"id": "d", "title": title, "text": text}, DOCUMENT_TEXT) == studio_text
    assert studio_document_text(title, text) == studio_text, "studio.records and the recipe runtime agree"


def test_the_recipe_folder_carries_a_runtime_that_imports_nothing_of_the_studio(tuned):
    recipe = Recipe.load(tuned / "recipe")
    assert recipe.document_text == DOCUMENT_TEXT == {"fields": ["title", "text"], "separator": "\n",
                                                     "strip": True, "skip_empty": True, "empty_text": "title"}
    copy = tuned / "recipe" / "recipe_runtime.py"
    from studio import recipe_runtime

    assert copy.read_text(encoding="utf-8") == Path(recipe_runtime.__file__).read_text(encoding="utf-8")
    imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(copy.read_text(encoding="utf-8")))
                for alias in getattr(node, "names", []) if isinstance(node, (ast.Import, ast.ImportFrom))}
    imported |= {node.module.split(".")[0] for node in ast.walk(ast.parse(copy.read_text(encoding="utf-8")))
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert "studio" not in imported
    assert imported - {"__future__", "base64", "hashlib", "json", "re", "threading", "warnings", "collections",
                       "dataclasses", "pathlib", "numpy", "bm25s", "sentence_transformers", "torch", "annotations",
                       "Iterable", "Mapping", "Sequence", "dataclass", "field", "Path", "SentenceTransformer",
                       "CrossEncoder"} == set()


def test_the_snippet_reranks_with_the_raw_cross_encoder_scores_the_studio_uses(tiny_reranker, split_demo,
                                                                                no_project, tmp_path, monkeypatch):
    path = export_recipe(no_project, EXPERT, f"default>{tiny_reranker}", tmp_path / "recipe", rerank_top=12)
    recipe = json.loads(path.read_text(encoding="utf-8"))
    assert recipe["reranker"] == {"model": str(tiny_reranker), "name": str(tiny_reranker), "top_n": 12,
                                  "max_length": 512, "score": "logit"}
    assert recipe["fusion"] is None and recipe["bm25"] is None
    assert recipe["first_stage"] == [{"kind": "dense", "model": str(config.embedded_model_path()), "name": "default",
                                      "mode": "dense"}]
    corpus = short_corpus(split_demo)
    doc_ids = list(corpus)
    results = run_snippet(tmp_path, corpus, QUERIES[0], monkeypatch)
    pool = runner.EvalSet("q", {"q": QUERIES[0]}, corpus, {})
    first = runner.retrieve(pool, recipe["first_stage"][0]["model"], k=recipe["depth"])
    reranked = runner.rerank(pool, first, str(tiny_reranker), top=12).run["q"]
    assert_same_ranking(results, reranked, doc_ids)  # the 12 reranked, then the rest below them


def test_the_runtime_ranks_the_project_as_studio_search_does(demo, tiny_reranker, tmp_path):
    # Fused, then reranked (the fused recipe alone is checked through the service: tests/test_recipe_serve.py).
    from studio.cli import cli
    from studio.recipe_runtime import load_recipe

    spec = f"default+bm25@rrf>{tiny_reranker}"
    export_recipe(demo, EXPERT, spec, tmp_path / "r", rerank_top=12)
    runtime = load_recipe(tmp_path / "r")
    documents = [json.loads(line) for line in (config.DEMO_DIR / "corpus.jsonl").open(encoding="utf-8")]
    for query in QUERIES:
        hits = runtime.search(query, documents, k=10)
        args = ["--db", str(demo.db_path), "search", query, "--system", spec, "--depth", "12", "--json"]
        studio = json.loads(CliRunner().invoke(cli, args, catch_exceptions=False).stdout)["results"]
        assert [h["id"] for h in hits] == [r["key"] for r in studio]
        assert [h["score"] for h in hits] == pytest.approx([r["score"] for r in studio], abs=1e-5)
        assert all(h["id"] == documents[h["index"]]["_id"] for h in hits)


# ------------------------------------------------------------------------------------------------ what it holds

def test_a_tuned_fusion_says_where_it_was_tuned_and_bm25_how_it_tokenizes(tuned):
    recipe = Recipe.load(tuned / "recipe")
    assert (recipe.spec, recipe.depth) == ("default+bm25", 100)
    assert recipe.first_stage[1] == {"kind": "bm25"}
    fusion = recipe.fusion
    assert fusion["chosen_by"] == "tuned" and fusion["tune_queries"] == 15
    assert fusion["tune_set"].endswith("/train") and fusion["rrf_k"] == 60 and fusion["depth"] == 100
    assert fusion["weights"] == [fusion["weight"], 1 - fusion["weight"]] and fusion["normalisation"] == "min-max"
    import bm25s

    assert (recipe.bm25["k1"], recipe.bm25["b"], recipe.bm25["method"]) == (1.5, 0.75, "lucene")
    assert recipe.bm25["version"] == bm25s.__version__
    assert {"the", "of", "what"} <= set(recipe.bm25["tokenizer"]["stopwords"])
    assert recipe.threshold is None and "no database" in recipe.threshold_note


def test_a_pinned_weight_is_kept_and_nothing_is_tuned(no_project, split_demo, tmp_path):
    path = export_recipe(no_project, EXPERT, "default+bm25@0.7", tmp_path / "r", source="beir", folder=split_demo,
                         tune_on="train", fusion={"method": "rrf", "weight": None, "chosen_by": "tuned"})
    fusion = json.loads(path.read_text(encoding="utf-8"))["fusion"]
    assert (fusion["method"], fusion["weight"], fusion["chosen_by"], fusion["tune_queries"]) == \
        ("weighted", 0.7, "pinned", 0)
    assert fusion["weights"] == [0.7, 1 - 0.7]


def test_an_unpinned_fusion_without_tuning_queries_is_rrf_untuned(no_project, tmp_path):
    fusion = json.loads(export_recipe(no_project, EXPERT, "bm25+default", tmp_path / "r").read_text())["fusion"]
    assert (fusion["method"], fusion["weights"], fusion["chosen_by"]) == ("rrf", [1.0, 1.0], "untuned")


def test_what_an_evaluation_measured_goes_into_the_recipe(no_project, tmp_path):
    measured_fusion = {"method": "weighted", "weight": 0.3, "chosen_by": "tuned", "tune_queries": 15,
                       "tune_set": "scifact/train", "tune_score": 0.61}
    report = {"evalset": "scifact/test", "queries": 300, "models": [
        {"model": "bm25", "metrics": {"ndcg@10": 0.66}, "timings": {"ms_per_query": 1.0}},
        {"model": "default+bm25", "metrics": {"ndcg@10": 0.7, "recall@10": 0.8}, "timings": {},
         "system": {"spec": "default+bm25", "fusion": measured_fusion, "rerank_top": None, "ms_per_query": 4.2}}]}
    recipe = json.loads(export_recipe(no_project, EXPERT, " default + bm25 ", tmp_path / "r",
                                      measured=report).read_text(encoding="utf-8"))
    assert recipe["fusion"]["weight"] == 0.3 and recipe["fusion"]["tune_set"] == "scifact/train"
    assert recipe["measured"] == {"evalset": "scifact/test", "queries": 300, "ms_per_query": 4.2,
                                  "held_out_queries": 300, "left_out_trained": 0, "trained_on_evaluated": 0,
                                  "metrics": {"ndcg@10": 0.7, "recall@10": 0.8}}
    assert measured_from(report, "default+bm25@rrf") is None


# ------------------------------------------------------------------------------------------------ the threshold

@pytest.mark.parametrize("spec, applies_to", [("default", "final"), ("default+bm25", "dense_stage")])
def test_the_threshold_is_the_gold_labels_calibration(spec, applies_to, demo, tmp_path):
    from studio.actions.calibrate import calibrate

    recipe = json.loads(export_recipe(demo, EXPERT, spec, tmp_path / "r", target_precision=0.8).read_text())
    threshold = recipe["threshold"]
    expected = calibrate(demo, EXPERT, "default", target_precision=0.8).as_dict()
    assert threshold["best"] == pytest.approx(expected["best"])
    assert threshold["at_precision"] == pytest.approx(expected["at_precision"])
    assert (threshold["pairs"], threshold["positives"], threshold["negatives"]) == (64, 23, 41)
    assert threshold["applies_to"] == applies_to and threshold["model"] == str(config.embedded_model_path())
    assert recipe["threshold_note"] is None
    assert (threshold["note"] is None) == (applies_to == "final")
    if applies_to == "dense_stage":
        assert "normalised per query" in threshold["note"] and "default" in threshold["note"]


def test_a_reranker_is_calibrated_on_its_raw_scores(demo, tiny_reranker, tmp_path):
    recipe = json.loads(export_recipe(demo, EXPERT, f"default+bm25@rrf>{tiny_reranker}", tmp_path / "r",
                                      rerank_top=30).read_text())
    assert (recipe["threshold"]["kind"], recipe["threshold"]["applies_to"]) == ("reranker", "final")
    assert recipe["threshold"]["model"] == str(tiny_reranker) and recipe["reranker"]["top_n"] == 30


def test_no_threshold_says_why(tmp_path, no_project):
    from conftest import make_batch
    from studio.store.imports import import_batch

    one_kind = Project(tmp_path / "one.db")
    with opened(one_kind.db_path) as db:
        import_batch(db, make_batch(3, ratings=[(i, who, 2) for i in range(2) for who in ("alice", "bob")]))
    recipe = json.loads(export_recipe(one_kind, EXPERT, "default", tmp_path / "a").read_text())
    assert recipe["threshold"] is None
    assert "there are 2 relevant and 0 irrelevant" in recipe["threshold_note"]
    recipe = json.loads(export_recipe(no_project, EXPERT, "bm25", tmp_path / "b").read_text())
    assert recipe["threshold"] is None and recipe["threshold_note"].startswith("BM25 scores depend")
    assert recipe["bm25"]["tokenizer"]["min_length"] == 2 and recipe["fusion"] is None
    zh = build_recipe("bm25", lang="zh-CN")
    assert zh["threshold_note"].startswith("BM25 分数")
    assert calibration_target("m3:sparse").note == "recipe.threshold_mode"
    assert calibration_target("bm25+m3:sparse").model is None


# ------------------------------------------------------------------------------------------------------- the CLI

def test_studio_recipe_export_prints_the_fusion_and_writes_json(split_demo, tmp_path):
    from studio.cli import cli

    out = tmp_path / "deploy"
    args = ["--db", str(tmp_path / "none.db"), "recipe", "export", "default+bm25@0.6", str(out)]
    printed = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert printed.exit_code == 0, printed.output
    lines = printed.output.splitlines()
    assert lines[0] == f"Wrote {out / 'recipe.json'}: the recipe of default+bm25@0.6."
    assert lines[1] == ("Fusion: weighted sum of min-max scores, 0.6 × default + 0.4 × bm25, as the system's spec "
                        "says.")
    assert lines[2].startswith("No threshold: the project has no database")
    as_json = json.loads(CliRunner().invoke(cli, args + ["--json"], catch_exceptions=False).stdout)
    assert as_json["path"] == str(out / "recipe.json") and as_json["recipe"]["fusion"]["weight"] == 0.6
    assert not (tmp_path / "none.db").exists(), "exporting a recipe creates no database"
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"evalset": "demo/test", "queries": 15, "models": [
        {"model": "default+bm25", "metrics": {"ndcg@10": 0.5}, "timings": {},
         "system": {"spec": "default+bm25", "fusion": {"method": "weighted", "weight": 0.2, "chosen_by": "tuned",
                                                        "tune_queries": 15, "tune_set": "demo/train"}}}]}))
    measured = CliRunner().invoke(cli, args[:4] + ["default+bm25", str(out), "--report", str(report)])
    assert measured.exit_code == 0, measured.output
    assert "0.2 × default + 0.8 × bm25, chosen on 15 labelled queries of demo/train" in measured.output
    assert Recipe.load(out).measured["metrics"] == {"ndcg@10": 0.5}
    usage = CliRunner().invoke(cli, ["recipe", "export", "default+bm25", str(out), "--tune-on", "train"])
    assert usage.exit_code == 2 and "--beir" in usage.output
    bad = CliRunner().invoke(cli, ["recipe", "export", "a+b+c", str(out)])
    assert bad.exit_code == 1 and "at most two first stages" in bad.output and "Traceback" not in bad.output
