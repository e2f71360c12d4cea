"""Encoding ahead and encoding progress (issue 30): `studio index` encodes only what is new, pool and evaluation read
the stored vectors instead of encoding the corpus again, ⑦'s button, and the ETA line in both languages."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from studio import config
from studio.actions import Actor, collect, evaluate
from studio.actions import index as index_actions
from studio.cli import cli
from studio.retrieval import cache, dense, vector_store
from studio.retrieval.progress_eta import Eta, eta_text
from studio.store import opened
from studio.ui.context import UIContext, make_i18n
from studio.ui.tabs import compare, models

ADMIN = Actor("admin", "admin")


@pytest.fixture
def corpus_encodings(monkeypatch, tmp_path, tiny_m3):
    """Stores under a fresh cache folder, a tiny random model in the embedded model's place (`default`, seconds
    less per encoding); the number of texts each corpus encoding got (query encodings in pool and evaluation go
    through another name and are not counted)."""
    monkeypatch.setattr(config, "embedded_model_path", lambda: tiny_m3)
    monkeypatch.setattr(cache, "CACHE_DIR", tmp_path / "cache" / "embeddings")
    vector_store.forget()
    calls: list[int] = []
    real = dense.encode

    def encode(texts, model=None, batch_size=64, **kwargs):
        texts = list(texts)
        calls.append(len(texts))
        return real(texts, model, batch_size, **kwargs)

    monkeypatch.setattr(dense, "encode", encode)
    yield calls
    vector_store.forget()


def add_document(db_path, key: str, text: str) -> None:
    with opened(db_path) as db:
        db["documents"].insert({"key": key, "title": "", "text": text,
                                "text_hash": hashlib.sha1(text.encode()).hexdigest(), "source": "test"})


def index_json(db_path, model: str) -> dict:
    result = CliRunner().invoke(cli, ["--db", str(db_path), "index", "--model", model, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_studio_index_encodes_the_corpus_once_then_only_what_is_new(demo, corpus_encodings):
    first = index_json(demo.db_path, "default")
    assert first["documents"] == 95 and first["encoded"] == 95 and first["reused"] == 0
    assert sum(corpus_encodings) == 95
    vector_store.forget()  # the next run is another process: only the store on disk is left
    assert index_json(demo.db_path, "default")["encoded"] == 0 and sum(corpus_encodings) == 95
    add_document(demo.db_path, "new-doc", "A brand new leaflet on insulin pens.")
    again = index_json(demo.db_path, "default")
    assert (again["documents"], again["encoded"], again["reused"]) == (96, 1, 95) and sum(corpus_encodings) == 96


def test_the_cli_bar_shows_done_total_and_time(demo, tiny_m3, corpus_encodings):
    result = CliRunner().invoke(cli, ["--db", str(demo.db_path), "index", "--model", str(tiny_m3)])
    assert result.exit_code == 0, result.output
    assert "0 / 95 · estimating the time left" in result.stderr and "95 / 95 · took" in result.stderr
    assert "95 documents, 95 encoded now, 0 reused" in result.stdout


def test_the_eta_reads_in_both_languages():
    assert eta_text(1234, 20000, 12.34, "en") == "1,234 / 20,000 · ETA 4 min"  # 100 a second: 188 s, rounded up
    assert eta_text(1234, 20000, 12.34, "zh-CN") == "1,234 / 20,000 · 预计还需 4 分钟"
    assert eta_text(500, 1000, 20, "en") == "500 / 1,000 · ETA 20 s"
    assert eta_text(100, 100_000, 60, "zh-CN") == "100 / 100,000 · 预计还需 16 小时 39 分钟"
    assert eta_text(0, 20000, 0, "en") == "0 / 20,000 · estimating the time left…"
    assert eta_text(20000, 20000, 200, "zh-CN") == "20,000 / 20,000 · 用时 4 分钟"

    now = [100.0]
    shown: list[tuple[float, str]] = []
    eta = Eta(lambda fraction, text: shown.append((fraction, text)), "en", clock=lambda: now[0])
    eta(0, 400)
    now[0] += 10
    eta(100, 400)
    assert shown == [(0.0, "0 / 400 · estimating the time left…"), (0.25, "100 / 400 · ETA 30 s")]


def test_pool_and_its_queue_order_read_the_stored_vectors(demo, tiny_m3, corpus_encodings):
    for model in (str(tiny_m3), "default"):  # the queue's `systems` order ranks with the embedded model too
        index_actions.encode_ahead(demo, ADMIN, model)
    assert corpus_encodings == [95], "`default` is the same model here: one store"
    corpus_encodings.clear()
    vector_store.forget()  # a new process: the store on disk only
    result = collect.pool(demo, ADMIN, 5, "dense", str(tiny_m3))
    assert result["candidates"] > 0 and result["strategy"] == "systems"
    assert corpus_encodings == [], "the corpus was encoded again"

    add_document(demo.db_path, "new-doc", "A brand new leaflet on insulin pens.")
    heard: list[tuple[int, int]] = []
    with index_actions.encoding_progress(lambda done, total: heard.append((done, total))):
        collect.pool(demo, ADMIN, 5, "hybrid", str(tiny_m3))
    assert corpus_encodings == [1] and heard == [(0, 1), (1, 1)], "only the new document is encoded"


def test_an_evaluation_on_the_project_reads_the_stored_vectors(demo, tiny_m3, corpus_encodings):
    before = evaluate.evaluate(demo, ADMIN, [str(tiny_m3)], "db")
    assert sum(corpus_encodings) == 95, "the first evaluation encodes the corpus into the store"
    corpus_encodings.clear()
    vector_store.forget()
    again = evaluate.evaluate(demo, ADMIN, [str(tiny_m3)], "db")
    assert corpus_encodings == [] and again.report["models"][0]["metrics"] == before.report["models"][0]["metrics"]

    add_document(demo.db_path, "new-doc", "A brand new leaflet on insulin pens.")
    heard: list[tuple[int, int]] = []
    with index_actions.encoding_progress(lambda done, total: heard.append((done, total))):
        evaluate.evaluate(demo, ADMIN, [], "db", systems=[str(tiny_m3), "bm25"])
    assert corpus_encodings == [1] and heard[-1] == (1, 1)


def test_models_tab_encodes_ahead_and_says_so_in_the_page_language(demo, corpus_encodings):
    ctx = UIContext(demo.db_path, make_i18n())
    bars: list[tuple[float, str]] = []
    out = models.encode_ahead(ctx, "all-MiniLM-L6-v2", "zh-CN", progress=lambda f, desc: bars.append((f, desc)))
    assert "95 篇文档已就绪" in out and "本次编码 95 篇" in out
    assert bars[0] == (0.0, "0 / 95 · 正在估算剩余时间…") and bars[-1][1].startswith("95 / 95 · 用时")
    out = models.encode_ahead(ctx, "all-MiniLM-L6-v2", "en")
    assert "0 encoded now, 95 reused" in out

    ctx.auth = True
    refused = models.encode_ahead(ctx, "all-MiniLM-L6-v2", "zh-CN", SimpleNamespace(username="Dr. Smith"))
    assert "无权执行此操作：需要专家角色" in refused, refused


def test_compares_first_query_shows_the_encoding_in_the_page(demo, corpus_encodings):
    ctx = UIContext(demo.db_path, make_i18n())
    bars: list[tuple[float, str]] = []
    left, right, _, total = compare.run_search(ctx, "insulin", "bm25", "all-MiniLM-L6-v2", 5, "en",
                                               progress=lambda f, desc=None: bars.append((f, desc)))
    assert "rs-hit" in right and bars[0] == (0.0, "0 / 95 · estimating the time left…")
    assert bars[-1][0] == 1.0 and bars[-1][1].startswith("95 / 95 · took")
    bars.clear()
    compare.run_search(ctx, "insulin", "bm25", "all-MiniLM-L6-v2", 5, "en",
                       progress=lambda f, desc=None: bars.append((f, desc)))
    assert bars == [], "the next query encodes nothing"
