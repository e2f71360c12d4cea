"""Compare (⑨) through the actions layer: searching, the playground and the example queries show gold labels (an
expert's); sending a result to the annotation queue changes the project (an admin's, audited)."""

from __future__ import annotations

import pytest

from actors import ADMIN, ANNOTATOR, EXPERT, assert_refused
from studio.actions import Project, search
from studio.errors import StudioError
from studio.store import opened


@pytest.fixture
def demo(db_path) -> Project:
    from studio.demo import load_demo

    with opened(db_path) as db:
        load_demo(db)
    return Project(db_path)


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
    assert result.right.name == f"default → {tiny_reranker}" and len(result.right.hits) == 5
    assert [h.doc_key for h in result.left.hits] != [h.doc_key for h in result.right.hits]
    one = search.search(demo, EXPERT, query, k=3)
    assert [h.rank for h in one.side.hits] == [1, 2, 3] and one.side.moves == {} and one.side.name == "default"


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
                     (search.similarity, ("a", "b", ["default"])), (search.score_documents, ("q", ["d"], ["default"])),
                     (search.example_queries, ()), (search.send_to_queue, ("q", "d001"))):
        assert_refused(demo, ANNOTATOR, fn, *args)
