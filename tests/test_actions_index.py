"""Encode ahead (studio.actions.index): the action a CLI verb and ⑦'s button call; refused below an expert."""

from __future__ import annotations

import pytest

from actors import assert_refused
from studio.actions import Actor, Project
from studio.actions import index
from studio.errors import StudioError
from studio.retrieval import cache, vector_store
from studio.store import opened

EXPERT = Actor("eve", "expert")


@pytest.fixture
def fresh_store(monkeypatch, tmp_path):
    monkeypatch.setattr(cache, "CACHE_DIR", tmp_path / "cache" / "embeddings")
    vector_store.forget()
    yield
    vector_store.forget()


def test_an_expert_encodes_ahead_then_nothing_is_left_to_encode(demo, tiny_m3, fresh_store):
    done = index.encode_ahead(demo, EXPERT, str(tiny_m3))
    assert (done.documents, done.encoded, done.reused) == (95, 95, 0) and done.seconds >= 0
    again = index.encode_ahead(demo, EXPERT, str(tiny_m3))
    assert (again.encoded, again.reused) == (0, 95)
    bm25 = index.encode_ahead(demo, EXPERT, "BM25")
    assert bm25.model == "bm25" and bm25.documents == 95 and bm25.encoded is None


def test_an_annotator_may_not_encode_ahead_and_an_empty_project_has_nothing_to_encode(demo, tmp_path, fresh_store):
    assert_refused(demo, Actor("alice", "annotator"), index.encode_ahead, "default")
    with pytest.raises(StudioError) as info:
        index.encode_ahead(Project(tmp_path / "missing.db"), EXPERT, "default")
    assert info.value.code == "no_database"
    with opened(tmp_path / "empty.db"):
        pass
    with pytest.raises(StudioError) as info:
        index.encode_ahead(Project(tmp_path / "empty.db"), EXPERT, "default")
    assert info.value.code == "no_corpus"
