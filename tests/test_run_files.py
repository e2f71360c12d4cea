"""A TREC run file is a system stage, ``run:FILE``: strict parsing, metrics equal to ranx on the file, its gaps
(documents the corpus lacks, evaluated queries it lacks) reported, fused and reranked like any stage, evaluated by
`studio eval --system run:FILE --db`, and never exported as a recipe."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from studio import config
from studio.errors import InputError, StudioError
from studio.evaluation import runner, systems
from studio.evaluation.report import evaluate_systems, warning_lines
from studio.ingest.trec import read_trec
from studio.retrieval.fusion import fuse_rrf
from studio.retrieval.systems import file_stem, parse


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    folder.mkdir()
    monkeypatch.setattr(config, "RUNS_DIR", folder)
    return folder


def write_run(path, run: dict, tag: str = "prod"):
    """`run` (query → {doc: score}) as TREC lines, each query's documents best first."""
    lines = []
    for q, ranked in run.items():
        order = sorted(ranked.items(), key=lambda item: (-item[1], item[0]))
        lines += [f"{q} Q0 {d} {rank} {score:.6f} {tag}" for rank, (d, score) in enumerate(order, start=1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------------ parsing

@pytest.mark.parametrize("line, code, field", [
    ("q1 Q0 d1 1 0.5", "trec_fields", "tag"),
    ("q1 Q0 d1 1 0.5 tag extra", "trec_fields", "tag"),
    ("q1 d1 Q0 1 0.5 tag", "trec_q0", "Q0"),
    ("q1 Q0 d1 first 0.5 tag", "trec_rank", "rank"),
    ("q1 Q0 d1 1 high tag", "trec_score", "score"),
    ("q1 Q0 d1 1 nan tag", "trec_score", "score"),
    ("q1 Q0 d0 2 0.4 tag", "trec_duplicate", "docid"),
])
def test_a_malformed_line_names_the_file_the_line_and_the_field(tmp_path, line, code, field):
    path = tmp_path / "prod.trec"
    path.write_text("q1 Q0 d0 1 0.9 tag\n\n" + line + "\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_trec(path)
    error = caught.value
    assert (error.code, error.file, error.line, error.field) == (code, str(path), 3, field)
    assert str(path) in str(error) and "line 3" in str(error) and f"field '{field}'" in str(error)
    assert error.message("zh-CN") != error.message("en")


def test_a_run_file_reads_scores_as_given_ranked_by_score(tmp_path):
    path = tmp_path / "prod.trec"
    path.write_text("q1 Q0 b 1 2.5 t\nq1 0 a 2 2.5 t\nq1 Q0 c 3 7 t\nq2 Q0 a 1 -1e-3 t\n", encoding="utf-8")
    trec = read_trec(path)
    assert (trec.lines, trec.tags) == (4, ("t",))
    assert trec.ranking("q1") == [("c", 7.0), ("a", 2.5), ("b", 2.5)], "by score, ties by document id"
    assert trec.ranking("q1", 1) == [("c", 7.0)] and trec.ranking("q9") == []
    empty = tmp_path / "empty.trec"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(InputError, match="no data rows"):
        read_trec(empty)


def test_run_specs_parse_fuse_and_rerank_but_take_no_mode():
    system = parse("run:prod.trec+bm25@rrf>rr")
    assert [str(s) for s in system.stages] == ["run:prod.trec", "bm25"] and system.stages[0].is_run
    assert system.run_files == ["prod.trec"] and system.models == ["rr"], "a run file is not a model"
    assert parse(system.spec) == system and file_stem("run:/tmp/x/prod.trec>rr") == "run_prod.trec~rr"
    for spec, code in (("run:", "system_empty"), ("run:prod.trec:sparse", "system_run_mode")):
        with pytest.raises(StudioError) as caught:
            parse(spec)
        assert caught.value.code == code


def test_a_missing_run_file_says_where_it_was_looked_for(runs_dir, split_demo):
    test = runner.from_beir(split_demo, "test")
    with pytest.raises(StudioError) as caught:
        systems.run_systems(test, [parse("run:nope.trec")])
    assert caught.value.code == "run_file_missing" and "runs/" in str(caught.value)


def test_a_file_in_runs_is_named_by_its_name_not_the_server_path(runs_dir, split_demo):
    (runs_dir / "bad.trec").write_text("q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 high t\n", encoding="utf-8")
    test = runner.from_beir(split_demo, "test")
    with pytest.raises(InputError) as caught:
        systems.run_systems(test, [parse("run:bad.trec+bm25")])
    assert str(caught.value).startswith("runs/bad.trec, line 2, field 'score': ")
    assert str(runs_dir) not in str(caught.value)


# ------------------------------------------------------------------------------------------------- evaluation

@pytest.fixture(scope="module")
def evalset(split_demo):
    return runner.from_beir(split_demo, "test")


@pytest.fixture(scope="module")
def bm25_run(evalset):
    return systems.retrieve_bm25(evalset, 100).run


@pytest.fixture
def prod(runs_dir, evalset, bm25_run):
    """A production run: BM25's rankings with one evaluated query missing, an unknown document in the first
    query's top 3, a query outside the evaluation and reversed scores on another query (so it differs)."""
    queries = sorted(evalset.qrels)
    run = {q: dict(bm25_run[q]) for q in queries[1:]}
    run[queries[1]]["zz-not-in-corpus"] = max(run[queries[1]].values()) + 1.0
    run[queries[2]] = {d: -s for d, s in run[queries[2]].items()}
    run["q-elsewhere"] = {"d001": 1.0}
    return write_run(runs_dir / "prod.trec", run), queries


def test_a_run_file_system_scores_as_ranx_scores_the_file_and_reports_its_gaps(prod, evalset):
    from ranx import Qrels, Run, evaluate as ranx_evaluate

    path, queries = prod
    report, _ = evaluate_systems(evalset, ["run:prod.trec", "bm25"], (1, 5, 10))
    entry = report["models"][0]
    theirs = ranx_evaluate(Qrels(evalset.qrels), Run.from_file(str(path), kind="trec"),
                           ["ndcg@10", "recall@10", "precision@5", "mrr@10"], make_comparable=True)
    for ours, name in (("ndcg@10", "ndcg@10"), ("recall@10", "recall@10"), ("p@5", "precision@5"),
                       ("mrr@10", "mrr@10")):
        assert entry["metrics"][ours] == pytest.approx(theirs[name], abs=1e-6)
    gaps = entry["system"]["run_file"]
    assert gaps["path"] == str(path) and gaps["lines"] == sum(1 for _ in open(path, encoding="utf-8"))
    assert (gaps["unknown_documents"], gaps["missing_queries"], gaps["unknown_queries"]) == (1, 1, 1)
    kinds = {(e["kind"], e["query"], e.get("document")) for e in gaps["examples"]}
    assert kinds == {("unknown_document", queries[1], "zz-not-in-corpus"), ("missing_query", queries[0], None),
                     ("unknown_query", "q-elsewhere", None)}
    assert entry["system"]["precomputed"] == ["run:prod.trec"] and entry["system"]["ms_per_query"] is None
    assert "queries_per_s" not in entry["timings"], "precomputed: no rate to report"
    warning = [w for w in report["warnings"] if w["kind"] == "run_file_gaps"]
    assert warning == [{"kind": "run_file_gaps", "model": "run:prod.trec", "file": "prod.trec",
                        "unknown_documents": 1, "missing_queries": 1, "queries": len(queries),
                        "examples": gaps["examples"], "significant": False}]
    at = [w["kind"] for w in report["warnings"]].index("run_file_gaps")
    en, zh = (warning_lines(report, lang)[at] for lang in ("en", "zh-CN"))
    assert "1 documents the corpus does not have" in en and f"1 of the {len(queries)} evaluated" in en
    assert "prod.trec" in zh and en != zh


def test_a_run_file_fuses_and_reranks_like_any_first_stage(prod, evalset, tiny_reranker):
    results = systems.run_systems(evalset, [parse("run:prod.trec"), parse("bm25"), parse("run:prod.trec+bm25"),
                                            parse(f"run:prod.trec>{tiny_reranker}")], rerank_top=5)
    alone, bm25, fused, reranked = results
    assert fused.run == fuse_rrf(alone.run, bm25.run, depth=100), "untuned: reciprocal rank over the two runs"
    assert fused.info["fusion"]["chosen_by"] == "untuned" and fused.timings["ms_per_query"] > 0
    assert fused.info["precomputed"] == ["run:prod.trec"], "BM25 is timed, the run file is not"
    _, queries = prod
    q = queries[1]
    top6 = sorted(alone.run[q], key=lambda d: (-alone.run[q][d], d))[:6]
    assert "zz-not-in-corpus" in top6
    order = sorted(reranked.run[q], key=lambda d: -reranked.run[q][d])
    assert order[-1] == "zz-not-in-corpus", "no text to rescore: below every document the reranker could score"
    assert set(order[:5]) == set(d for d in top6 if d != "zz-not-in-corpus")


def test_cli_evaluates_a_run_file_on_the_gold_labels(demo, runs_dir):
    from studio.cli import cli
    from studio.store import opened
    from studio.store.gold import gold_set

    with opened(demo.db_path) as db:
        gold = gold_set(db)
    # a perfect run: each query's gold labels, best first
    run = {q: {d: float(label) + 1 / (i + 2) for i, (d, label) in enumerate(labels.items())}
           for q, labels in gold.labels.items()}
    write_run(runs_dir / "prod.trec", run)
    result = CliRunner().invoke(cli, ["--db", str(demo.db_path), "eval", "--db", "--system", "run:prod.trec",
                                      "--system", "bm25", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert [m["model"] for m in found["models"]] == ["run:prod.trec", "bm25"]
    assert found["models"][0]["metrics"]["ndcg@10"] == pytest.approx(1.0) and found["recommended"] == "run:prod.trec"
    assert not [w for w in found["warnings"] if w["kind"] == "run_file_gaps"], "every id is the project's"
    refused = CliRunner().invoke(cli, ["--db", str(demo.db_path), "recipe", "export", "run:prod.trec",
                                       str(runs_dir.parent / "recipe")])
    assert refused.exit_code != 0 and "cannot be exported as a recipe" in refused.output
    assert not (runs_dir.parent / "recipe").exists()


def test_a_recipe_of_a_run_file_is_refused_by_the_action(demo, runs_dir):
    from actors import EXPERT
    from studio.actions import recipe

    write_run(runs_dir / "prod.trec", {"q01": {"d001": 1.0}})
    with pytest.raises(StudioError) as caught:
        recipe.export_recipe(demo, EXPERT, "run:prod.trec+bm25", runs_dir.parent / "out")
    assert caught.value.code == "recipe_run_file" and caught.value.params["file"] == "prod.trec"
