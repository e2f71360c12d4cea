"""Dense vectors stored per document (studio.retrieval.vector_store): only new or changed documents are encoded, a
reload encodes nothing, a failed save leaves the previous store live."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from studio.records import document_text
from studio.retrieval import cache, dense, vector_store
from studio.store import opened


@pytest.fixture
def counted(monkeypatch, tmp_path):
    """The stores under a fresh cache folder; the texts each call of the encoder gets, in order."""
    monkeypatch.setattr(cache, "CACHE_DIR", tmp_path / "cache" / "embeddings")
    vector_store.forget()
    calls: list[list[str]] = []
    real = dense.encode

    def encode(texts, model=None, batch_size=64, **kwargs):
        calls.append(list(texts))
        return real(texts, model, batch_size, **kwargs)

    monkeypatch.setattr(dense, "encode", encode)
    yield calls
    vector_store.forget()


def add(db, n: int, start: int = 0) -> None:
    db["documents"].insert_all(
        [{"key": f"k{i}", "title": "", "text": f"document number {i} about topic {i % 7}",
          "text_hash": hashlib.sha1(f"document number {i} about topic {i % 7}".encode()).hexdigest(),
          "source": "test"} for i in range(start, start + n)])


def texts_of(db) -> dict[int, str]:
    return {row["id"]: document_text(row["title"], row["text"])
            for row in db.query("SELECT id, title, text FROM documents")}


def encoded(calls) -> list[str]:
    return [text for call in calls for text in call]


def test_only_new_changed_and_no_deleted_documents_cost_an_encoding(db, db_path, tiny_m3, counted):
    add(db, 12)
    seen = []
    ids, matrix = vector_store.project_vectors(db_path, str(tiny_m3), progress=lambda d, t: seen.append((d, t)))
    assert len(encoded(counted)) == 12 and seen[0] == (0, 12) and seen[-1] == (12, 12)
    assert ids.dtype == np.int64 and list(ids) == sorted(texts_of(db)) and matrix.shape[0] == 12

    again = vector_store.project_vectors(db_path, str(tiny_m3))
    assert again[1] is matrix and len(encoded(counted)) == 12, "the same corpus version costs nothing"

    counted.clear()
    add(db, 3, start=100)
    first = int(ids[0])
    db["documents"].update(first, {"title": "A new title"})
    gone = int(ids[5])
    db.execute("DELETE FROM documents WHERE id = ?", [gone])
    db.conn.commit()
    ids2, matrix2 = vector_store.project_vectors(db_path, str(tiny_m3))
    texts = texts_of(db)
    assert sorted(encoded(counted)) == sorted([texts[first]] + [t for i, t in texts.items() if i > int(ids[-1])])
    assert gone not in set(ids2.tolist()) and list(ids2) == sorted(texts) and len(ids2) == 14
    kept = [i for i in ids2.tolist() if i in set(ids.tolist()) and i != first]
    old_rows = matrix[np.searchsorted(ids, kept)]
    assert np.array_equal(matrix2[np.searchsorted(ids2, kept)], old_rows), "unchanged documents keep their vectors"


def test_vectors_equal_encode_of_document_text_and_reload_encodes_nothing(db, db_path, tiny_m3, counted):
    add(db, 8)
    db["documents"].update(3, {"title": "Titled"})
    ids, matrix = vector_store.project_vectors(db_path, str(tiny_m3))
    texts = texts_of(db)
    expected = dense.encode([texts[i] for i in ids.tolist()], str(tiny_m3))
    np.testing.assert_allclose(matrix, expected, atol=2e-3)  # float16 storage: ~3 significant digits
    assert matrix.dtype == np.float32 and np.allclose(np.linalg.norm(matrix, axis=1), 1, atol=2e-3)

    counted.clear()
    vector_store.forget()  # a new process: only the store on disk is left
    ids2, matrix2 = vector_store.project_vectors(db_path, str(tiny_m3))
    assert counted == [] and np.array_equal(ids, ids2) and np.array_equal(matrix, matrix2)
    stored = vector_store.load(vector_store.store_dir(db_path, str(tiny_m3)))
    assert isinstance(stored.vectors, np.memmap) and stored.vectors.dtype == vector_store.STORE_DTYPE


def test_a_failed_save_leaves_the_previous_store_live(db, db_path, tiny_m3, counted, monkeypatch):
    add(db, 6)
    ids, matrix = vector_store.project_vectors(db_path, str(tiny_m3))
    folder = vector_store.store_dir(db_path, str(tiny_m3))
    add(db, 6, start=50)
    vector_store.forget()
    real = dense.encode
    monkeypatch.setattr(dense, "encode", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):  # the process dies half way through writing the new generation
        vector_store.project_vectors(db_path, str(tiny_m3))
    stored = vector_store.load(folder)
    assert np.array_equal(stored.ids, ids) and np.array_equal(np.asarray(stored.vectors, np.float32), matrix)
    assert len([p for p in folder.iterdir() if p.is_dir()]) == 1, "the torn generation is removed"

    monkeypatch.setattr(dense, "encode", real)
    ids2, _ = vector_store.project_vectors(db_path, str(tiny_m3))
    assert len(ids2) == 12 and len([p for p in folder.iterdir() if p.is_dir()]) == 1


def test_a_store_of_another_database_at_the_same_path_is_not_reused(db, db_path, tiny_m3, counted):
    add(db, 4)
    vector_store.project_vectors(db_path, str(tiny_m3))
    db.close()
    other = db_path.parent / "restored.db"
    with opened(other) as fresh:  # same count, same corpus version: different texts (a restored backup)
        fresh["documents"].insert_all([{"key": f"z{i}", "text": f"other text {i}", "text_hash": f"h{i}",
                                        "source": "test"} for i in range(4)])
    os.replace(other, db_path)
    vector_store.forget()
    counted.clear()
    vector_store.project_vectors(db_path, str(tiny_m3))
    assert sorted(encoded(counted)) == sorted(f"other text {i}" for i in range(4))
