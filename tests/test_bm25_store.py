"""The project's saved BM25 index (studio.retrieval.bm25_store): the same scores as bm25s's index built in memory,
saved and loaded, grown by a segment of only the added or edited documents, deletions never returned, compacted
when segments pile up, safe against a torn save."""

from __future__ import annotations

import json

import numpy as np
import pytest

from studio.ingest.records import Document, ImportBatch, PairRecord, Query
from studio.records import document_text
from studio.retrieval import bm25_store
from studio.retrieval.bm25 import BM25Index
from studio.retrieval.bm25_segments import Segment
from studio.store import opened
from studio.store.corpus import corpus_version, iter_documents
from studio.store.imports import import_batch, text_hash

QUERIES = ["insulin dose", "blood pressure kidney", "糖尿病症状", "zebra", "document 3", "pressure"]


@pytest.fixture
def corpus_db(tmp_path, monkeypatch):
    """A database with 8 documents, and the sizes of the segments built (documents tokenized per build)."""
    path = tmp_path / "studio.db"
    texts = ["insulin dose for type 2 diabetes", "blood pressure and kidney disease", "糖尿病的症状有哪些",
             "kidney stones cause pain", "insulin pumps", "high blood pressure diet", "document 3 of many",
             "pressure ulcers"]
    records = [PairRecord(Query(f"query {i}", f"q{i}"), Document(text, f"d{i}", title="T" if i == 2 else ""),
                          line=i + 2) for i, text in enumerate(texts)]
    with opened(path) as db:
        import_batch(db, ImportBatch("import", "test.csv", records))
    builds: list[int] = []
    build = Segment.build.__func__

    def counted(cls, documents):
        segment = build(cls, documents)
        builds.append(len(segment))
        return segment

    monkeypatch.setattr(Segment, "build", classmethod(counted))
    monkeypatch.setattr(bm25_store, "_memory", {})
    return path, builds


def _in_memory(path) -> tuple[list[int], BM25Index]:
    with opened(path) as db:
        rows = list(iter_documents(db))
    return [r["id"] for r in rows], BM25Index([document_text(r["title"], r["text"]) for r in rows])


def _same(got: list[list[tuple[int, float]]], want: list[list[tuple[int, float]]]) -> None:
    """The same documents in the same order with the same scores (to float32 rounding); bm25s orders ties
    arbitrarily, the studio's index by position, so ties are compared in position order."""
    def ordered(row):
        return sorted(row, key=lambda hit: (-round(hit[1], 5), hit[0]))

    assert [[p for p, _ in ordered(row)] for row in got] == [[p for p, _ in ordered(row)] for row in want]
    for row, ref in zip(got, want):
        assert [s for _, s in row] == pytest.approx([s for _, s in ref], rel=1e-5)


def _add(path, key: str, text: str) -> None:
    with opened(path) as db:
        import_batch(db, ImportBatch("import", "more.csv", [PairRecord(Query("new query", "qn"), Document(text, key),
                                                                      line=2)]))


def _doc_id(path, key: str) -> int:
    with opened(path) as db:
        return next(r["id"] for r in iter_documents(db) if r["key"] == key)


def test_same_rankings_and_scores_as_bm25s_in_memory(corpus_db):
    path, _ = corpus_db
    ids, index = bm25_store.project_bm25(path)
    ref_ids, ref = _in_memory(path)
    assert ids.dtype == np.int64 and list(ids) == ref_ids
    _same(index.search_many(QUERIES, 5), ref.search_many(QUERIES, 5))
    assert index.search_many(QUERIES, 5)[0]  # it finds something
    assert index.search("the of", 5) == [], "a query of stopwords finds nothing (not the empty documents)"


def test_built_once_then_loaded_memory_mapped(corpus_db, monkeypatch):
    path, builds = corpus_db
    bm25_store.project_bm25(path)
    bm25_store.project_bm25(path)  # in-process cache
    monkeypatch.setattr(bm25_store, "_memory", {})  # a new process: loads the saved segments
    ids, index = bm25_store.project_bm25(path)
    assert builds == [8]
    assert isinstance(index.parts[0].segment.docs, np.memmap)
    _same([index.search("insulin", 3)], [_in_memory(path)[1].search("insulin", 3)])


def test_added_documents_go_into_a_new_segment_of_only_them(corpus_db, monkeypatch):
    path, builds = corpus_db
    bm25_store.project_bm25(path)
    with opened(path) as db:
        before = corpus_version(db)
    _add(path, "dnew", "a zebra grazing near the kidney")
    with opened(path) as db:
        assert corpus_version(db) != before
    ids, index = bm25_store.project_bm25(path)
    assert builds == [8, 1], "only the added document was tokenized"
    assert int(ids[index.search("zebra", 1)[0][0]]) == _doc_id(path, "dnew")
    assert bm25_store.project_keys(path)[-1] == "dnew"
    _same(index.search_many(QUERIES, 9), _in_memory(path)[1].search_many(QUERIES, 9))  # N, df, avglen: global
    monkeypatch.setattr(bm25_store, "_memory", {})  # a new process reads both segments
    ids, index = bm25_store.project_bm25(path)
    assert builds == [8, 1] and len(index.parts) == 2
    _same(index.search_many(QUERIES, 9), _in_memory(path)[1].search_many(QUERIES, 9))


def test_edited_and_deleted_documents_are_masked(corpus_db):
    path, builds = corpus_db
    bm25_store.project_bm25(path)
    edited, deleted = _doc_id(path, "d4"), _doc_id(path, "d7")
    with opened(path) as db:
        db.execute("UPDATE documents SET text = ?, text_hash = ? WHERE id = ?",
                   ["zebra crossing", text_hash("zebra crossing"), edited])  # as an import of a changed text does
        db.execute("DELETE FROM pairs WHERE document_id = ?", [deleted])
        db.execute("DELETE FROM documents WHERE id = ?", [deleted])
    ids, index = bm25_store.project_bm25(path)
    assert builds == [8, 1]
    assert int(ids[index.search("zebra", 1)[0][0]]) == edited
    assert all(int(ids[p]) != edited for p, _ in index.search("insulin pumps", 5)), "the old text is gone"
    assert deleted not in ids and all(int(ids[p]) != deleted for p, _ in index.search("ulcers", 5))
    _same(index.search_many(QUERIES, 9), _in_memory(path)[1].search_many(QUERIES, 9))


def test_segments_are_compacted_when_they_pile_up(corpus_db, monkeypatch):
    path, builds = corpus_db
    monkeypatch.setattr(bm25_store, "MAX_SEGMENTS", 3)
    bm25_store.project_bm25(path)
    for i in range(3):
        _add(path, f"dnew{i}", f"zebra number{i}")
        bm25_store.project_bm25(path)
    assert builds == [8, 1, 1, 11], "the third addition indexed everything into one segment"
    folder = bm25_store.store_folder(path)
    listed = json.loads((folder / "manifest.json").read_text())["segments"]
    assert len(listed) == 1 and {p.name for p in folder.iterdir() if not p.name.startswith(".")} == {
        listed[0], "manifest.json"}, "the compacted segments' folders are removed"
    ids, index = bm25_store.project_bm25(path)
    _same(index.search_many([*QUERIES, "number2"], 9), _in_memory(path)[1].search_many([*QUERIES, "number2"], 9))


def test_torn_save_leaves_the_previous_index_usable(corpus_db, monkeypatch):
    path, builds = corpus_db
    bm25_store.project_bm25(path)
    folder = bm25_store.store_folder(path)
    manifest = (folder / "manifest.json").read_text()
    _add(path, "dnew", "a zebra grazing")
    save = Segment.save

    def torn(self, target):  # writes part of the segment, then the disk is full
        target.mkdir(parents=True, exist_ok=True)
        (target / "docs.npy").write_bytes(b"\x93NUMPY partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(Segment, "save", torn)
    ids, index = bm25_store.project_bm25(path)  # still answers, from memory
    assert int(ids[index.search("zebra", 1)[0][0]]) == max(ids)
    assert (folder / "manifest.json").read_text() == manifest, "the previous manifest is live"
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")], "no half segment left"

    monkeypatch.setattr(Segment, "save", save)  # disk space again: the next process saves the new segment
    monkeypatch.setattr(bm25_store, "_memory", {})
    ids, index = bm25_store.project_bm25(path)
    assert len(json.loads((folder / "manifest.json").read_text())["segments"]) == 2
    assert int(ids[index.search("zebra", 1)[0][0]]) == max(ids)


def test_damaged_or_foreign_folders_are_indexed_again(corpus_db, monkeypatch):
    path, builds = corpus_db
    bm25_store.project_bm25(path)
    folder = bm25_store.store_folder(path)
    (name,) = json.loads((folder / "manifest.json").read_text())["segments"]
    (folder / name / "docs.npy").write_bytes(b"garbage")
    monkeypatch.setattr(bm25_store, "_memory", {})
    ids, index = bm25_store.project_bm25(path)
    assert builds == [8, 8]
    _same(index.search_many(QUERIES, 5), _in_memory(path)[1].search_many(QUERIES, 5))
    # Another database file at the same path (deleted and created again) is another corpus.
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "inode": manifest["inode"] + 1}))
    monkeypatch.setattr(bm25_store, "_memory", {})
    bm25_store.project_bm25(path)
    assert builds == [8, 8, 8]


def test_evaluation_corpus_uses_saved_index(corpus_db):
    path, builds = corpus_db
    with opened(path) as db:
        rows = list(iter_documents(db))
    corpus = bm25_store.ProjectCorpus({r["key"]: document_text(r["title"], r["text"]) for r in rows}, path)
    keys, index = bm25_store.bm25_for(corpus)
    keys_again, _ = bm25_store.bm25_for(corpus)
    assert keys == keys_again == [r["key"] for r in rows] and builds == [8]
    _same(index.search_many(QUERIES, 5), BM25Index(list(corpus.values())).search_many(QUERIES, 5))
    changed = bm25_store.ProjectCorpus({**corpus, "extra": "zebra"}, path)  # not the database's: built here
    keys, index = bm25_store.bm25_for(changed)
    assert keys[-1] == "extra" and index.size == len(rows) + 1
