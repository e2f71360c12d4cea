"""The approximate index of a large project's dense search (studio.retrieval.ann): used from ANN_MIN_DOCUMENTS
documents, its top 10 agrees with exact search at the recall it reports, and an edit updates it in place (a new
document is found, a deleted one never returned) instead of rebuilding it.

The documents' vectors are planted (an encoder that looks texts up: clusters of nearby vectors, as real embeddings
have) so that a corpus of thousands costs no model time; the vector store, the index and the search are the real ones.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from studio import config
from studio.retrieval import ann, cache, dense, search, vector_store
from studio.retrieval.corpus_index import corpus_for

DIM = 384
DOCUMENTS = 3000


class Planted:
    """text → its planted vector (unknown texts: a random unit vector seeded by the text)."""

    def __init__(self) -> None:
        self.vectors: dict[str, np.ndarray] = {}
        self.rng = np.random.default_rng(7)
        self.centres = self.unit(self.rng.standard_normal((60, DIM)))

    @staticmethod
    def unit(rows: np.ndarray) -> np.ndarray:
        return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)

    def near(self, centre: int, noise: float = 0.04) -> np.ndarray:
        return self.unit(self.centres[centre] + self.rng.standard_normal(DIM) * noise)

    def vector(self, text: str) -> np.ndarray:
        if text not in self.vectors:
            seed = int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)
            self.vectors[text] = self.unit(np.random.default_rng(seed).standard_normal(DIM))
        return self.vectors[text]

    def encode(self, texts, model=None, batch_size=64, **kwargs) -> np.ndarray:
        return np.stack([self.vector(t) for t in texts]) if len(texts) else np.zeros((0, DIM), np.float32)


@pytest.fixture
def planted(monkeypatch, tmp_path, tiny_m3):
    plant = Planted()
    monkeypatch.setattr(cache, "CACHE_DIR", tmp_path / "cache" / "embeddings")
    monkeypatch.setattr(dense, "encode", plant.encode)  # the vector store's encoder
    monkeypatch.setattr(search, "encode", plant.encode)  # the query's
    monkeypatch.setattr(search, "load_embedder", lambda model: None)
    monkeypatch.setattr(config, "ANN_MIN_DOCUMENTS", 2000)
    for forget in (vector_store.forget, ann.forget, search._indexes.clear):
        forget()
    yield plant
    for forget in (vector_store.forget, ann.forget, search._indexes.clear):
        forget()


def add(db, plant: Planted, n: int, start: int = 0) -> None:
    rows = []
    for i in range(start, start + n):
        text = f"passage {i}"
        plant.vectors[text] = plant.near(i % len(plant.centres))
        rows.append({"key": f"d{i}", "title": "", "text": text, "source": "test",
                     "text_hash": hashlib.sha1(text.encode()).hexdigest()})
    db["documents"].insert_all(rows)


def top10(db, db_path, model: str, query: str) -> list[str]:
    corpus = corpus_for(db, db_path)
    hits, _ = search.search(model, query, corpus.keys, corpus.texts, 10)
    return [h.doc_key for h in hits]


def exact10(db, db_path, model: str, query: str, plant: Planted) -> list[str]:
    corpus = corpus_for(db, db_path)
    matrix = np.stack([plant.vector(f"passage {k[1:]}") for k in corpus.keys])
    scores = matrix @ plant.vector(query)
    return [corpus.keys[i] for i in np.argsort(-scores, kind="stable")[:10]]


def test_a_large_corpus_is_searched_approximately_and_agrees_with_exact_at_its_recall(db, db_path, tiny_m3,
                                                                                      planted):
    add(db, planted, DOCUMENTS)
    model = str(tiny_m3)
    corpus = corpus_for(db, db_path)
    quality = search.approximate(model, corpus.keys, corpus.texts)
    assert quality is not None and quality.kind == "IVF" and quality.documents == DOCUMENTS
    assert quality.recall_at_10 >= ann.RECALL_GOAL and quality.queries == ann.RECALL_QUERIES // 2, "the held-out half"
    assert "recall@10" in quality.describe() and f"{quality.recall_at_10:.3f}" in quality.describe()

    overlaps = []
    for q in range(40):
        text = f"query {q}"
        planted.vectors[text] = planted.near(q % 60, noise=0.05)
        found, exact = top10(db, db_path, model, text), exact10(db, db_path, model, text, planted)
        overlaps.append(len(set(found) & set(exact)) / 10)
    assert np.mean(overlaps) >= quality.recall_at_10 - 0.02, (np.mean(overlaps), quality)


def test_below_the_threshold_the_search_is_exact(db, db_path, tiny_m3, planted, monkeypatch):
    monkeypatch.setattr(config, "ANN_MIN_DOCUMENTS", DOCUMENTS + 1)
    add(db, planted, DOCUMENTS)
    model = str(tiny_m3)
    corpus = corpus_for(db, db_path)
    assert search.approximate(model, corpus.keys, corpus.texts) is None
    planted.vectors["query"] = planted.near(3, noise=0.05)
    assert top10(db, db_path, model, "query") == exact10(db, db_path, model, "query", planted)


def test_an_edit_updates_the_index_in_place_and_a_restart_loads_it(db, db_path, tiny_m3, planted, monkeypatch):
    add(db, planted, DOCUMENTS)
    model = str(tiny_m3)
    planted.vectors["zebra"] = planted.unit(np.ones(DIM))  # far from every cluster
    assert "d9000" not in top10(db, db_path, model, "zebra")
    built = search.index_for(model, *_corpus(db, db_path)).ann

    monkeypatch.setattr(ann, "build", lambda *a, **k: pytest.fail("an edit of a few documents rebuilt the index"))
    planted.vectors["passage 9000"] = planted.unit(np.ones(DIM) + 0.01)
    db["documents"].insert({"key": "d9000", "title": "", "text": "passage 9000", "source": "test",
                            "text_hash": "x9000"})
    assert top10(db, db_path, model, "zebra")[0] == "d9000", "a new document is found"

    first = top10(db, db_path, model, "zebra")
    db.execute("DELETE FROM documents WHERE key = ?", ["d9000"])
    db.execute("DELETE FROM documents WHERE key = ?", [first[1]])
    db.conn.commit()
    after = top10(db, db_path, model, "zebra")
    assert "d9000" not in after and first[1] not in after and len(after) == 10, "deleted documents never come back"

    updated = search.index_for(model, *_corpus(db, db_path)).ann
    assert updated is built and updated.changed == 3 and updated.quality.documents == DOCUMENTS - 1
    assert updated.quality.recall_at_10 >= ann.RECALL_GOAL

    for forget in (vector_store.forget, ann.forget, search._indexes.clear):
        forget()
    reloaded = search.index_for(model, *_corpus(db, db_path)).ann
    assert reloaded is not built and reloaded.index.ntotal == DOCUMENTS - 1, "a restart loads the saved index"
    assert top10(db, db_path, model, "zebra") == after


def _corpus(db, db_path):
    corpus = corpus_for(db, db_path)
    return corpus.keys, corpus.texts


def test_the_page_says_a_side_was_searched_approximately_with_its_recall(db, db_path, tiny_m3, planted):
    from studio.retrieval.system_search import search_system
    from studio.ui.tabs.compare import system_note

    add(db, planted, DOCUMENTS)
    model = str(tiny_m3)
    planted.vectors["query"] = planted.near(5, noise=0.05)
    keys, texts = _corpus(db, db_path)
    _, _, details = search_system(model, "query", keys, texts, 10)
    ((stage, quality),) = details.approximate
    assert stage == model and quality.recall_at_10 >= ann.RECALL_GOAL
    recall = f"{quality.recall_at_10:.3f}"
    assert "approximate search (IVF" in system_note(details, "en") and recall in system_note(details, "en")
    assert "近似检索" in system_note(details, "zh-CN") and recall in system_note(details, "zh-CN")
    _, _, exact = search_system("bm25", "query", keys, texts, 10)
    assert exact.approximate == () and "recall@10" not in system_note(exact, "en")
