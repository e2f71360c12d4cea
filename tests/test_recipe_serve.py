"""`studio recipe serve`: a recipe folder as an HTTP service — OpenAI-compatible embeddings equal to
sentence-transformers' own, /search ranking the demo corpus exactly as `studio search --system ... --json` does,
clear 4xx errors, the bearer token, the loopback rule, int8's refusal, and one real uvicorn start on a free port."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from actors import EXPERT
from studio import config
from studio.actions import Project
from studio.actions.serve import serve_recipe
from studio.cli import cli
from studio.retrieval import cpu_encode
from studio.serving.app import Limits, create_app

CORPUS = config.DEMO_DIR / "corpus.jsonl"
QUERIES = ("糖尿病的主要并发症有哪些？", "high blood pressure: can I drink coffee 咖啡 every day?")
SPEC = "default+bm25"


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    """The demo project's database (gold labels: the recipe's threshold is calibrated on them)."""
    from studio.demo import load_demo
    from studio.store import opened

    path = tmp_path_factory.mktemp("serve") / "studio.db"
    with opened(path) as db:
        load_demo(db)
    return path


@pytest.fixture(scope="module")
def recipe_dir(demo_db) -> Path:
    """`studio recipe export "default+bm25" OUT/` on the demo project."""
    out = demo_db.parent / "deploy"
    result = invoke("--db", demo_db, "recipe", "export", SPEC, out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def service(demo_db, recipe_dir):
    """The service of the recipe holding the demo corpus (`--documents assets/demo/corpus.jsonl`)."""
    return serve_recipe(Project(demo_db), EXPERT, recipe_dir, documents=CORPUS, port=free_port())


@pytest.fixture(scope="module")
def client(service) -> TestClient:
    return TestClient(service.app)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------------------- routes

def test_health_names_the_recipe_its_models_and_the_documents_held(client, recipe_dir):
    health = client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["recipe_sha256"] == hashlib.sha256((recipe_dir / "recipe.json").read_bytes()).hexdigest()
    assert (body["spec"], body["documents"], body["int8"], body["fusion"]) == (SPEC, 95, False, "rrf")
    assert body["models"] == {"dense": [config.embedded_model_path().name], "bm25": True, "reranker": None}
    assert body["threshold"]["applies_to"] == "dense_stage"


def test_embeddings_are_sentence_transformers_own_normalised_vectors(client):
    from sentence_transformers import SentenceTransformer

    texts = ["糖尿病的主要并发症有哪些？", "Is coffee safe with high blood pressure?", "阿司匹林 aspirin dose"]
    response = client.post("/v1/embeddings", json={"input": texts, "model": "anything"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list" and [d["index"] for d in body["data"]] == [0, 1, 2]
    assert all(d["object"] == "embedding" for d in body["data"])
    assert body["model"] == config.embedded_model_path().name
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 3 and body["truncated"] == 0
    served = np.array([d["embedding"] for d in body["data"]])
    own = SentenceTransformer(str(config.embedded_model_path()), device="cpu").encode(texts,
                                                                                      normalize_embeddings=True)
    cosine = (served * own).sum(axis=1) / np.linalg.norm(served, axis=1) / np.linalg.norm(own, axis=1)
    assert served.shape == (3, 384) and cosine.min() >= 0.999
    # OpenAI's python client asks for base64 by default: little-endian float32 bytes.
    packed = client.post("/v1/embeddings", json={"input": texts[0], "encoding_format": "base64"}).json()
    vector = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(vector, served[0], atol=1e-6)


def test_search_ranks_the_demo_corpus_as_studio_search_does(client, demo_db, monkeypatch):
    monkeypatch.setenv(cpu_encode.ENV, "0")  # the service encodes in fp32: parity is with the studio's fp32 path
    for query in QUERIES:
        response = client.post("/search", json={"query": query, "k": 10})
        assert response.status_code == 200, response.text
        body = response.json()
        studio = json.loads(invoke("--db", demo_db, "search", query, "--system", SPEC, "--json").stdout)
        assert [r["id"] for r in body["results"]] == [r["key"] for r in studio["results"]]
        assert [r["score"] for r in body["results"]] == pytest.approx([r["score"] for r in studio["results"]],
                                                                      abs=1e-6)
        assert all(isinstance(r["relevant"], bool) and r["title"] and r["text"] for r in body["results"])
    assert body["threshold"]["applies_to"] == "dense_stage"


def test_documents_can_be_added_and_replaced(service, recipe_dir):
    app = create_app(service.runtime, service.runtime.index([]))
    local = TestClient(app)
    assert local.post("/search", json={"query": "x"}).status_code == 409
    added = local.post("/documents", json={"documents": [
        {"id": "a", "title": "Coffee", "text": "Coffee raises blood pressure for a few hours."},
        {"id": 7, "text": "糖尿病足需要每天检查双脚。"}]})
    assert added.json() == {"added": 2, "replaced": 0, "documents": 2}
    again = local.post("/documents", json={"documents": [{"id": "7", "text": "Aspirin thins the blood."}]})
    assert again.json() == {"added": 0, "replaced": 1, "documents": 2}
    hits = local.post("/search", json={"query": "aspirin", "k": 5}).json()["results"]
    assert hits[0]["id"] == "7" and hits[0]["text"] == "Aspirin thins the blood."
    empty = local.post("/documents", json={"documents": [{"id": "b", "title": " ", "text": ""}]})
    assert empty.status_code == 422 and "documents[0].text" in empty.json()["error"]["message"]


# ------------------------------------------------------------------------------------------------------- errors

@pytest.mark.parametrize("route, body, field", [
    ("/v1/embeddings", {"inputs": ["x"]}, "input"),
    ("/v1/embeddings", {"input": [1, 2, 3]}, "input"),
    ("/v1/embeddings", {"input": []}, "input"),
    ("/search", {"query": "x", "k": 0}, "k"),
    ("/search", {"k": 3}, "query"),
    ("/rerank", {"query": "x"}, "texts"),
])
def test_a_malformed_body_gets_422_naming_the_field(client, route, body, field):
    response = client.post(route, json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["param"] == field and field in error["message"]


def test_invalid_json_a_batch_over_the_limit_and_a_missing_reranker_are_said(service, client):
    bad = client.post("/v1/embeddings", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 422 and "not valid JSON" in bad.json()["error"]["message"]
    small = TestClient(create_app(service.runtime, service.index, limits=Limits(batch=2, k=5)))
    over = small.post("/v1/embeddings", json={"input": ["a", "b", "c"]})
    assert over.status_code == 413 and over.json()["error"]["message"] == \
        "input: 3 items, at most 2 per request (send them in batches)"
    assert small.post("/search", json={"query": "x", "k": 6}).status_code == 413
    missing = client.post("/rerank", json={"query": "x", "texts": ["a"]})
    assert missing.status_code == 404 and "has no reranker" in missing.json()["error"]["message"]


def test_texts_longer_than_the_model_reads_are_cut_and_the_response_says_so(client):
    response = client.post("/v1/embeddings", json={"input": ["word " * 400, "short"]})
    assert response.status_code == 200
    assert response.json()["truncated"] == 1 and response.headers["X-Truncated"] == "1"
    assert response.headers["X-Max-Tokens"] == "256"
    assert response.json()["usage"]["prompt_tokens"] == 256 + 3


def test_metrics_count_requests_with_percentiles(client):
    client.get("/health")
    routes = client.get("/metrics").json()["routes"]
    assert routes["/health"]["requests"] >= 1 and routes["/health"]["p95_ms"] >= routes["/health"]["p50_ms"] >= 0
    assert routes["/v1/embeddings"]["errors"] >= 0


def test_with_a_token_every_route_but_health_needs_it(service):
    guarded = TestClient(create_app(service.runtime, service.index, token="s3cret"))
    assert guarded.get("/health").status_code == 200
    for route, body in (("/search", {"query": "x"}), ("/v1/embeddings", {"input": "x"})):
        refused = guarded.post(route, json=body)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
        assert guarded.post(route, json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert guarded.post(route, json=body, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert guarded.get("/metrics").status_code == 401


def test_rerank_follows_text_embeddings_inference(tiny_reranker, tmp_path):
    from studio.actions.recipe import export_recipe

    export_recipe(Project(tmp_path / "none.db"), EXPERT, f"default>{tiny_reranker}", tmp_path / "r")
    service = serve_recipe(Project(tmp_path / "none.db"), EXPERT, tmp_path / "r")
    texts = ["aspirin", "coffee and blood pressure", "糖尿病", "a"]
    body = TestClient(service.app).post("/rerank", json={"query": "blood pressure", "texts": texts, "top_n": 3,
                                                        "raw_scores": True, "return_text": True}).json()
    logits = service.runtime.rerank("blood pressure", texts)
    assert [r["index"] for r in body] == sorted(range(4), key=lambda i: -logits[i])[:3]
    assert [r["score"] for r in body] == pytest.approx(sorted(logits, reverse=True)[:3])
    assert body[0]["text"] == texts[body[0]["index"]] and "relevant" not in body[0]
    squashed = TestClient(service.app).post("/rerank", json={"query": "blood pressure", "texts": texts}).json()
    assert squashed[0]["score"] == pytest.approx(1 / (1 + np.exp(-max(logits))))


# ----------------------------------------------------------------------------------------- refusals at start

def test_a_host_other_machines_reach_needs_a_token(recipe_dir, tmp_path):
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "x.db"), "recipe", "serve", str(recipe_dir),
                                      "--host", "0.0.0.0"])
    assert result.exit_code != 0
    assert result.output.strip().splitlines()[-1] == ("Error: serving on 0.0.0.0 reaches other machines: start "
                                                      "with --token TOKEN (or STUDIO_RECIPE_TOKEN) so that every "
                                                      "request must carry it")
    empty = CliRunner().invoke(cli, ["recipe", "serve", str(recipe_dir), "--token", " "])
    assert empty.exit_code == 1 and "--token is empty" in empty.output


def test_int8_is_refused_when_its_measured_drop_is_too_big(recipe_dir, tmp_path):
    import shutil

    folder = tmp_path / "r"
    shutil.copytree(recipe_dir, folder)
    data = json.loads((folder / "recipe.json").read_text(encoding="utf-8"))
    data["int8"] = {"speedup": 1.8, "ndcg_delta": -0.05, "queries": 20, "advertised": False}
    (folder / "recipe.json").write_text(json.dumps(data), encoding="utf-8")
    result = invoke("recipe", "serve", folder, "--int8")
    assert result.exit_code == 1 and "measured nDCG@10 -0.0500 on 20 held-out queries" in result.output
    missing = invoke("recipe", "serve", tmp_path)
    assert missing.exit_code == 1 and "holds no recipe.json" in missing.output


def test_documents_that_are_not_a_corpus_are_named(recipe_dir, tmp_path):
    bad = tmp_path / "docs.jsonl"
    bad.write_text('{"_id": "a", "text": "x"}\n{"title": "no id"}\n', encoding="utf-8")
    result = invoke("recipe", "serve", recipe_dir, "--documents", bad)
    assert result.exit_code == 1 and f"{bad}, line 2, field 'id'" in result.output


# ---------------------------------------------------------------------------------------------- over the wire

def test_the_service_answers_over_http_on_a_free_port(service):
    server = service.server(log_level="warning")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{service.port}"
    try:
        deadline = time.time() + 30
        while not server.started and time.time() < deadline:
            time.sleep(0.05)
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.get("/health").json()["documents"] == 95
            vectors = http.post("/v1/embeddings", json={"input": ["a", "b"]}).json()["data"]
            assert len(vectors) == 2 and len(vectors[0]["embedding"]) == 384
            assert http.post("/search", content=b"[]", headers={"content-type": "application/json"}).status_code \
                == 422
    finally:
        server.should_exit = True
        thread.join(timeout=10)
