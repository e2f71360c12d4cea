"""Systems (BM25, dense, fusion, reranker): specs, fusion against ranx, tuning that never sees evaluated or trained
queries, the recommendation, `studio eval --system` and its run files."""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner

from studio.errors import StudioError
from studio.evaluation import runner, systems
from studio.evaluation.report import evaluate_systems, recommendation_line, warning_lines
from studio.retrieval.fusion import fuse_rrf, fuse_weighted
from studio.retrieval import stages
from studio.retrieval.systems import Stage, System, choices, file_stem, parse


# ------------------------------------------------------------------------------------------------------- specs

@pytest.mark.parametrize("spec, stages, reranker, fusion, weight", [
    ("bm25", ("bm25",), None, None, None),
    ("BM25", ("bm25",), None, None, None),
    ("medical-v1", ("medical-v1",), None, None, None),
    ("bge-m3:sparse", ("bge-m3:sparse",), None, None, None),
    ("medical-v1+bm25", ("medical-v1", "bm25"), None, None, None),
    (" medical-v1 + bm25 @ 0.7 ", ("medical-v1", "bm25"), None, "weighted", 0.7),
    ("medical-v1+bm25@rrf", ("medical-v1", "bm25"), None, "rrf", None),
    ("medical-v1>rr-v1", ("medical-v1",), "rr-v1", None, None),
    ("medical-v1+bm25>rr-v1", ("medical-v1", "bm25"), "rr-v1", None, None),
    ("BAAI/bge-m3:weighted+bm25", ("BAAI/bge-m3:weighted", "bm25"), None, None, None),
    ("C:\\models\\x", ("C:\\models\\x",), None, None, None),
])
def test_specs_parse_into_stages_fusion_and_reranker(spec, stages, reranker, fusion, weight):
    system = parse(spec)
    assert tuple(map(str, system.stages)) == stages
    assert (system.reranker, system.fusion, system.weight) == (reranker, fusion, weight)
    assert parse(system.spec) == system  # the canonical spec reads back the same


def test_the_canonical_spec_is_what_the_user_wrote_without_spaces():
    assert parse(" medical-v1 + bm25 @0.70 > rr ").spec == "medical-v1+bm25@0.7>rr"
    assert parse("bm25").is_bm25 and not parse("bm25>rr").is_bm25
    assert parse("a+bm25>rr").first_stage.spec == "a+bm25"
    assert parse("a+bm25>rr").models == ["a", "rr"]


@pytest.mark.parametrize("spec, code", [
    ("", "system_empty"), ("a+", "system_empty"), ("a>", "system_empty"), (">rr", "system_empty"),
    ("a+b+c", "system_too_many"), ("a>r1>r2", "system_too_many"),
    ("a@0.5", "system_bad_fusion"), ("a+bm25@1.5", "system_bad_fusion"), ("a+bm25@fast", "system_bad_fusion"),
    ("bm25:sparse", "system_bad_mode"),
])
def test_bad_specs_say_what_is_wrong_in_both_languages(spec, code):
    with pytest.raises(StudioError) as caught:
        parse(spec)
    assert caught.value.code == code
    assert caught.value.message("zh-CN") != caught.value.message("en")
    if spec.strip() and code != "system_empty":
        assert spec.strip() in caught.value.message("en")


def test_run_files_are_named_after_the_spec_without_path_separators():
    assert file_stem("medical-v1+bm25") == "medical-v1+bm25"
    assert file_stem("medical-v1+bm25@0.7>rr-v1") == "medical-v1+bm25@0.7~rr-v1"
    assert file_stem("/tmp/models/ft+bm25") == "ft+bm25"
    assert file_stem("bge-m3:sparse") == "bge-m3_sparse"


# ------------------------------------------------------------------------------------------- stage kinds

CORPUS = {"d1": "apple pie recipe", "d2": "apple tree pruning", "d3": "car engine repair"}
QUERIES = {"q1": "apple recipe", "q2": "engine"}


@pytest.mark.parametrize("kind", list(stages.KINDS.values()), ids=str)
def test_each_stage_kind_parses_its_example_and_is_in_the_docs(kind):
    """The registry is what the parser and the docs read: a kind's example parses to that kind, prints back as
    written, and the module docstrings of the registry and of systems.py name the kind."""
    system = parse(kind.example)
    if kind.place == "reranker":
        assert system.reranker == kind.example.split(">")[1]
    else:
        assert system.stages[0].kind is kind and str(system.stages[0]) == kind.example
    assert f"``{kind.name}`` — ``{kind.example}``" in stages.__doc__
    assert kind.spelled == () or any(spelled.lower() in kind.example.lower() for spelled in kind.spelled)


def test_what_each_kind_needs_and_whether_a_recipe_can_deploy_it():
    system = parse("run:prod.trec+bge-m3:sparse>rr")
    assert [s.kind.name for s in system.stages] == ["run", "m3"]
    assert system.models == ["bge-m3", "rr"] and system.run_files == ["prod.trec"]
    assert not system.exportable and parse("medical-v1+bm25>rr").exportable
    assert {k.name: k.needs for k in stages.KINDS.values()} == {
        "run": "run_file", "bm25": None, "m3": "embedder", "dense": "embedder", "cross-encoder": "reranker"}


def test_the_pickers_offer_what_the_registry_spells():
    assert choices(["ft"], ["prod.trec"]) == ["bm25", "ft", "ft+bm25", "run:prod.trec"]
    assert all(parse(spec) for spec in choices(["ft"], ["prod.trec"]))


def test_bm25_ranks_one_query_as_it_ranks_an_evaluation_set():
    stage = parse("bm25").stages[0]
    run, timings = stage.kind.retrieve(stage, "", QUERIES, CORPUS, 2)
    hits, ms, skipped = stage.kind.search(stage, "", QUERIES["q1"], list(CORPUS), list(CORPUS.values()), 2)
    assert [h.doc_key for h in hits] == sorted(run["q1"], key=run["q1"].get, reverse=True) == ["d1", "d2"]
    assert skipped == 0 and ms >= 0 and {"index_s", "search_s"} <= set(timings)


def test_a_run_file_stage_reads_its_rankings_by_the_projects_query_keys(tmp_path):
    path = tmp_path / "prod.trec"
    path.write_text("q1 Q0 d2 1 9.0 prod\nq1 Q0 gone 2 8.0 prod\nq1 Q0 d1 3 7.0 prod\n", encoding="utf-8")
    stage = parse(f"run:{path}").stages[0]
    assert stage.kind.precomputed and stage.kind.locate(stage, strict=True) == str(path)
    run, timings = stage.kind.retrieve(stage, str(path), {"tune:q1": "x", "q2": "y"}, CORPUS, 10,
                                       key=lambda q: q.removeprefix("tune:"))
    assert run == {"tune:q1": {"d2": 9.0, "gone": 8.0, "d1": 7.0}} and timings == {"ms_per_query": 0.0}
    hits, ms, skipped = stage.kind.search(stage, str(path), "x", list(CORPUS), list(CORPUS.values()), 2, ["q1"])
    assert [h.doc_key for h in hits] == ["d2", "d1"] and (ms, skipped) == (0.0, 1)


def test_a_bge_m3_mode_other_than_sparse_is_refused_before_a_search():
    stage = parse("bge-m3:colbert").stages[0]
    with pytest.raises(StudioError) as caught:
        stage.kind.check_searchable(stage, "bge-m3:colbert")
    assert caught.value.code == "mode_not_searchable"
    parse("bge-m3:sparse").stages[0].kind.check_searchable(parse("bge-m3:sparse").stages[0], "bge-m3:sparse")


# ------------------------------------------------------------------------------------------------ fusion = ranx

def _random_runs(seed: int) -> tuple[dict, dict]:
    rng = random.Random(seed)
    docs = [f"d{i:03d}" for i in range(60)]
    a, b = {}, {}
    for q in range(25):
        a[f"q{q}"] = {d: rng.uniform(-1, 1) for d in rng.sample(docs, 20)}
        b[f"q{q}"] = {d: rng.uniform(0, 30) for d in rng.sample(docs, 20)}
    return a, b


def _ranx(run: dict):
    from ranx import Run

    return Run({q: dict(sorted(docs.items(), key=lambda item: -item[1])) for q, docs in run.items()})


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.7, 1.0])
def test_weighted_fusion_equals_ranx_wsum_over_min_max(weight):
    from ranx import fuse

    a, b = _random_runs(1)
    ours = fuse_weighted(a, b, weight)
    theirs = fuse([_ranx(a), _ranx(b)], norm="min-max", method="wsum", params={"weights": [weight, 1 - weight]})
    theirs = theirs.to_dict()
    assert ours.keys() == theirs.keys()
    for q in ours:
        assert ours[q].keys() == theirs[q].keys()
        for d, score in ours[q].items():
            assert score == pytest.approx(theirs[q][d], abs=1e-9)


def test_rrf_equals_ranx_rrf():
    from ranx import fuse

    a, b = _random_runs(2)
    ours = fuse_rrf(a, b)
    theirs = fuse([_ranx(a), _ranx(b)], method="rrf", params={"k": 60}).to_dict()
    for q in ours:
        assert ours[q] == pytest.approx(theirs[q], abs=1e-12)


def test_fusion_keeps_the_best_depth_documents():
    a, b = _random_runs(3)
    full, cut = fuse_rrf(a, b), fuse_rrf(a, b, depth=5)
    for q in full:
        best = sorted(full[q], key=lambda d: (-full[q][d], d))[:5]
        assert list(cut[q]) == best


def test_choose_fusion_picks_the_weight_that_ranks_the_labels_best():
    # a ranks the relevant document first, b last: every weight leaning on a wins, RRF does not.
    a = {"q": {"rel": 3.0, "x": 2.0, "y": 1.0}}
    b = {"q": {"rel": 0.1, "x": 5.0, "y": 4.0}}
    fusion = systems.choose_fusion(a, b, {"q": {"rel": 2}}, "tune")
    assert fusion.method == "weighted" and fusion.weight >= 0.5 and fusion.chosen_by == "tuned"
    assert fusion.tune_queries == 1 and fusion.tune_score == 1.0
    assert systems.choose_fusion(a, b, {}).as_dict()["chosen_by"] == "untuned"


# --------------------------------------------------------------------------------------------- evaluation sets

def test_tuning_leaves_out_evaluated_queries_and_what_a_fine_tune_was_trained_on(split_demo, tmp_path):
    test = runner.from_beir(split_demo, "test")
    tune = runner.from_beir(split_demo, "train")
    trained = sorted(tune.qrels)[:3]
    train_file = tmp_path / "train.jsonl"
    train_file.write_text("".join(json.dumps({"query": tune.queries[q], "pos": ["p"], "neg": ["n"]},
                                             ensure_ascii=False) + "\n" for q in trained), encoding="utf-8")
    model = tmp_path / "ft"
    model.mkdir()
    (model / "studio_model.json").write_text(json.dumps({"train": str(train_file)}), encoding="utf-8")
    qrels = systems.tuning_qrels(parse(f"{model}+bm25"), test.queries.values(), tune)
    assert set(qrels) == {q for q in tune.qrels if q not in trained and any(tune.qrels[q].values())}
    assert not {tune.queries[q] for q in qrels} & set(test.queries.values())
    assert systems.tuning_qrels(parse("bm25+default"), test.queries.values(), None) == {}


@pytest.fixture(scope="module")
def report(split_demo):
    test = runner.from_beir(split_demo, "test")
    tune = runner.from_beir(split_demo, "train")
    specs = ["default", "bm25", "default+bm25", "default+bm25@rrf"]
    return evaluate_systems(test, specs, (5, 10), tune=tune)[0]


def test_each_system_is_a_row_named_by_its_spec_with_latency(report):
    assert [m["model"] for m in report["models"]] == ["default", "bm25", "default+bm25", "default+bm25@rrf"]
    for model in report["models"]:
        assert model["system"]["spec"] == model["model"] and model["system"]["ms_per_query"] > 0
        assert model["timings"]["queries_per_s"] == pytest.approx(1000 / model["timings"]["ms_per_query"], rel=0.01)
    fused, alone = report["models"][2]["timings"], report["models"][1]["timings"]
    assert fused["queries_per_s"] < alone["queries_per_s"], "a fusion runs BM25 and the model: slower than BM25"
    tuned = report["models"][2]["system"]["fusion"]
    assert tuned["chosen_by"] == "tuned" and tuned["tune_queries"] == 15 and tuned["tune_set"].endswith("train")
    assert report["models"][3]["system"]["fusion"]["chosen_by"] == "pinned"


def test_the_fused_run_is_the_fusion_of_the_single_systems_runs(split_demo, report):
    test = runner.from_beir(split_demo, "test")
    results = systems.run_systems(test, [parse("default"), parse("bm25"), parse("default+bm25@rrf")])
    fused = fuse_rrf(results[0].run, results[1].run, depth=100)
    assert results[2].run == fused
    metrics = {m["model"]: m["metrics"] for m in report["models"]}
    from studio.evaluation.metrics import evaluate

    ours = evaluate(test.qrels, fused, (5, 10))  # the report adds judged@K and ndcg_condensed@K beside these
    assert ours == pytest.approx({name: metrics["default+bm25@rrf"][name] for name in ours})


def test_every_system_is_compared_with_bm25_and_a_loser_is_flagged(report):
    against_bm25 = [(c["baseline"], c["model"]) for c in report["comparisons"] if c["kind"] == "bm25"]
    assert against_bm25 == [("bm25", "default"), ("bm25", "default+bm25"), ("bm25", "default+bm25@rrf")]
    value = {m["model"]: m["metrics"]["ndcg@10"] for m in report["models"]}
    losers = {w["model"] for w in report["warnings"] if w["kind"] == "bm25_worse"}
    assert losers == {s for s in value if s != "bm25" and value[s] < value["bm25"]}
    assert "default" in losers  # on the demo, BM25 beats the small English model
    lines = warning_lines(report, "en")
    assert any(line.startswith("⚠ default loses to BM25") and "consider default+bm25" in line for line in lines)


def test_the_recommended_system_is_the_best_one_with_its_lead_and_latency(report):
    value = {m["model"]: m["metrics"]["ndcg@10"] for m in report["models"]}
    best = max(value, key=value.get)
    rec = report["recommendation"]
    assert report["recommended"] == best == rec["spec"]
    runner_up = sorted(value.values())[-2]
    assert rec["runner_up_value"] == pytest.approx(runner_up) and rec["delta"] == pytest.approx(value[best] - runner_up)
    assert 0 < rec["p_holm"] <= 1 and rec["significant"] == (rec["p_holm"] < 0.05)
    line = recommendation_line(report, "en")
    assert line.startswith(f"Best on these 15 queries: {best} (ndcg@10 {value[best]:.3f})")
    assert "ms per query" in line
    assert recommendation_line(report, "zh-CN").startswith("在这 15 个查询上最好的系统")


def test_cli_eval_systems_writes_one_run_per_system_equal_to_ranx(split_demo, tmp_path, monkeypatch):
    from ranx import Qrels, Run, evaluate as ranx_evaluate

    from studio.cli import cli

    out = tmp_path / "runs"
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "a.db"), "eval", "--system", "bm25", "--system", "default",
                                      "--system", "default+bm25", "--beir", str(split_demo), "--tune-on", "train",
                                      "--k", "10", "--run-out", str(out), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["recommended"] in {"bm25", "default", "default+bm25"}
    assert sorted(p.name for p in out.iterdir()) == ["bm25.trec", "default+bm25.trec", "default.trec"]
    test = runner.from_beir(split_demo, "test")
    for model in found["models"]:
        run = Run.from_file(str(out / f"{model['model']}.trec"), kind="trec")
        theirs = ranx_evaluate(Qrels(test.qrels), run, ["ndcg@10", "recall@10"], make_comparable=True)
        assert model["metrics"]["ndcg@10"] == pytest.approx(theirs["ndcg@10"], abs=1e-6)
        assert model["metrics"]["recall@10"] == pytest.approx(theirs["recall@10"], abs=1e-6)


def test_cli_refuses_tuning_on_the_evaluated_split(split_demo, tmp_path):
    from studio.cli import cli

    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "a.db"), "eval", "--system", "bm25+default",
                                      "--beir", str(split_demo), "--tune-on", "test"])
    assert result.exit_code != 0
    assert "cannot be tuned on 'test'" in result.output
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "a.db"), "eval", "--system", "a+b+c",
                                      "--beir", str(split_demo)])
    assert result.exit_code != 0 and "at most two first stages" in result.output


def test_stages_and_systems_print_as_specs():
    assert str(Stage("bm25")) == "bm25" and str(Stage("m", "sparse")) == "m:sparse"
    assert str(System((Stage("m"), Stage("bm25")), "rr", "weighted", 0.25)) == "m+bm25@0.25>rr"
