"""⑨'s request path over a large corpus (studio.retrieval.corpus_index, studio.actions.search.compare): the corpus
version keys every index, so an insert, edit or delete is seen by the next query; a warm query reads only the
documents it shows; both sides share one query encoding and one BM25 ranking; the latency shown is the whole call."""

from __future__ import annotations

import sqlite3
import time

import pytest

from actors import EXPERT
from studio.actions import search
from studio.ingest.records import Document, ImportBatch, PairRecord, Query
from studio.retrieval import corpus_index
from studio.retrieval import search as retrieval_search
from studio.retrieval.bm25_segments import SegmentedBM25
from studio.store import opened
from studio.store.corpus import corpus_version
from studio.store.imports import import_batch

QUERY = "高血压患者能喝咖啡吗？"  # a demo query with gold labels that BM25 matches in a few dozen documents


def _add(path, key: str, text: str) -> None:
    with opened(path) as db:
        import_batch(db, ImportBatch("import", "more.csv", [PairRecord(Query("a new query", "qn"), Document(text, key),
                                                                      line=2)]))


def _version(path) -> int:
    with opened(path) as db:
        return corpus_version(db)


def _top(project, query: str) -> list[str]:
    return [h.doc_key for h in search.compare(project, EXPERT, query, "bm25", "bm25", 3).left.hits]


def test_an_insert_an_edit_and_a_delete_move_the_version_and_the_next_query_sees_each(demo):
    assert _top(demo, "zebraword") == []
    v0 = _version(demo.db_path)
    _add(demo.db_path, "dnew", "a zebraword grazing")
    v1 = _version(demo.db_path)
    assert v1 != v0
    result = search.compare(demo, EXPERT, "zebraword", "bm25", "bm25", 3)
    assert [h.doc_key for h in result.left.hits] == ["dnew"]
    assert result.documents == {"dnew": {"title": "", "text": "a zebraword grazing"}}

    with opened(demo.db_path) as db:
        db.execute("UPDATE documents SET text = ? WHERE key = 'dnew'", ["a quaggaword grazing"])
        db.conn.commit()
    assert _version(demo.db_path) not in (v0, v1)
    assert _top(demo, "zebraword") == [] and _top(demo, "quaggaword") == ["dnew"]

    with opened(demo.db_path) as db:
        doc = next(db.query("SELECT id FROM documents WHERE key = 'dnew'"))["id"]
        db.execute("DELETE FROM pairs WHERE document_id = ?", [doc])
        db.execute("DELETE FROM documents WHERE id = ?", [doc])
        db.conn.commit()
    assert _top(demo, "quaggaword") == []


def test_old_versions_are_evicted(demo):
    for i in range(corpus_index.KEEP + 2):
        _add(demo.db_path, f"extra{i}", f"extra document {i}")
        search.compare(demo, EXPERT, QUERY, "bm25", "bm25", 3)
    kept = [key for key in corpus_index._corpora._items if key[0] == str(demo.db_path.resolve())]
    assert len(kept) <= corpus_index.KEEP and kept[-1][2] == _version(demo.db_path)


def test_a_warm_query_reads_only_the_documents_it_shows(demo, monkeypatch):
    search.compare(demo, EXPERT, QUERY, "bm25", "default+bm25", 5)  # builds the indexes, keeps the ids
    statements: list[str] = []
    connect = sqlite3.connect

    def traced(*args, **kwargs):
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    read: list[list[int]] = []
    by_ids = corpus_index.documents_by_ids
    monkeypatch.setattr(corpus_index, "documents_by_ids", lambda db, ids: read.append(list(ids)) or by_ids(db, ids))
    result = search.compare(demo, EXPERT, "糖尿病患者可以吃水果吗？", "bm25", "default+bm25", 5)

    shown = {h.doc_key for h in result.left.hits + result.right.hits}
    assert len(read) == 1 and len(read[0]) == len(shown) and set(result.documents) == shown
    corpus_reads = [s for s in statements if "FROM documents" in s and "JOIN" not in s]
    assert len(corpus_reads) == 1 and "WHERE id IN" in corpus_reads[0], corpus_reads
    assert sum("corpus_version" in s for s in statements) == 1, "the version is the only corpus-wide read"


def test_two_sides_share_one_query_encoding_and_one_bm25_ranking(demo, monkeypatch):
    search.compare(demo, EXPERT, QUERY, "default+bm25", "all-MiniLM-L6-v2", 5)  # warm: indexes and models
    encodes, rankings = [], []
    encode, rank = retrieval_search.encode, SegmentedBM25.search
    monkeypatch.setattr(retrieval_search, "encode", lambda texts, model: encodes.append(texts) or encode(texts, model))
    monkeypatch.setattr(SegmentedBM25, "search", lambda self, q, k=10: rankings.append(q) or rank(self, q, k))

    result = search.compare(demo, EXPERT, QUERY, "default+bm25", "all-MiniLM-L6-v2", 5)
    assert encodes == [[QUERY]], "'default' is the embedded all-MiniLM-L6-v2: one model, one encoding"
    assert rankings == [QUERY]
    assert len(result.left.hits) == len(result.right.hits) == 5

    rankings.clear()
    both = search.compare(demo, EXPERT, QUERY, "bm25", "bm25", 10)
    assert rankings == [QUERY] and both.left.hits == both.right.hits
    alone = search.search(demo, EXPERT, QUERY, "bm25", k=10).side.hits
    assert [h.doc_key for h in both.left.hits] == [h.doc_key for h in alone], "sharing changes no ranking"


def test_the_latency_shown_is_the_whole_call(demo, monkeypatch):
    search.compare(demo, EXPERT, QUERY, "bm25", "bm25", 5)
    by_ids = corpus_index.documents_by_ids

    def slow(db, ids):
        time.sleep(0.25)  # reading the shown documents is part of what the user waits for
        return by_ids(db, ids)

    monkeypatch.setattr(corpus_index, "documents_by_ids", slow)
    t0 = time.perf_counter()
    result = search.compare(demo, EXPERT, QUERY, "bm25", "bm25", 5)
    wall = (time.perf_counter() - t0) * 1000
    assert result.ms >= 250 > result.left.ms + result.right.ms
    assert result.ms <= wall
    assert search.search(demo, EXPERT, QUERY, "bm25", k=5).ms >= 250


def test_the_page_shows_the_whole_response_time_and_each_sides_search_time(demo):
    from studio.ui.context import UIContext, make_i18n
    from studio.ui.tabs import compare

    left, right, _, status = compare.run_search(UIContext(demo.db_path, make_i18n()), QUERY, "bm25", "bm25", 3, "en")
    assert "search " in left and " ms" in left
    assert "Answered in" in status and "the whole request" in status


@pytest.fixture(autouse=True)
def _fresh_corpora():
    corpus_index.clear()
    yield
    corpus_index.clear()


def test_a_new_version_frees_the_older_versions_dense_index(demo):
    for i in range(3):
        _add(demo.db_path, f"extra{i}", f"extra document {i}")
        search.compare(demo, EXPERT, QUERY, "bm25", "default", 3)
    held = [key for key in retrieval_search._indexes._items if key[1][1] == str(demo.db_path.resolve())]
    assert len(held) == 1 and held[0][1][3] == _version(demo.db_path), "one matrix per (database, model), the newest"
