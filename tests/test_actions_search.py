"""Compare (⑨) through the actions layer: searching, the playground and the example queries show gold labels (an
expert's); sending a result to the annotation queue changes the project (an admin's, audited). Each side is a system
spec (bm25, a model, NAME+bm25 fused, …>RERANKER), as in `studio search --system`."""

from __future__ import annotations

import pytest

from actors import ADMIN, ANNOTATOR, EXPERT, assert_refused
from studio.actions import Project, search
from studio.errors import StudioError
from studio.retrieval.fusion import fuse_rrf, fuse_weighted
from studio.store import opened

QUERY = "高血压患者能喝咖啡吗？"  # a demo query with gold labels that BM25 matches in a few dozen documents


def count(project: Project, table: str) -> int:
    with opened(project.db_path) as db:
        return db[table].count


def test_an_expert_compares_two_models_side_by_side_with_gold_badges(demo):
    query = search.example_queries(demo, EXPERT)[0]
    result = search.compare(demo, EXPERT, query, "default", "all-MiniLM-L6-v2", 5)
    assert len(result.left.hits) == 5 and len(result.right.hits) == 5
    assert [h.doc_key for h in result.left.hits] == [h.doc_key for h in result.right.hits], \
        "no ★ set: 'default' is the embedded model"
    assert set(result.left.moves.values()) == {0} and result.left.ms > 0
    assert set(result.documents) == {h.doc_key for h in result.left.hits}
    assert result.gold and set(result.gold.values()) <= {0, 1, 2}
    assert (result.left.name, result.right.name) == ("default", "all-MiniLM-L6-v2")


def test_a_side_followed_by_a_reranker(demo, tiny_reranker):
    query = search.example_queries(demo, ADMIN)[0]
    result = search.compare(demo, EXPERT, query, "default", "default", 5, None, str(tiny_reranker), 20)
    assert result.right.name == f"default>{tiny_reranker}" and len(result.right.hits) == 5, "the name is the spec"
    assert result.right.details.reranker == str(tiny_reranker) and result.right.details.rerank_depth == 20
    assert [h.doc_key for h in result.left.hits] != [h.doc_key for h in result.right.hits]
    one = search.search(demo, EXPERT, query, k=3)
    assert [h.rank for h in one.side.hits] == [1, 2, 3] and one.side.moves == {} and one.side.name == "default"


def run_of(side) -> dict:
    return {"q": {h.doc_key: h.score for h in side.hits}}


def ranking(run: dict, k: int) -> list[str]:
    return [d for d, _ in sorted(run["q"].items(), key=lambda item: (-item[1], item[0]))[:k]]


def test_bm25_against_the_model_fused_with_bm25_the_demo_people_want(demo):
    result = search.compare(demo, EXPERT, QUERY, "bm25", "default+bm25", 10)
    assert (result.left.name, result.right.name) == ("bm25", "default+bm25")
    assert len(result.left.hits) == len(result.right.hits) == 10 and result.left.ms > 0 and result.right.ms > 0
    assert result.gold and set(result.documents) == {h.doc_key for h in result.left.hits + result.right.hits}
    assert result.left.details.fusion is None and result.left.hits[0].score > 1, "BM25's own scores"
    fused = result.right.details
    assert (fused.fusion, fused.pinned, fused.depth) == ("rrf", False, 100), "unpinned: reciprocal rank"
    assert fused.pin_example == "default+bm25@0.7"
    bm25 = search.search(demo, EXPERT, QUERY, "bm25", k=100).side
    dense = search.search(demo, EXPERT, QUERY, "default", k=100).side
    assert 10 < len(bm25.hits) < 95 and len(dense.hits) == 95, "BM25 leaves out documents without a shared term"
    assert [h.doc_key for h in result.right.hits] == ranking(fuse_rrf(run_of(dense), run_of(bm25)), 10)
    assert [h.doc_key for h in result.left.hits] == [h.doc_key for h in bm25.hits[:10]]


@pytest.mark.parametrize("pin", ["@0.7", "@0.2", "@rrf", ""])
def test_a_fusion_ranks_as_studio_retrieval_fusion_does(demo, pin):
    bm25 = run_of(search.search(demo, EXPERT, QUERY, "bm25", k=100).side)
    dense = run_of(search.search(demo, EXPERT, QUERY, "default", k=100).side)
    side = search.search(demo, EXPERT, QUERY, f"default+bm25{pin}", k=8).side
    expected = fuse_weighted(dense, bm25, float(pin[1:])) if pin[1:2].isdigit() else fuse_rrf(dense, bm25)
    assert [h.doc_key for h in side.hits] == ranking(expected, 8)
    assert [h.score for h in side.hits] == pytest.approx([expected["q"][h.doc_key] for h in side.hits])
    assert side.details.pinned is bool(pin) and side.details.pin_example == (None if pin else "default+bm25@0.7")


def test_pinned_weights_move_the_ranking_between_its_two_stages(demo):
    bm25 = [h.doc_key for h in search.search(demo, EXPERT, QUERY, "bm25", k=5).side.hits]
    dense = [h.doc_key for h in search.search(demo, EXPERT, QUERY, "default", k=5).side.hits]
    assert bm25 != dense
    assert [h.doc_key for h in search.search(demo, EXPERT, QUERY, "default+bm25@1", k=5).side.hits] == dense
    assert [h.doc_key for h in search.search(demo, EXPERT, QUERY, "bm25+default@1", k=5).side.hits] == bm25


def test_a_fused_side_then_a_reranker(demo, tiny_reranker):
    first = search.search(demo, EXPERT, QUERY, "default+bm25", k=12).side
    side = search.search(demo, EXPERT, QUERY, f"default+bm25>{tiny_reranker}", k=5, depth=12).side
    assert side.name == f"default+bm25>{tiny_reranker}" and len(side.hits) == 5
    assert {h.doc_key for h in side.hits} <= {h.doc_key for h in first.hits}, "it rescores the fused top 12"
    assert (side.details.fusion, side.details.rerank_depth) == ("rrf", 12)
    older = search.search(demo, EXPERT, QUERY, "default+bm25", k=5, reranker=str(tiny_reranker), depth=12).side
    assert older.name == side.name and [h.doc_key for h in older.hits] == [h.doc_key for h in side.hits]


def test_a_bge_m3_sparse_side_scores_as_evaluation_does_and_colbert_is_refused(demo, tiny_m3):
    from studio.retrieval import m3
    from studio.store.lookup import searchable_corpus

    side = search.search(demo, EXPERT, QUERY, f"{tiny_m3}:sparse", k=5).side
    with opened(demo.db_path) as db:
        keys, texts, _ = searchable_corpus(db)
    exact = dict(zip(keys, m3.score_corpus([QUERY], texts, str(tiny_m3), "sparse")[0]))
    assert [h.score for h in side.hits] == pytest.approx(sorted(exact.values(), reverse=True)[:5])
    assert all(h.score == pytest.approx(exact[h.doc_key]) for h in side.hits)
    with pytest.raises(StudioError) as err:
        search.search(demo, EXPERT, QUERY, f"{tiny_m3}:colbert+bm25")
    assert err.value.code == "mode_not_searchable" and "evaluated in ⑧ Evaluate" in str(err.value)


@pytest.mark.parametrize(("spec", "reranker", "code", "says"), [
    ("a+b+c", None, "system_too_many", "at most two first stages"),
    ("default+bm25@1.5", None, "system_bad_fusion", "after @ write rrf or a weight between 0 and 1"),
    ("bm25:sparse", None, "system_bad_mode", "BM25 has no scoring mode"),
    ("default>", None, "system_empty", "a system needs at least one retriever"),
    ("default>rr", "rr2", "system_too_many", "at most one reranker"),
])
def test_a_bad_spec_says_what_a_spec_looks_like(demo, spec, reranker, code, says):
    for call in (lambda: search.search(demo, EXPERT, QUERY, spec, reranker=reranker),
                 lambda: search.compare(demo, EXPERT, QUERY, "bm25", spec, 5, None, reranker)):
        with pytest.raises(StudioError) as err:
            call()
        assert err.value.code == code and says in str(err.value)


def test_the_page_refuses_a_server_path_anywhere_in_a_spec():
    fields = {"field": "Left: system", "model_field": "Left: model", "reranker_field": "Left: then rerank with"}
    assert search.page_system(" medical-v1+bm25@0.7 ", "rr", **fields) == "medical-v1+bm25@0.7>rr"
    assert search.page_system("BAAI/bge-m3:sparse", None, **fields) == "BAAI/bge-m3:sparse"
    for spec, reranker, field in (("/srv/models/x+bm25", None, "Left: model"), ("bm25+../x", None, "Left: model"),
                                  ("bm25>~/rr", None, "Left: then rerank with"),
                                  ("bm25", "/tmp/rr", "Left: then rerank with")):
        with pytest.raises(StudioError) as err:
            search.page_system(spec, reranker, **fields)
        assert err.value.code == "path_outside" and err.value.params["field"] == field, spec
    with pytest.raises(StudioError) as err:
        search.page_system("  ", None, **fields)
    assert err.value.code == "empty_field" and err.value.params["field"] == "Left: system"
    assert search.system_choices(["m1", "m2"]) == ["bm25", "m1", "m2", "m1+bm25", "m2+bm25"]


def test_cli_search_with_a_system_spec(demo):
    import json

    from click.testing import CliRunner

    from studio.cli import cli

    def run(*args):
        return CliRunner().invoke(cli, ["--db", str(demo.db_path), "search", QUERY, *args], catch_exceptions=False)

    found = json.loads(run("--system", "bm25", "--k", "3", "--json").stdout)
    assert found["system"] == found["model"] == "bm25" and [r["rank"] for r in found["results"]] == [1, 2, 3]
    assert found["fusion"] is None and found["reranker"] is None
    assert any(r["gold"] is not None for r in found["results"]), "the demo query has gold labels"
    fused = run("--system", "default+bm25", "--k", "2")
    assert fused.exit_code == 0 and fused.stdout.startswith("default+bm25: 2 results")
    assert "pin a tuned weight as default+bm25@0.7" in fused.stdout
    pinned = json.loads(run("--system", "default+bm25@0.7", "--k", "2", "--json").stdout)
    assert pinned["fusion"] == {"method": "weighted", "weight": 0.7, "pinned": True, "depth": 100}
    both = run("--system", "bm25", "--model", "default")
    assert both.exit_code != 0 and "not both" in both.output
    bad = run("--system", "a+b+c")
    assert bad.exit_code == 1 and "at most two first stages" in bad.output and "Traceback" not in bad.output


def test_the_playground_scores_per_model_name(demo, tiny_reranker):
    sims = search.similarity(demo, EXPERT, "糖尿病的主要并发症有哪些？", "高血糖长期未控可能导致视网膜病变",
                             ["default", "all-MiniLM-L6-v2"])
    assert list(sims) == ["default", "all-MiniLM-L6-v2"] and sims["default"] == pytest.approx(sims["all-MiniLM-L6-v2"])
    query, docs = search.playground_example()
    scores = search.score_documents(demo, EXPERT, query, docs, ["default"], str(tiny_reranker))
    assert list(scores) == ["default", str(tiny_reranker)] and all(len(v) == 3 for v in scores.values())


def test_what_a_search_refuses(db_path, demo):
    with pytest.raises(StudioError) as err:
        search.compare(demo, EXPERT, "  ", "default", "default")
    assert err.value.code == "empty_query"
    empty = Project(db_path.with_name("empty.db"))
    with pytest.raises(StudioError) as err:
        search.search(empty, EXPERT, "糖尿病")
    assert err.value.code == "no_corpus"


def test_an_admin_sends_a_result_to_the_queue_audited_as_themselves(demo):
    pairs = count(demo, "pairs")
    assert search.send_to_queue(demo, ADMIN, "糖尿病患者可以吃水果吗？", "d001") is True
    assert count(demo, "pairs") == pairs + 1
    assert search.send_to_queue(demo, ADMIN, "糖尿病患者可以吃水果吗？", "d001") is False, "already in the project"
    from studio.store.audit import history

    with opened(demo.db_path) as db:
        entry = history(db, entity="import", limit=1)[0]
    assert entry["actor"] == ADMIN.name and entry["after"]["source"] == "compare"
    with pytest.raises(StudioError) as err:
        search.send_to_queue(demo, ADMIN, "q", "no-such-doc")
    assert err.value.code == "document_not_found"


def test_an_expert_may_not_send_to_the_queue_and_nothing_changes(demo):
    pairs, queries = count(demo, "pairs"), count(demo, "queries")
    assert_refused(demo, EXPERT, search.send_to_queue, "a new query", "d001")
    assert (count(demo, "pairs"), count(demo, "queries")) == (pairs, queries)


def test_an_annotator_may_not_search_or_see_examples(demo):
    for fn, args in ((search.compare, ("糖尿病", "default", "default")), (search.search, ("糖尿病",)),
                     (search.compare, ("糖尿病", "bm25", "default+bm25")), (search.search, ("糖尿病", "bm25")),
                     (search.similarity, ("a", "b", ["default"])), (search.score_documents, ("q", ["d"], ["default"])),
                     (search.example_queries, ()), (search.send_to_queue, ("q", "d001"))):
        assert_refused(demo, ANNOTATOR, fn, *args)


# ------------------------------------------------------------------------------------- a run file as a side (⑨)

@pytest.fixture
def prod_run(demo, tmp_path, monkeypatch):
    """runs/prod.trec ranking QUERY (by its key) and another query: d010, an unknown document, d003, d050."""
    from studio import config
    from studio.store.lookup import query_keys

    monkeypatch.setattr(config, "RUNS_DIR", tmp_path / "runs")
    (tmp_path / "runs").mkdir()
    with opened(demo.db_path) as db:
        key = query_keys(db, f"  {QUERY} ")[0]
    (tmp_path / "runs" / "prod.trec").write_text(
        f"{key} Q0 d010 1 9.5 prod\n{key} Q0 not-in-corpus 2 9.0 prod\n{key} Q0 d003 3 8.25 prod\n"
        f"{key} Q0 d050 4 1.5 prod\nq-other Q0 d001 1 3.0 prod\n", encoding="utf-8")
    return key


def test_a_run_file_side_shows_its_ranking_for_a_project_query(demo, prod_run):
    side = search.search(demo, EXPERT, QUERY, "run:prod.trec", k=3).side
    assert side.name == "run:prod.trec" and side.missing_run is None
    assert [(h.rank, h.doc_key, h.score) for h in side.hits] == [(1, "d010", 9.5), (2, "d003", 8.25), (3, "d050", 1.5)]
    assert side.details.precomputed == ("run:prod.trec",) and side.details.unknown_documents == 1 and side.ms == 0
    bm25 = search.search(demo, EXPERT, QUERY, "bm25", k=100).side
    fused = search.search(demo, EXPERT, QUERY, "run:prod.trec+bm25@rrf", k=5).side
    expected = fuse_rrf({"q": {h.doc_key: h.score for h in side.hits}}, run_of(bm25))
    assert [h.doc_key for h in fused.hits] == ranking(expected, 5) and fused.details.precomputed == ("run:prod.trec",)


def test_a_run_file_without_the_query_says_so_on_its_side(demo, prod_run):
    other = "糖尿病患者可以吃水果吗？"  # a project query the file does not rank
    result = search.compare(demo, EXPERT, other, "bm25", "run:prod.trec", 5)
    assert result.right.missing_run == "prod.trec" and result.right.hits == [] and len(result.left.hits) == 5
    for query in (other, "a query the project has never seen"):
        with pytest.raises(StudioError) as err:
            search.search(demo, EXPERT, query, "run:prod.trec")
        assert str(err.value) == "prod.trec has no ranking for this query"
    with pytest.raises(StudioError) as err:
        search.search(demo, EXPERT, QUERY, "run:nope.trec")
    assert err.value.code == "run_file_missing"


def test_the_page_names_run_files_inside_runs_only(demo, prod_run):
    from studio.ui.tabs.compare import side_html

    fields = {"field": "Left: system", "model_field": "Left: model", "reranker_field": "Left: then rerank with"}
    assert search.page_system("run:prod.trec + bm25", None, **fields) == "run:prod.trec+bm25"
    for spec, code in (("run:/etc/passwd", "path_outside"), ("run:../prod.trec", "path_outside"),
                       ("run:nope.trec", "run_file_missing")):
        with pytest.raises(StudioError) as err:
            search.page_system(spec, None, **fields)
        assert err.value.code == code, spec
    assert search.run_names() == ["prod.trec"]
    assert search.system_choices(["m1"], search.run_names()) == ["bm25", "m1", "m1+bm25", "run:prod.trec"]
    side = search.compare(demo, EXPERT, "糖尿病患者可以吃水果吗？", "bm25", "run:prod.trec", 5).right
    assert "prod.trec 中没有这个查询的排序结果" in side_html(side, {}, {}, "q", "zh-CN")
