"""The project's saved BM25 index (studio.retrieval.bm25_store): the same scores as an index built in memory, built
once per corpus version, rebuilt after a change, safe against a torn save, older versions removed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from studio.ingest.records import Document, ImportBatch, PairRecord, Query
from studio.records import document_text
from studio.retrieval import bm25_store
from studio.retrieval.bm25 import BM25Index
from studio.store import opened
from studio.store.corpus import corpus_version, iter_documents
from studio.store.imports import import_batch

QUERIES = ["insulin dose", "blood pressure kidney", "糖尿病症状", "zebra", "document 3"]


@pytest.fixture
def corpus_db(tmp_path, monkeypatch):
    """A database with 8 documents, and a count of the BM25 builds (bm25_store._build calls)."""
    path = tmp_path / "studio.db"
    texts = ["insulin dose for type 2 diabetes", "blood pressure and kidney disease", "糖尿病的症状有哪些",
             "kidney stones cause pain", "insulin pumps", "high blood pressure diet", "document 3 of many",
             "pressure ulcers"]
    records = [PairRecord(Query(f"query {i}", f"q{i}"), Document(text, f"d{i}", title="T" if i == 2 else ""),
                          line=i + 2) for i, text in enumerate(texts)]
    with opened(path) as db:
        import_batch(db, ImportBatch("import", "test.csv", records))
    builds = []
    build = bm25_store._build
    monkeypatch.setattr(bm25_store, "_build", lambda p: builds.append(p) or build(p))
    monkeypatch.setattr(bm25_store, "_memory", {})
    return path, builds


def _in_memory(path) -> tuple[list[int], BM25Index]:
    with opened(path) as db:
        rows = list(iter_documents(db))
    return [r["id"] for r in rows], BM25Index([document_text(r["title"], r["text"]) for r in rows])


def _add(path, key: str, text: str) -> None:
    with opened(path) as db:
        import_batch(db, ImportBatch("import", "more.csv", [PairRecord(Query("new query", "qn"), Document(text, key),
                                                                      line=2)]))


def test_same_rankings_and_scores_as_in_memory(corpus_db):
    path, _ = corpus_db
    ids, index = bm25_store.project_bm25(path)
    ref_ids, ref = _in_memory(path)
    assert ids.dtype == np.int64 and list(ids) == ref_ids
    assert index.search_many(QUERIES, 5) == ref.search_many(QUERIES, 5)
    assert index.search_many(QUERIES, 5)[0]  # it finds something
    assert isinstance(index._retriever.scores["data"], np.memmap)  # loaded memory-mapped, not kept as built


def test_built_once_per_version_then_loaded(corpus_db, monkeypatch):
    path, builds = corpus_db
    bm25_store.project_bm25(path)
    bm25_store.project_bm25(path)  # in-process cache
    monkeypatch.setattr(bm25_store, "_memory", {})  # a new process: loads the saved folder
    ids, index = bm25_store.project_bm25(path)
    assert len(builds) == 1
    assert index.search("insulin", 3) == _in_memory(path)[1].search("insulin", 3)


def test_insert_changes_version_and_next_call_sees_it(corpus_db):
    path, builds = corpus_db
    bm25_store.project_bm25(path)
    with opened(path) as db:
        before = corpus_version(db)
    _add(path, "dnew", "a zebra grazing")
    with opened(path) as db:
        assert corpus_version(db) != before
        new_id = next(r["id"] for r in iter_documents(db) if r["key"] == "dnew")
    ids, index = bm25_store.project_bm25(path)
    assert len(builds) == 2
    assert int(ids[index.search("zebra", 1)[0][0]]) == new_id
    assert bm25_store.project_keys(path)[-1] == "dnew"


def test_stale_versions_removed(corpus_db):
    path, _ = corpus_db
    bm25_store.project_bm25(path)
    folder = bm25_store.store_folder(path)
    first = {p.name for p in folder.iterdir()}
    _add(path, "dnew", "a zebra grazing")
    bm25_store.project_bm25(path)
    now = {p.name for p in folder.iterdir()}
    assert len(first) == len(now) == 1 and first != now


def test_torn_save_leaves_previous_index_usable(corpus_db, monkeypatch):
    path, builds = corpus_db
    bm25_store.project_bm25(path)
    folder = bm25_store.store_folder(path)
    (previous,) = folder.iterdir()
    _add(path, "dnew", "a zebra grazing")

    def torn(self, target):  # writes part of the index, then the process "dies"
        (target / "data.csc.index.npy").write_bytes(b"\x93NUMPY partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(BM25Index, "save", torn)
    ids, index = bm25_store.project_bm25(path)  # still answers, from memory
    assert int(ids[index.search("zebra", 1)[0][0]]) == max(ids)
    assert [p.name for p in folder.iterdir()] == [previous.name]  # no half index, the previous one untouched
    meta = json.loads((previous / "meta.json").read_text())
    loaded = bm25_store._load(previous, meta)
    assert loaded is not None and loaded[1].search("insulin", 3)

    monkeypatch.undo()  # disk space again: the next process saves the new version
    monkeypatch.setattr(bm25_store, "_memory", {})
    ids, index = bm25_store.project_bm25(path)
    assert [p.name for p in folder.iterdir()] != [previous.name]
    assert int(ids[index.search("zebra", 1)[0][0]]) == max(ids)


def test_damaged_folder_is_rebuilt(corpus_db, monkeypatch):
    path, builds = corpus_db
    bm25_store.project_bm25(path)
    (folder,) = bm25_store.store_folder(path).iterdir()
    (folder / "indices.csc.index.npy").write_bytes(b"garbage")
    monkeypatch.setattr(bm25_store, "_memory", {})
    ids, index = bm25_store.project_bm25(path)
    assert len(builds) == 2
    assert index.search_many(QUERIES, 5) == _in_memory(path)[1].search_many(QUERIES, 5)


def test_evaluation_corpus_uses_saved_index(corpus_db):
    path, builds = corpus_db
    with opened(path) as db:
        rows = list(iter_documents(db))
    corpus = bm25_store.ProjectCorpus({r["key"]: document_text(r["title"], r["text"]) for r in rows}, path)
    keys, index = bm25_store.bm25_for(corpus)
    keys_again, _ = bm25_store.bm25_for(corpus)
    assert keys == keys_again == [r["key"] for r in rows] and len(builds) == 1
    assert index.search_many(QUERIES, 5) == BM25Index(list(corpus.values())).search_many(QUERIES, 5)
    changed = bm25_store.ProjectCorpus({**corpus, "extra": "zebra"}, path)  # not the database's: built here
    keys, index = bm25_store.bm25_for(changed)
    assert keys[-1] == "extra" and index.size == len(rows) + 1
