"""The rough edges a new team hit (#27, item 7), each at the handler or action level: a bad system spec answers in
the studio's words before anything runs, ⑨'s right side is the ★ model fused with BM25, the page's own loads leave
no "refused" entries in the audit log, ⑦ shows where a model came from, the sign-in page speaks the header's
language, and undo only mentions a note when there was one."""

from __future__ import annotations

import asyncio
import html
import json
from pathlib import Path

import gradio as gr
import pytest
from click.testing import CliRunner
from gradio.state_holder import SessionState

from actors import ADMIN, ANNOTATOR, EXPERT, assert_refused, refusals
from studio import config
from studio.actions import collect, search
from studio.cli import cli
from studio.config import embedded_model_path
from studio.errors import StudioError
from studio.evaluation.systems import check as check_systems
from studio.retrieval.systems import parse
from studio.store import opened
from studio.store.users import set_password
from studio.ui.app import build_app
from studio.ui.context import UIContext, make_i18n

QUERY = "高血压患者能喝咖啡吗？"


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    """models/ with an embedder "demo-ft" (the embedded model linked in) and a tiny reranker "rr"."""
    from tiny_models import build_tiny_reranker

    root = tmp_path / "models"
    root.mkdir()
    (root / "demo-ft").symlink_to(embedded_model_path(), target_is_directory=True)
    build_tiny_reranker(root / "rr")
    monkeypatch.setattr(config, "MODELS_DIR", root)
    return root


# ------------------------------------------------------------------------------------- ⑨ / search: bad specs

def test_an_unknown_model_is_named_with_the_models_there_are(demo, models_dir):
    with pytest.raises(StudioError) as err:
        search.search(demo, EXPERT, QUERY, "foo+bar")
    assert err.value.code == "model_unknown"
    assert err.value.message("en") == "no model 'foo' in models/ (have: all-MiniLM-L6-v2, demo-ft, rr)"
    assert "models/ 中没有模型 'foo'" in err.value.message("zh-CN")


def test_an_embedder_after_the_arrow_and_a_reranker_before_it_are_refused(demo, models_dir):
    with pytest.raises(StudioError) as err:
        search.search(demo, EXPERT, QUERY, "bm25>demo-ft")
    assert err.value.code == "model_not_reranker"
    assert err.value.message("en").startswith("'demo-ft' is an embedder, not a reranker")
    with pytest.raises(StudioError) as err:
        search.compare(demo, EXPERT, QUERY, "bm25", "rr+bm25")
    assert err.value.code == "model_is_reranker"
    assert search.search(demo, EXPERT, QUERY, "bm25>rr", k=3).side.hits, "a reranker after > still reranks"


def test_evaluation_checks_the_same_before_running(models_dir):
    for spec, code in (("foo", "model_unknown"), ("demo-ft+bm25>demo-ft", "model_not_reranker"),
                       ("rr", "model_is_reranker")):
        with pytest.raises(StudioError) as err:
            check_systems([parse(spec)])
        assert err.value.code == code, spec
    assert set(check_systems([parse("demo-ft+bm25>rr")])) == {"demo-ft", "rr"}


def test_studio_search_answers_in_the_studios_words(demo, models_dir):
    for spec, said in (("foo+bar", "no model 'foo' in models/ (have: all-MiniLM-L6-v2, demo-ft, rr)"),
                       ("bm25>demo-ft", "'demo-ft' is an embedder, not a reranker")):
        result = CliRunner().invoke(cli, ["--db", str(demo.db_path), "search", QUERY, "--system", spec])
        assert result.exit_code != 0 and said in result.output, result.output
        assert "huggingface.co" not in result.output and "shape mismatch" not in result.output


def test_compare_tab_says_it_in_the_pages_language(demo, models_dir):
    from studio.ui.tabs import compare

    ctx = UIContext(demo.db_path, make_i18n())
    left, *_ = compare.run_search(ctx, QUERY, "bm25", "foo", 5, "zh-CN")
    left = html.unescape(left)
    assert "models/ 中没有模型 'foo'（现有：all-MiniLM-L6-v2, demo-ft, rr）" in left and "huggingface" not in left
    left, *_ = compare.run_search(ctx, QUERY, "bm25", "bm25", 5, "zh-CN", None, "demo-ft")
    assert "'demo-ft' 是嵌入模型，不是重排模型" in html.unescape(left)


# ------------------------------------------------------------------------------------ ⑨: the right side's default

def test_the_right_side_is_the_starred_model_fused_with_bm25(demo, models_dir):
    from studio.actions import models as model_actions
    from studio.ui.tabs import compare

    ctx = UIContext(demo.db_path, make_i18n())
    right = compare.refresh(ctx, "default+bm25", "", "", "en")[1]
    assert right["value"] == "all-MiniLM-L6-v2+bm25", "no ★ set: the embedded model, not the last folder (rr)"
    model_actions.set_default(demo, ADMIN, "demo-ft")
    assert compare.refresh(ctx, "default+bm25", "", "", "en")[1]["value"] == "demo-ft+bm25"
    assert compare.refresh(ctx, "bm25", "", "", "en")[1]["value"] == "bm25", "the presenter's choice stays"


# ------------------------------------------------------------------------------------ undo without a note

def test_undo_mentions_the_note_only_when_there_was_one(demo):
    from studio.ui.tabs import annotate

    ctx = UIContext(demo.db_path, make_i18n())
    _, pair, *_ = annotate.start(ctx, "Dr. Li", "en")
    annotate.rate(ctx, "Dr. Li", pair, "", 2, "en")
    _, back, _, status, note = annotate.undo(ctx, "Dr. Li", "en")
    assert back == pair and note == "" and "note" not in status and "taken back" in status
    annotate.rate(ctx, "Dr. Li", pair, "only half of it", 1, "zh-CN")
    _, _, _, status, note = annotate.undo(ctx, "Dr. Li", "zh-CN")
    assert note == "only half of it" and "备注已放回输入框" in status


# ------------------------------------------------------------------------ page loads leave no "refused" entries

def _page_loads(demo_app: gr.Blocks) -> list:
    """The handlers the page runs by itself: the load chain (the load and every step after it) and each tab's
    refresh on select."""
    fns = list(demo_app.fns.values())
    chain = {f._id for f in fns if any(event in ("load", "select") for _, event in f.targets)}
    grew = True
    while grew:
        after = {f._id for f in fns if f.trigger_after in chain} - chain
        chain |= after
        grew = bool(after)
    return [f for f in fns if f._id in chain and f.fn is not None]


def test_loading_every_tab_as_an_annotator_audits_no_refusal(demo):
    with opened(demo.db_path) as db:
        set_password(db, "alice", "correct horse battery")
    app, _ = build_app(demo.db_path, auth=True)
    loads = _page_loads(app)
    assert len(loads) >= 9, [f.name for f in loads]
    request = gr.Request(username="alice", session_hash="walk")
    state = SessionState(app)
    for fn in loads:
        inputs = [getattr(b, "value", None) for b in fn.inputs]
        asyncio.run(app.process_api(fn, inputs, state=state, request=request, session_hash="walk"))
    assert refusals(demo) == [], [r["after"] for r in refusals(demo)]
    assert_refused(demo, ANNOTATOR, collect.counts)  # a person's own call is still refused and audited


# ------------------------------------------------------------------------------------ ⑦: where a model came from

def _trained(models_dir: Path, exports: Path) -> Path:
    """A studio-trained model's record (its studio_model.json, as the trainer writes it) beside a config."""
    folder = models_dir / "med-v1"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}), encoding="utf-8")
    (folder / "studio_model.json").write_text(json.dumps({
        "base": "all-MiniLM-L6-v2", "method": "full", "job_dir": str(models_dir.parent / "jobs" / "7"),
        "created": "2026-12-01T09:30:00+00:00", "final_loss": 0.41234, "final_eval_loss": 0.5,
        "final": {"loss": 0.41234, "eval_loss": 0.5, "eval_runtime": 1.2},
        "train": str(exports / "run" / "train.jsonl"), "valid": str(exports / "run" / "valid.jsonl"),
        "queries": {"train": ["a", "b", "c"], "valid": ["d"]}}), encoding="utf-8")
    return folder


def test_models_tab_shows_base_data_date_queries_and_losses(demo, models_dir, tmp_path, monkeypatch):
    from studio.ui.tabs import models

    exports = tmp_path / "exports"
    monkeypatch.setattr(config, "EXPORTS_DIR", exports)
    _trained(models_dir, exports)
    ctx = UIContext(demo.db_path, make_i18n())
    card = html.unescape(models.show(ctx, "med-v1", "en"))
    for shown in ("trained from</b>: all-MiniLM-L6-v2", "training data</b>: exports/run/train.jsonl",
                  "validation data</b>: exports/run/valid.jsonl", "created</b>: 2026-12-01T09:30:00+00:00",
                  "queries</b>: 3 training · 1 validation", "final loss</b>: 0.4123",
                  "final validation loss</b>: 0.5000", "held-out score</b>: none recorded", "models/med-v1"):
        assert shown in card, shown
    assert str(tmp_path) not in card, "no server path in the page"
    zh = html.unescape(models.show(ctx, "med-v1", "zh-CN"))
    assert "训练数据</b>: exports/run/train.jsonl" in zh and "训练 3 · 验证 1" in zh and str(tmp_path) not in zh


def test_a_recorded_held_out_score_is_shown(demo, models_dir, tmp_path, monkeypatch):
    from studio.ui.tabs import models

    monkeypatch.setattr(config, "EXPORTS_DIR", tmp_path / "exports")
    record = _trained(models_dir, tmp_path / "exports") / "studio_model.json"
    origin = json.loads(record.read_text(encoding="utf-8"))
    origin["final"]["eval_ndcg@10"] = 0.6123
    record.write_text(json.dumps(origin), encoding="utf-8")
    card = html.unescape(models.show(UIContext(demo.db_path, make_i18n()), "med-v1", "en"))
    assert "held-out score</b>: ndcg@10 0.6123" in card and "runtime" not in card


# ------------------------------------------------------------------------------------ the sign-in page's words

def _sign_in_page(db_path: Path) -> str:
    """The sign-in page as the studio's response watch sends it (Gradio's page stands in as a small HTML body)."""
    from studio.ui.web import ResponseWatch, WebGuard

    async def gradio_page(scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/html; charset=utf-8")]})
        await send({"type": "http.response.body", "body": b"<html><head></head><body></body></html>"})

    guard = WebGuard(db_path, auth=True)
    guard.installed = True
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    asyncio.run(ResponseWatch(gradio_page, guard)(scope, receive, send))
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body").decode("utf-8")


def test_the_sign_in_page_names_the_app_as_the_header_does_and_speaks_chinese(db_path):
    from studio.i18n import t
    from studio.ui.web import sign_in_message, sign_in_words

    name = t("app.name", "zh-CN")
    assert name == "相关性标注工作台" and t("app.header", "zh-CN").startswith(f"# {name}"), "one name, the header's"
    assert sign_in_message() == "相关性标注工作台 Relevance Studio"
    zh = sign_in_words("zh-CN")
    assert zh["incorrect credentials"] == "用户名或密码不正确。" and zh["username"] == "用户名"
    assert zh["password"] == "密码" and zh["login"] == "登录"
    page = _sign_in_page(db_path)
    for shown in ("用户名或密码不正确。", "用户名", "密码", "请用管理员给您的用户名和密码登录。", "MutationObserver",
                  "Wrong name or password."):
        assert shown in page, shown
    assert "相关性标注工作室" not in page


def test_gradios_progress_words_have_a_translation_the_boot_script_uses():
    from studio.i18n import t
    from studio.ui.boot import BOOT_JS

    assert (t("gradio.processing", "zh-CN"), t("gradio.queue", "zh-CN")) == ("处理中", "排队")
    assert "gradio.processing" in BOOT_JS and "gradio.queue" in BOOT_JS and "characterData" in BOOT_JS
