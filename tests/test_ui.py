"""UI handlers as plain functions, plus one check that the whole app builds."""

import json
import re
from pathlib import Path

import plotly.graph_objects as go
import pytest

from studio.demo import load_demo
from studio.store import opened
from studio.ui import render
from studio.ui.app import build_app
from studio.ui.context import UIContext, make_i18n
from studio.ui.tabs import adjudicate, agreement, annotate, data, import_


@pytest.fixture
def ctx(db_path):
    return UIContext(Path(db_path), make_i18n())


@pytest.fixture
def demo_ctx(ctx):
    with opened(ctx.db_path) as db:
        load_demo(db)
    return ctx


def test_app_builds_with_every_tab(db_path):
    demo, i18n = build_app(db_path)
    config = demo.get_config_file()
    tabs = [str(c["props"].get("label")) for c in config["components"] if c["type"] == "tabitem"]
    assert [key.split('"key": "')[1].rstrip('"}') for key in tabs] == [
        "tab.import", "tab.annotate", "tab.agreement", "tab.adjudicate", "tab.data", "tab.train", "tab.models", "tab.evaluate", "tab.compare"]
    assert set(i18n.translations_dict) == {"en", "zh-CN"}


def test_document_html_is_escaped_and_query_terms_highlighted():
    card = render.pair_card("warfarin diet", "", "<script>alert(1)</script> Warfarin and diet: vitamin K", "en")
    assert "<script>" not in card and "&lt;script&gt;" in card
    assert "<mark>Warfarin</mark>" in card and "<mark>diet</mark>" in card


def test_chinese_query_terms_are_highlighted():
    html = render.highlight("长期高血糖会导致糖尿病视网膜病变", "糖尿病的并发症")
    assert "<mark>糖尿病</mark>" in html and html.count("<mark>") == 1


def test_annotate_flow_rates_and_moves_on(demo_ctx):
    card, pair, progress, status, note = annotate.start(demo_ctx, "Dr. Smith", "zh-CN")
    assert pair is not None and "rs-query" in card and "今天" in progress
    card2, pair2, _, status2, _ = annotate.rate(demo_ctx, "Dr. Smith", pair, "只部分回答", 1, "zh-CN")
    assert f"已保存：数据对 #{pair}" in status2 and pair2 != pair
    with opened(demo_ctx.db_path) as db:
        row = next(db.query("SELECT rating, note FROM ratings r JOIN annotators a ON a.id = r.annotator_id "
                            "WHERE a.name = 'Dr. Smith' AND pair_id = ?", [pair]))
    assert row == {"rating": 1, "note": "只部分回答"}
    _, pair3, _, status3, note3 = annotate.undo(demo_ctx, "Dr. Smith", "en")
    assert pair3 == pair and f"pair #{pair}" in status3 and "it was 1 · Partially relevant" in status3
    assert note3 == "只部分回答", "the undone rating's note comes back into the note box"


def test_annotate_asks_for_a_name(ctx):
    card, pair, *_ = annotate.start(ctx, "", "en")
    assert pair is None and "Pick or type your name" in card


def test_annotate_on_an_empty_project_points_to_collect(ctx):
    card, pair, *_ = annotate.start(ctx, "Dr. Li", "en")
    assert pair is None and "no pairs to rate yet" in card and "Thank you" not in card


def test_agreement_tab_shows_gate_and_charts(demo_ctx):
    card, bars, table, choices, heat, dis, details = agreement.refresh(demo_ctx, "en")
    assert "Gate passed" in card and "0.687" in card and details["visible"]
    assert isinstance(bars, go.Figure) and isinstance(heat, go.Figure)
    assert len(table) == 3 and len(dis) == 20
    zh_card, *_ = agreement.refresh(demo_ctx, "zh-CN")
    assert "已通过门槛" in zh_card and "高度一致" in zh_card


def test_agreement_on_an_empty_project_says_so(ctx):
    card, *_, details = agreement.refresh(ctx, "en")
    assert "No pair has two ratings yet" in card and "nan" not in card.lower()
    assert "Gate not passed" not in card, "nothing to judge is not a failed gate"
    assert not details["visible"], "no empty charts or tables"


def test_adjudicate_decides_and_shows_the_next_case(demo_ctx):
    card, pair, count, _, audit = adjudicate.current_case(demo_ctx, "en")
    assert pair is not None and "20" in count and "Nurse" in card or "Dr." in card
    out = adjudicate.decide(demo_ctx, "Prof. Chen (陈教授)", pair, 1, "partial answer", "en")
    assert f"Final label for pair #{pair}" in out[3] and out[1] != pair and "19" in out[2]
    refused = adjudicate.decide(demo_ctx, "Dr. Smith", out[1], 2, "", "zh-CN")
    assert "不是专家" in refused[3]


def test_import_error_is_translated_and_names_the_line(ctx, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "document": "d"}\n{"query": "q2"}\n', encoding="utf-8")
    message, counts = import_.run_import(ctx, "pairs", str(bad), "", "test", 1, False, "zh-CN")
    assert "未导入任何数据" in message and "第 2 行" in message and "document" in message
    assert "bad.jsonl" in message and str(tmp_path) not in message, "the file's name, not the upload's server path"
    with opened(ctx.db_path) as db:
        assert next(db.query("SELECT count(*) AS n FROM pairs"))["n"] == 0


def _upload(tmp_path, name: str, content: str) -> str:
    """A file where Gradio puts an upload: a temporary folder per file, holding it under the name the user chose."""
    path = tmp_path / "gradio" / "cb39d5f1e0a7c2" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8"))
    return str(path)


def _pair_count(ctx) -> int:
    with opened(ctx.db_path) as db:
        return next(db.query("SELECT count(*) AS n FROM pairs"))["n"]


@pytest.mark.parametrize("lang, line", [("en", "line {}"), ("zh-CN", "第 {} 行")])
def test_import_errors_name_the_chosen_file_never_the_upload_path(ctx, tmp_path, monkeypatch, lang, line):
    from types import SimpleNamespace

    from studio import config
    from studio.ingest import files

    def refused(kind, upload, folder="", split="test"):
        message, _ = import_.run_import(ctx, kind, upload, folder, split, 1, False, lang)
        failed = "Nothing was imported." if lang == "en" else "未导入任何数据。"
        assert message.count(failed) == 1 and str(tmp_path) not in message and "gradio" not in message, message
        return message

    # the reader's errors, the upload as a path and as Gradio's file object
    malformed = _upload(tmp_path, "malformed.csv", 'query,document\nq,"never closed\n')
    assert f"malformed.csv, {line.format(2)}" in refused("pairs", malformed)
    assert f"malformed.csv, {line.format(2)}" in refused("pairs", SimpleNamespace(name=malformed))
    doubled = _upload(tmp_path, "doubled.csv", "query,document,query\nq,d,q2\n")
    assert f"doubled.csv, {line.format(1)}" in refused("pairs", doubled)
    # the store's errors: a log document whose id already stands for another text, found at import time
    log = '{"query": "q", "retrieved_docs": [{"doc_id": "r1", "content": "%s", "rank": 1}]}\n'
    first, _ = import_.run_import(ctx, "logs", _upload(tmp_path, "monday.jsonl", log % "one"), "", "test", 1, False,
                                  lang)
    assert "monday.jsonl" in first and _pair_count(ctx) == 1
    message = refused("logs", _upload(tmp_path, "tuesday.jsonl", log % "two"))
    assert f"tuesday.jsonl, {line.format(1)}" in message and "retrieved_docs[0].doc_id" in message
    # a file the server cannot open (its error text names the path)
    def locked(file, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr(files, "open", locked, raising=False)
    assert "locked.csv" in refused("pairs", _upload(tmp_path, "locked.csv", "query,document\nq,d\n"))
    monkeypatch.undo()
    # a BEIR folder's errors name the folder as picked, and the files in it
    monkeypatch.setattr(config, "DATASETS_DIR", tmp_path / "datasets")
    mini = tmp_path / "datasets" / "mini"
    (mini / "qrels").mkdir(parents=True)
    (mini / "corpus.jsonl").write_text('{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": "b\\u0000"}\n')
    (mini / "queries.jsonl").write_text('{"_id": "q1", "text": "q"}\n')
    (mini / "qrels" / "test.tsv").write_text("q1\td1\t1\n")
    assert f"mini/corpus.jsonl, {line.format(2)}" in refused("beir", None, "mini")
    assert "mini/qrels/dev.tsv" in refused("beir", None, "mini", split="dev")
    assert "scifact" in refused("beir", None, "scifact")
    assert _pair_count(ctx) == 1, "nothing was written"


def test_demo_button_hides_the_welcome_and_fills_the_project(ctx):
    message, counts, welcome, team = import_.run_demo(ctx, "en")
    assert "Demo project loaded" in message and welcome["visible"] is False
    assert len(team) == 4


def test_team_role_change(ctx):
    message, team = import_.add_person(ctx, "Dr. Wu", "expert", "en")
    assert "Dr. Wu is now: Expert" in message and list(team.iloc[0]) == ["Dr. Wu", "Expert", 0]
    message, team = import_.add_person(ctx, "Dr. Wu", "admin", "zh-CN")
    assert "管理员" in message and len(team) == 1


def _signed_in(ctx, name: str, role: str):
    """`ctx` with sign-in on and `name` on the team as `role`; returns the request such a person sends."""
    from types import SimpleNamespace

    from studio.actions import Actor, team

    team.add_person(ctx.project, Actor.local("setup"), name, role)
    ctx.auth = True
    return SimpleNamespace(username=name)


def test_beir_folders_are_names_in_datasets_or_the_demo(ctx, tmp_path, monkeypatch):
    from studio import config

    monkeypatch.setattr(config, "DATASETS_DIR", tmp_path / "datasets")
    welcome, counts, team, folders, *_ = import_.refresh(ctx, "en")
    assert welcome["visible"] is True and folders["choices"] == ["demo"]
    assert not (tmp_path / "datasets").exists(), "the list creates no folder"
    message, counts = import_.run_import(ctx, "beir", None, "demo", "test", 1, False, "en")
    assert "demo: 180 new pairs" in message and "180" in counts
    with opened(ctx.db_path) as db:
        assert next(db.query("SELECT count(*) AS n FROM pairs WHERE in_queue = 0"))["n"] == 180


@pytest.mark.parametrize("typed", ["/tmp/scifact", "~/scifact", "../scifact"])
def test_the_beir_folder_refuses_a_path_outside_datasets(ctx, tmp_path, monkeypatch, typed):
    from studio import config

    monkeypatch.setattr(config, "DATASETS_DIR", tmp_path / "datasets")
    message, _ = import_.run_import(ctx, "beir", None, typed, "test", 1, False, "en")
    assert "Nothing was imported" in message and "must be a name inside" in message and "BEIR folder" in message
    with opened(ctx.db_path) as db:
        assert next(db.query("SELECT count(*) AS n FROM documents"))["n"] == 0


def test_import_tab_refuses_an_annotator_and_its_refresh_is_blank(ctx, tmp_path):
    request = _signed_in(ctx, "alice", "annotator")
    bad = tmp_path / "pairs.csv"
    bad.write_text("query,document\nq,d\n", encoding="utf-8")
    message, counts = import_.run_import(ctx, "pairs", str(bad), "", "test", 1, False, "en", request)
    assert "may not do this" in message and counts == ""
    message, *_ = import_.run_demo(ctx, "en", request)
    assert "may not do this" in message
    welcome, counts, team, folders, *_ = import_.refresh(ctx, "en", request)
    assert welcome["visible"] is False and counts == "" and len(team) == 0 and folders["choices"] == []
    with opened(ctx.db_path) as db:
        assert next(db.query("SELECT count(*) AS n FROM pairs"))["n"] == 0
        assert [r["actor"] for r in db.query("SELECT actor FROM audit_log WHERE action = 'refused'")][:2] == [
            "alice", "alice"]


def test_data_tab_reports_quality_and_exports(demo_ctx, tmp_path, monkeypatch):
    from studio import config

    monkeypatch.setattr(config, "EXPORTS_DIR", tmp_path / "exports")
    card, lengths, similarity, report_file = data.run_quality(demo_ctx, "default", "zh-CN", progress=lambda *a, **k: None)
    assert "训练样本" in card and "少于 1000" in card, "the few-examples warning is shown in Chinese"
    assert isinstance(lengths, go.Figure) and Path(report_file).exists()
    assert Path(report_file).parent == tmp_path / "exports"
    out = tmp_path / "exports" / "run" / "train.jsonl"
    message, files, preview, _ = data.run_export(demo_ctx, "run/train.jsonl", 0.1, "bm25", 5, "drop", 7, "none", "",
                                                 "default", "en", progress=lambda *a, **k: None)
    assert "training lines" in message and out.exists() and len(files) == 4
    assert set(preview[0]) == {"query", "pos", "neg"} and len(preview[0]["neg"]) == 5


@pytest.mark.parametrize("typed", ["/tmp/x/train.jsonl", "../x.jsonl"])
def test_data_tab_refuses_an_output_outside_exports(demo_ctx, tmp_path, monkeypatch, typed):
    from studio import config

    monkeypatch.setattr(config, "EXPORTS_DIR", tmp_path / "exports")
    before = set(tmp_path.rglob("*"))
    message, files, preview, _ = data.run_export(demo_ctx, typed, 0.1, "none", 5, "drop", 7, "none", "", "default",
                                                 "en", progress=lambda *a, **k: None)
    assert "must be a name inside exports/" in message and files is None and preview is None
    assert str(tmp_path) not in message, "the page never sees a server path"
    assert set(tmp_path.rglob("*")) == before and not Path("/tmp/x/train.jsonl").exists(), "nothing written"
    with opened(demo_ctx.db_path) as db:
        assert list(db.query("SELECT * FROM audit_log WHERE action = 'export'")) == []


def test_data_tab_empty_model_box_means_the_starred_model(demo_ctx, tmp_path, monkeypatch):
    from studio import config
    from studio.models.registry import set_default

    monkeypatch.setattr(config, "EXPORTS_DIR", tmp_path / "exports")
    monkeypatch.setattr(config, "MODELS_DIR", tmp_path / "models")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mini").symlink_to(config.embedded_model_path(), target_is_directory=True)
    set_default("mini")
    assert "mini" in data.refresh(demo_ctx, "en")["placeholder"]
    _, _, _, report_file = data.run_quality(demo_ctx, "", "en", progress=lambda *a, **k: None)
    assert json.loads(Path(report_file).read_text(encoding="utf-8"))["lengths"]["model"].endswith("/models/mini")


def test_data_tab_refuses_an_expert_and_its_refresh_is_blank(demo_ctx, tmp_path, monkeypatch):
    from studio import config

    monkeypatch.setattr(config, "EXPORTS_DIR", tmp_path / "exports")
    request = _signed_in(demo_ctx, "Prof. Chen (陈教授)", "expert")
    card, *_ = data.run_quality(demo_ctx, "", "en", request=request)
    message, files, *_ = data.run_export(demo_ctx, "", 0.1, "none", 5, "drop", 7, "none", "", "", "en", request=request)
    assert "may not do this" in card and "may not do this" in message and files is None
    assert data.refresh(demo_ctx, "en", request)["placeholder"] == ""
    assert not (tmp_path / "exports").exists()


def test_data_tab_explains_an_empty_project(ctx):
    card, *_ = data.run_quality(ctx, "default", "en", progress=lambda *a, **k: None)
    assert "no gold labels yet" in card


from types import SimpleNamespace  # noqa: E402

LOCAL = SimpleNamespace(username=None)  # a request without sign-in: the local admin


def test_train_tab_starts_a_job_and_shows_its_curves(train_project, tmp_path):
    import time as _time

    from studio.ui.tabs import train

    ctx = train_project
    form = ["reranker", "tiny", "run/train.jsonl", "full", "tiny-rr", 1, 4, 4, "1e-3", 2, 16, 32, 0.02, 0.1, "auto",
            False, 16, 32, 0.05]
    command = train.preview(ctx, LOCAL, *form)
    assert "--task reranker" in command and "--max-steps 4" in command and "--base tiny" in command
    assert "--train exports/run/train.jsonl" in command and str(tmp_path) not in command, "no server path"
    message, job, card, loss_plot, lr_plot, log, table, timer = train.start(ctx, LOCAL, "en", None, *form)
    assert "Job #1 created" in message and job["value"] == 1
    deadline = _time.time() + 120
    while _time.time() < deadline:
        card, loss_plot, lr_plot, log, table, timer = train.poll(ctx, LOCAL, 1, "zh-CN")
        if "已完成" in card:
            break
        _time.sleep(1)
    assert "已完成" in card and (tmp_path / "models" / "tiny-rr" / "config.json").exists()
    assert len(loss_plot.data[0].x) == 4, "one point per logged step"
    assert list(table.iloc[0])[:4] == [1, "tiny-rr", "重排序模型（交叉编码器）", "已完成"]
    # The job picker names the job only: a status in it went stale ("running" beside a finished job's card).
    bases, files, jobs_picker, _ = train.refresh(ctx, LOCAL, "en", None)
    assert jobs_picker["choices"] == [("#1 · tiny-rr", 1)] and jobs_picker["value"] == 1
    assert files["choices"] == ["run/train.jsonl"] and "tiny" in bases["choices"] and "tiny-rr" in bases["choices"]
    # A refused form (batch size 0) says why and leaves the selected job's card and curves in place.
    refused = [*form[:4], "tiny-rr-2", 1, 4, 0, *form[8:]]
    message, job, card, loss_plot, *_ = train.start(ctx, LOCAL, "zh-CN", 1, *refused)
    assert "rs-error" in message and "已完成" in card and len(loss_plot.data[0].x) == 4
    assert "每步查询数" in message and "batch_size" not in message, "the field as the form labels it"
    message, *_ = train.start(ctx, LOCAL, "en", 1, *[*refused[:2], "", *refused[3:7], 4, *refused[8:]])
    assert "choose a training file" in message


def test_train_tab_takes_names_from_the_page_never_server_paths(ctx, tmp_path, monkeypatch):
    from studio import config as cfg
    from studio.ui.tabs import train

    for name, folder in (("JOBS_DIR", "jobs"), ("MODELS_DIR", "models"), ("EXPORTS_DIR", "exports")):
        monkeypatch.setattr(cfg, name, tmp_path / folder)
    line = json.dumps({"query": "q", "pos": ["p"], "neg": ["n"]}) + "\n"
    (tmp_path / "x.jsonl").write_text(line, encoding="utf-8")  # a real file, just outside exports/
    form = ["embedder", "default", "", "full", "m", 1, 2, 4, "", 2, 16, 32, 0.05, 0.1, "auto", False, 16, 32, 0.05]
    for typed in ("/etc/passwd", "../x.jsonl", str(tmp_path / "x.jsonl")):
        message, job, *_ = train.start(ctx, LOCAL, "en", None, *[*form[:2], typed, *form[3:]])
        assert "rs-error" in message and "Training data" in message and "must be a name inside" in message, typed
        assert job == {"__type__": "update"}
    for typed in ("/tmp", "../models/x", "~/model", "./model", "a/b/c"):
        message, *_ = train.start(ctx, LOCAL, "en", None, *[form[0], typed, "x.jsonl", *form[3:]])
        assert "rs-error" in message and "Base model" in message and "must be a name inside" in message, typed
    assert train.refresh(ctx, LOCAL, "en", None)[2]["choices"] == [], "no job was recorded"
    assert not (tmp_path / "jobs").exists()


def test_train_tab_shows_nothing_to_someone_who_is_not_an_admin(ctx, tmp_path, monkeypatch):
    from studio.store import opened
    from studio.store.annotators import ensure_annotator
    from studio.ui.tabs import train

    monkeypatch.setattr(ctx, "auth", True)
    with opened(ctx.db_path) as db:
        ensure_annotator(db, "eve", "expert")
    eve = SimpleNamespace(username="eve")
    card, loss_plot, lr_plot, log, table, timer = train.poll(ctx, eve, 1, "en")
    assert (card, loss_plot, lr_plot, log) == ("", None, None, "") and table.empty and not timer.active
    bases, files, jobs_picker, table = train.refresh(ctx, eve, "en", None)
    assert bases["choices"] == files["choices"] == jobs_picker["choices"] == [] and table.empty
    message, *_ = train.start(ctx, eve, "en", None, "embedder", "default", "x.jsonl", "full", "m", 1, 2, 4, "", 2,
                              16, 32, 0.05, 0.1, "auto", False, 16, 32, 0.05)
    assert "rs-error" in message and "needs the Admin role" in message
    message, *_ = train.cancel(ctx, eve, 1, "en")
    assert "needs the Admin role" in message
    with opened(ctx.db_path) as db:
        refused = list(db.query("SELECT actor FROM audit_log WHERE action = 'refused'"))
        assert refused and {r["actor"] for r in refused} == {"eve"}
        assert list(db.query("SELECT id FROM jobs")) == []


def test_train_tab_warns_when_a_reranker_would_start_without_a_reranker_head(ctx, tmp_path, monkeypatch):
    from studio import config as cfg
    from studio.ui.tabs import train
    from tests.tiny_models import build_tiny_reranker

    monkeypatch.setattr(cfg, "MODELS_DIR", tmp_path / "models")

    def base_advice(task, base, lang):
        return train.advice(ctx, LOCAL, task, base, None, 4, 1, -1, lang)[0]

    warning = base_advice("reranker", "default", "en")  # all-MiniLM-L6-v2 is an embedder
    assert "rs-warn" in warning and "not a cross-encoder" in warning and "bge-reranker-v2-m3" in warning
    assert "不是交叉编码器" in base_advice("reranker", "default", "zh-CN")
    assert base_advice("embedder", "default", "en") == ""
    build_tiny_reranker(tmp_path / "models" / "tiny")
    assert base_advice("reranker", "tiny", "en") == ""  # a cross-encoder
    assert base_advice("reranker", "BAAI/bge-reranker-v2-m3", "en") == ""  # not on this machine: no guess


def test_train_tab_warns_when_the_data_gives_too_few_steps(ctx, tmp_path, monkeypatch):
    from studio import config as cfg
    from studio.ui.tabs import train

    monkeypatch.setattr(cfg, "EXPORTS_DIR", tmp_path)
    data = tmp_path / "train.jsonl"
    data.write_text("".join('{"query": "q%d", "pos": ["p"], "neg": ["n"]}\n' % i for i in range(18)), encoding="utf-8")

    def steps_advice(name, batch, epochs, max_steps, lang, request=LOCAL):
        return train.advice(ctx, request, "embedder", "default", name, batch, epochs, max_steps, lang)[0]

    warning = steps_advice("train.jsonl", 32, 1, -1, "en")
    assert "Only 1 training step(s) (18 training queries at batch size 32 × 1 epoch(s))" in warning
    assert "约 3 个训练步" in steps_advice("train.jsonl", 32, 3, -1, "zh-CN")
    assert steps_advice("train.jsonl", 1, 2, -1, "en") == "", "36 steps are enough"
    assert steps_advice("train.jsonl", 32, 1, 50, "en") == "", "max steps decide when set"
    assert steps_advice("missing.jsonl", 32, 1, -1, "en") == ""
    assert steps_advice(str(data), 32, 1, -1, "en") == "", "a server path from the page is not read"
    from studio.store.annotators import ensure_annotator

    monkeypatch.setattr(ctx, "auth", True)
    with opened(ctx.db_path) as db:
        ensure_annotator(db, "eve", "expert")
    assert steps_advice("train.jsonl", 32, 1, -1, "en", SimpleNamespace(username="eve")) == "", \
        "only an admin learns how many lines a file under exports/ has"


def _train_form(**changes) -> list:
    """The Train form's 23 values (FORM order) for a 4-step tiny reranker job, with `changes` by field name."""
    from studio.ui.tabs import train

    values = {"task": "reranker", "base": "tiny", "train": "run/train.jsonl", "method": "full", "name": "tiny-rr",
              "epochs": 1, "max_steps": 4, "batch_size": 4, "lr": "1e-3", "group_size": 2, "query_max_len": 16,
              "passage_max_len": 32, "temperature": 0.02, "warmup_ratio": 0.1, "precision": "auto",
              "gradient_checkpointing": False, "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.05,
              "lora_targets": "query,key,value", "freeze_embeddings": False, "freeze_layers": 0, "save_every": 10.0}
    values.update(changes)
    return [values[name] for name in train.FORM]


@pytest.fixture
def train_project(ctx, tmp_path, monkeypatch):
    """ctx with jobs/, models/ (a tiny reranker called 'tiny') and exports/run/train.jsonl in tmp_path."""
    from studio import config as cfg
    from tests.tiny_models import build_tiny_reranker

    for name, folder in (("JOBS_DIR", "jobs"), ("MODELS_DIR", "models"), ("EXPORTS_DIR", "exports")):
        monkeypatch.setattr(cfg, name, tmp_path / folder)
    build_tiny_reranker(tmp_path / "models" / "tiny")
    data = tmp_path / "exports" / "run" / "train.jsonl"
    data.parent.mkdir(parents=True)
    data.write_text("".join(json.dumps({"query": f"q{i}", "pos": [f"answer {i}"], "neg": [f"other {i}", "noise"]})
                            + "\n" for i in range(4)), encoding="utf-8")
    return ctx


@pytest.mark.parametrize("lang, field, value, expected", [
    ("en", "lr", "fast", "Learning rate is not a number: 'fast'"),
    ("zh-CN", "lr", "fast", "学习率 不是数字：“fast”"),
    ("en", "epochs", None, "Epochs is empty"),
    ("en", "batch_size", 2.5, "Queries per step must be a whole number, got '2.5'"),
    ("en", "max_steps", "many", "Max steps (-1 = by epochs) is not a number: 'many'"),
    ("en", "warmup_ratio", 1.5, "Warm-up ratio must be a number from 0 up to 1, got 1.5"),
    ("en", "lora_dropout", "0,1", "LoRA dropout is not a number: '0,1'"),
    ("en", "lora_alpha", 0, "LoRA alpha must be a number above 0, got 0"),
    ("en", "freeze_layers", -2, "Freeze the lowest N layers must be a whole number of 0 or more, got -2"),
    ("en", "save_every", "soon", "Checkpoint every N minutes is not a number: 'soon'"),
    ("en", "temperature", "nan", "Temperature is not a number: 'nan'"),
    ("en", "name", "  ", "New model name is empty"),
])
def test_train_tab_names_the_form_field_it_cannot_use(train_project, lang, field, value, expected):
    """A learning rate of "fast" used to read "Something went wrong: could not convert string to float"."""
    from studio.ui.tabs import train

    import html

    message, job, *_ = train.start(train_project, LOCAL, lang, None, *_train_form(**{field: value}))
    text = html.unescape(message)
    assert "rs-error" in message and expected in text and "Something went wrong" not in text, message
    assert job == {"__type__": "update"} and train.refresh(train_project, LOCAL, lang, None)[2]["choices"] == []


def test_train_tab_refuses_an_unwritable_models_folder_before_recording_a_job(train_project, tmp_path,
                                                                              monkeypatch):
    from studio import config as cfg
    from studio.ui.tabs import train

    (tmp_path / "blocked").write_text("a file where the models folder would be")
    monkeypatch.setattr(cfg, "MODELS_DIR", tmp_path / "blocked" / "models")
    message, job, *_ = train.start(train_project, LOCAL, "en", None,
                                   *_train_form(task="embedder", base="default"))
    assert f"cannot write the model into {tmp_path / 'blocked' / 'models'}" in message, message
    assert train.refresh(train_project, LOCAL, "en", None)[2]["choices"] == []
    assert not (tmp_path / "jobs").exists()


def test_train_tab_offers_the_few_steps_fix_in_one_click(ctx, tmp_path, monkeypatch):
    from studio import config as cfg
    from studio.ui.tabs import train

    monkeypatch.setattr(cfg, "EXPORTS_DIR", tmp_path)
    (tmp_path / "train.jsonl").write_text("".join('{"query": "q%d", "pos": ["p"], "neg": ["n"]}\n' % i
                                                  for i in range(40)), encoding="utf-8")

    def advice(batch, epochs, max_steps, lang="en"):
        return train.advice(ctx, LOCAL, "embedder", "default", "train.jsonl", batch, epochs, max_steps, lang)

    def apply_fix(batch, epochs, max_steps):
        return train.apply_fix(ctx, LOCAL, "embedder", "default", "train.jsonl", batch, epochs, max_steps)

    warning, button = advice(16, 1, -1)  # 3 batches an epoch: 7 epochs reach 20 steps
    assert "Only 3 training step(s)" in warning
    assert button["visible"] and button["value"] == "Set epochs to 7 (21 steps)"
    assert advice(16, 1, -1, "zh-CN")[1]["value"] == "把训练轮数设为 7（21 步）"
    epochs, max_steps = apply_fix(16, 1, -1)
    assert epochs["value"] == 7 and "value" not in max_steps
    assert advice(16, 7, -1) == ("", {"__type__": "update", "visible": False}), "the warning is gone once applied"
    assert advice(16, 1, 5)[1]["value"] == "Set max steps to 20 (20 steps)"
    assert apply_fix(16, 1, 5)[1]["value"] == 20
    assert advice(None, 1, -1)[1]["visible"] is False, "half-typed form: no button"


def test_train_tab_says_what_happens_before_the_first_step_and_where_resume_continues():
    from studio.actions.jobs import JobSnapshot
    from studio.training.jobs import WORKER_DIED
    from studio.ui import charts
    from studio.ui.tabs import train

    row = {"id": 1, "status": "running", "error": None, "output_dir": "/m/x", "name": "x"}
    loading = JobSnapshot(row, [], "", phase="loading_model", base="all-MiniLM-L6-v2")
    card = train.status_card(loading, "en")
    assert "loading the model…" in card and "0 / ?" not in card and "all-MiniLM-L6-v2" in card
    assert ".venv" not in card
    assert "正在加载模型" in train.status_card(loading, "zh-CN")
    figure = charts.loss_curves([], "en", waiting=train.waiting_text(loading, "en"))
    assert [a.text for a in figure.layout.annotations] == ["loading the model…"]
    assert figure.layout.xaxis.visible is False, "no empty axes"
    tokenizing = JobSnapshot(row, [], "", phase="reading_data")
    assert "tokenizing" in train.status_card(tokenizing, "en")

    metrics = [{"step": s, "total_steps": 4, "loss": 0.123456 / s, "lr": 1e-4} for s in range(1, 5)]
    running = JobSnapshot(row, metrics, "", phase="training")
    card = train.status_card(running, "en")
    assert "4 / 4" in card and "0.0309" in card and "0.030864" not in card, "losses to 4 digits"
    for figure in (charts.loss_curves(metrics, "en"), charts.lr_curve(metrics, "en")):
        assert figure.layout.xaxis.dtick == 1 and figure.layout.xaxis.tickformat == "d", "whole steps only"
    long_run = [{"step": s, "loss": 1.0} for s in range(1, 401)]
    assert charts.loss_curves(long_run, "en").layout.xaxis.dtick == 50

    stopping = JobSnapshot(row, metrics, "", phase="stopping", stopping=True)
    assert "stopping…" in train.status_card(stopping, "en") and "finishes it, saves a checkpoint" in \
        train.status_card(stopping, "en")
    ended = {**row, "status": "cancelled"}
    assert "Resume continues from step 40" in train.status_card(JobSnapshot(ended, metrics, "", checkpoint_step=40), "en")
    fresh = train.status_card(JobSnapshot(ended, metrics, "", checkpoint_step=None), "en")
    assert "No checkpoint yet: Resume starts again from step 1" in fresh and "last checkpoint is kept" not in fresh
    died = train.status_card(JobSnapshot({**row, "status": "failed", "error": WORKER_DIED}, metrics, "",
                                         checkpoint_step=None), "zh-CN")
    assert "训练进程未完成就停止了" in died and "从第 1 步重新开始" in died


def test_train_tab_cancel_returns_at_once_and_the_timer_shows_the_job_stop(train_project, monkeypatch):
    """The worker's current step takes seconds (minutes on a loaded CPU): Cancel asks and returns, the timer
    follows the job to its end, and the messages say where Resume continues, as the checkpoints on disk have it."""
    import time as _time

    from studio import config as cfg
    from studio.ui.tabs import train
    from tests.test_jobs import fake_worker

    fake_worker(monkeypatch, step_seconds=3)
    message, *_ = train.start(train_project, LOCAL, "en", None, *_train_form())
    assert "Job #1 created" in message
    phase = train_project.db_path.parent / "jobs" / "00001-tiny-rr" / "phase"
    deadline = _time.time() + 30
    while not (phase.exists() and "training" in phase.read_text()) and _time.time() < deadline:
        _time.sleep(0.1)  # the worker is up and in its loop
    began = _time.time()
    message, card, loss_plot, lr_plot, log, table, timer = train.cancel(train_project, LOCAL, 1, "en")
    assert _time.time() - began < 2, "the page is not held while the step finishes"
    assert "Job #1 is stopping after the current step" in message and "stopping…" in card and timer.active
    while "cancelled" not in card and _time.time() < deadline + 30:
        card, *_, timer = train.poll(train_project, LOCAL, 1, "en")
        _time.sleep(0.5)
    assert "Resume continues from step 7" in card and not timer.active
    monkeypatch.setattr(cfg, "MAX_RUNNING_JOBS", 0)  # resume queues it; nothing starts
    message, *_ = train.resume(train_project, LOCAL, 1, "zh-CN")
    assert "任务 #1 从第 7 步接着训练" in message
    message, *_ = train.cancel(train_project, LOCAL, 1, "en")
    assert "Job #1 cancelled. Resume continues from step 7" in message


def _as(ctx, name: str, role: str):
    """`ctx` with sign-in on and `name` on the team as `role`; the request such a person sends."""
    from types import SimpleNamespace

    from studio.actions import Actor, team

    team.add_person(ctx.project, Actor.local("setup"), name, role)
    ctx.auth = True
    return SimpleNamespace(username=name)


@pytest.fixture
def exports(tmp_path, monkeypatch):
    from studio import config

    monkeypatch.setattr(config, "EXPORTS_DIR", tmp_path / "exports")
    return tmp_path / "exports"


def no_progress(*args, **kwargs):
    return None


def test_evaluate_tab_evaluates_systems_beside_bm25_on_the_demo_beir_folder(ctx, exports):
    from studio.ui.tabs import evaluate

    summary, bars, table, delta, errors, raw, html_file, csv_file, queries_file, picked, kept, holes = evaluate.run(
        ctx, ["default"], "beir", "demo", "test", None, "1,10", "zh-CN", progress=no_progress)
    assert kept["report"] is raw and set(kept["runs"]) == set(raw["systems"]), "the server keeps what it measured"
    assert "judged@10（已评判比例）" in errors.columns and not holes["visible"], "no queue button for a BEIR folder"
    assert raw["systems"] == ["default", "bm25", "default+bm25"], "BM25 and the model fused with it, always"
    assert "30 个查询" in summary and "在这 30 个查询上最好的系统：" in summary and "每个查询" in summary
    assert raw["recommended"] in raw["systems"]
    value = {m["model"]: m["metrics"]["ndcg@10"] for m in raw["models"]}
    assert raw["recommended"] == max(value, key=value.get)
    assert isinstance(bars, go.Figure) and isinstance(delta, go.Figure)
    assert "系统 vs BM25" in set(table["对比类型"])
    assert list(errors["模型"]) == raw["systems"] and (errors["毫秒/查询"] > 0).all()
    if value["default"] < value["bm25"]:
        assert "default 不如 BM25" in summary, "a model that loses to BM25 says so"
    assert html_file["interactive"] and "评估报告" in Path(html_file["value"]).read_text(encoding="utf-8")
    assert Path(html_file["value"]).parent.parent == exports, "the downloads are written under exports/"
    assert Path(csv_file["value"]).name == "metrics.csv" and Path(queries_file["value"]).exists()
    assert len(picked["choices"]) == 30


def test_evaluate_tab_hides_the_comparison_until_there_is_one(ctx, exports):
    from studio.ui.tabs import evaluate

    results, delta_shown, table_shown = evaluate._show_results({"models": [{}], "comparisons": []})
    assert results["visible"] and not delta_shown["visible"] and not table_shown["visible"]
    assert all(part["visible"] is True for part in evaluate._show_results({"models": [{}], "comparisons": [{}]}))
    assert all(part["visible"] is False for part in evaluate._show_results(None))


def test_evaluate_tab_leaves_out_training_queries_and_says_when_too_few_are_left(ctx, exports):
    from studio.config import DEMO_DIR
    from studio.ui.tabs import evaluate

    queries = [json.loads(line)["text"] for line in (DEMO_DIR / "queries.jsonl").read_text("utf-8").splitlines()]
    exports.mkdir()
    (exports / "train.jsonl").write_text("".join(json.dumps({"query": q, "pos": ["x"], "neg": ["y"]},
                                                            ensure_ascii=False) + "\n" for q in queries[:27]),
                                         encoding="utf-8")
    summary, bars, table, delta, errors, raw, *_ = evaluate.run(
        ctx, ["default", "default"], "beir", "demo", "test", "train.jsonl", "1,5,10,20", "en", progress=no_progress)
    assert raw["queries"] == 3 and raw["evalset"] == "demo/test without the queries of train.jsonl"
    assert "demo/test without the queries of train.jsonl: 3 queries" in summary
    assert "Only 3 queries: too few for a significance test" in summary
    assert list(table.columns) == ["comparison", "baseline model", "model", "metric", "baseline value", "model value",
                                   "Δ (relative)", "p (Holm)", "verdict", "queries better / equal / worse"]
    assert sum(int(trace.name.split("(")[1].rstrip(")")) for trace in delta.data) == 3
    summary, *_ = evaluate.run(ctx, ["default"], "db", "", "test", None, "10", "zh-CN", progress=no_progress)
    assert "没有剩余的" in summary


def test_evaluate_tab_explains_missing_gold_labels(ctx):
    from studio.ui.tabs import evaluate

    summary, *rest = evaluate.run(ctx, ["default"], "db", "", "test", None, "10", "en", progress=no_progress)
    assert "no query with a relevant gold label" in summary and rest[:5] == [None] * 5
    assert not any(download["interactive"] for download in rest[5:8])


def test_evaluate_tab_reports_a_reranker_step_that_makes_ranking_worse(ctx, tmp_path, exports, monkeypatch):
    from studio import config
    from studio.ui.tabs import evaluate
    from tests.tiny_models import build_tiny_reranker

    monkeypatch.setattr(config, "MODELS_DIR", tmp_path / "models")
    build_tiny_reranker(tmp_path / "models" / "rr")
    summary, bars, table, delta, errors, raw, html_file, *_ = evaluate.run(
        ctx, ["default"], "beir", "demo", "test", None, "1,10", "en", "dense", "rr", 10, progress=no_progress)
    assert [m["model"] for m in raw["models"]] == ["default", "default>rr", "bm25", "default+bm25"], \
        "dense alone is reported too"
    assert "The reranker makes ranking worse: ndcg@10 drops by" in summary and "rs-error" in summary
    step = table[table["comparison"] == "reranker step"]
    assert len(step) and step["model"].str.startswith("⚠").all() and "▼ worse" in set(step["verdict"])
    assert "The reranker makes ranking worse" in Path(html_file["value"]).read_text(encoding="utf-8")


def test_evaluate_tab_mode_needs_an_m3_model(ctx):
    from studio.ui.tabs import evaluate

    summary, *_ = evaluate.run(ctx, ["default"], "beir", "demo", "test", None, "10", "zh-CN", "colbert",
                               progress=no_progress)
    assert "不是 BGE-M3 模型" in summary


def test_evaluate_tab_draws_the_embedding_map_into_the_report(ctx, exports):
    from studio.ui.tabs import evaluate

    form = (["default"], "beir", "demo", "test", None)
    *_, raw, _, _, _, picked, _, _ = evaluate.run(ctx, *form, "10", "en", progress=no_progress)
    query = picked["choices"][0][1]
    figure, status, html_file = evaluate.draw_map(ctx, *form, [query], raw, "zh-CN")
    assert isinstance(figure, go.Figure) and "分布图" in status
    stars = next(trace for trace in figure.data if trace.name == "查询")
    assert len(stars.x) == 1, "only the picked query is drawn"
    without = Path(evaluate._reports(ctx, None, raw, "zh-CN")[0]["value"]).read_text(encoding="utf-8")
    with_map = Path(html_file["value"]).read_text(encoding="utf-8")
    assert with_map.count('class="plotly-graph-div') == without.count('class="plotly-graph-div') + 1
    _, status, html_file = evaluate.draw_map(ctx, *form, [], None, "en")
    assert "Run an evaluation first" in status


def test_evaluate_tab_refuses_server_paths_from_the_page(ctx, exports):
    from studio.config import DEMO_DIR
    from studio.ui.tabs import evaluate

    for form in ((["default"], "beir", str(DEMO_DIR), "test", None), (["default"], "beir", "../assets/demo", "test", None),
                 ([str(DEMO_DIR)], "beir", "demo", "test", None), (["default"], "db", "", "test", "/etc/passwd")):
        summary, *rest = evaluate.run(ctx, *form, "10", "en", progress=no_progress)
        assert "must be a name inside" in summary and rest[4] is None, form
        _, status, _ = evaluate.draw_map(ctx, *form, [], None, "en")
        assert "must be a name inside" in status, form
    summary, *_ = evaluate.run(ctx, ["default"], "beir", "demo", "test", None, "10", "en", "dense", "/tmp/rr",
                               progress=no_progress)
    assert "Reranker (optional): &#x27;/tmp/rr&#x27; must be a name inside" in summary
    assert not exports.exists(), "nothing ran, nothing was written"


def test_evaluate_tab_refuses_an_annotator_and_its_refresh_is_blank(ctx, exports):
    from studio.ui.tabs import evaluate

    alice = _as(ctx, "alice", "annotator")
    summary, *rest = evaluate.run(ctx, ["default"], "beir", "demo", "test", None, "10", "en", request=alice,
                                  progress=no_progress)
    assert "needs the Expert role" in summary and rest[4] is None
    models, exclude, reranker, folder, runs = evaluate.refresh(ctx, None, None, None, "en", alice)
    assert models["choices"] == [] and exclude["choices"] == [] and folder["choices"] == [] and runs["choices"] == []
    eve = _as(ctx, "eve", "expert")
    models, exclude, reranker, folder, _ = evaluate.refresh(ctx, None, None, None, "en", eve)
    assert models["value"] == ["all-MiniLM-L6-v2"] and folder["value"] == "demo" and "demo" in folder["choices"]


def test_compare_shows_two_models_side_by_side_with_moves_badges_and_queueing(demo_ctx, tmp_path, monkeypatch):
    import torch
    from sentence_transformers import SentenceTransformer

    from studio import config
    from studio.config import embedded_model_path
    from studio.ui.tabs import compare

    other = SentenceTransformer(str(embedded_model_path()), device="cpu")
    torch.manual_seed(0)
    with torch.no_grad():
        for p in other[0].auto_model.encoder.layer[-1].parameters():
            p.add_(torch.randn_like(p) * 0.05)  # a different model: what fine-tuning does, in miniature
    other.save(str(tmp_path / "models" / "other"))
    monkeypatch.setattr(config, "MODELS_DIR", tmp_path / "models")

    from studio.store.lookup import example_queries

    with opened(demo_ctx.db_path) as db:
        query = example_queries(db)[0]  # the first example the tab offers
    left, right, pick, status = compare.run_search(demo_ctx, query, "default", "other", 10, "zh-CN")
    assert left.count('class="rs-hit"') == 10 and right.count('class="rs-hit"') == 10
    assert "rs-badge" in left, "gold labels of the demo query show as badges"
    assert left != right and ("▲" in left or "▼" in left or "rs-new" in left), "the two models rank differently"
    assert "毫秒" in left and "<mark>" in left
    doc = pick["choices"][0][1]
    assert "已加入标注队列" in compare.send_to_queue(demo_ctx, "糖尿病患者可以吃水果吗？", doc, "zh-CN")
    assert "already in the project" in compare.send_to_queue(demo_ctx, "糖尿病患者可以吃水果吗？", doc, "en")


def test_compare_side_followed_by_a_reranker(demo_ctx, tmp_path, monkeypatch):
    from studio import config
    from studio.retrieval import rerank
    from studio.store.lookup import example_queries
    from studio.ui.tabs import compare
    from tests.tiny_models import build_tiny_reranker

    monkeypatch.setattr(config, "MODELS_DIR", tmp_path / "models")
    reranker = str(build_tiny_reranker(tmp_path / "models" / "rr"))
    with opened(demo_ctx.db_path) as db:
        query = example_queries(db)[0]
    left, right, *_ = compare.run_search(demo_ctx, query, "default", "default", 5, "en", None, "rr", 20)
    assert left.count('class="rs-hit"') == 5 and right.count('class="rs-hit"') == 5
    assert "default → rr" in right and "→" not in left.split("rs-latency")[0]
    assert left != right, "the reranker reorders the dense candidates"
    assert reranker in rerank._rerankers, "the loaded reranker stays in memory for the next query"


def test_compare_asks_for_a_query(ctx):
    from studio.ui.tabs import compare

    left, *_ = compare.run_search(ctx, "  ", "default", "default", 10, "en")
    assert "Type a query" in left


def test_compare_refuses_server_paths_and_roles_below_its_own(demo_ctx):
    from studio.config import embedded_model_path
    from studio.retrieval.playground import KEYWORD_TRAP
    from studio.ui.tabs import compare

    left, right, pick, _ = compare.run_search(demo_ctx, "糖尿病", str(embedded_model_path()), "default", 5, "en")
    assert "Left: model: &#x27;/" in left and "must be a name inside" in left and pick["choices"] == []
    left, *_ = compare.run_search(demo_ctx, "糖尿病", "default", "default", 5, "en", None, "../models/rr")
    assert "must be a name inside" in left
    table, note = compare.run_scoring(demo_ctx, KEYWORD_TRAP[0], "\n".join(KEYWORD_TRAP[1]), ["default"], "/tmp/rr",
                                      "en")
    assert "must be a name inside" in note and table["visible"] is False
    eve = _as(demo_ctx, "eve", "expert")
    left, right, *_ = compare.run_search(demo_ctx, "糖尿病", "default", "default", 3, "en", request=eve)
    assert left.count('class="rs-hit"') == 3, "an expert searches"
    with opened(demo_ctx.db_path) as db:
        pairs = db["pairs"].count
    assert "needs the Admin role" in compare.send_to_queue(demo_ctx, "a new query", "d001", "en", eve)
    with opened(demo_ctx.db_path) as db:
        assert db["pairs"].count == pairs, "an expert's 'send to queue' adds nothing"
    alice = _as(demo_ctx, "alice", "annotator")
    left, *_ = compare.run_search(demo_ctx, "糖尿病", "default", "default", 3, "en", request=alice)
    assert "needs the Expert role" in left
    assert "needs the Expert role" in compare.run_similarity(demo_ctx, "a", "b", ["default"], "en", alice)[1]
    blank = compare.refresh(demo_ctx, None, None, None, "en", alice)
    assert all(update["choices"] == [] for update in blank), "no models, no example queries"


def test_playground_tables(ctx):
    from studio.retrieval.playground import KEYWORD_TRAP
    from studio.ui.tabs import compare

    shown, note = compare.run_similarity(ctx, "糖尿病的主要并发症有哪些？", "高血糖长期未控可能导致视网膜病变", ["default"],
                                         "zh-CN")
    sims = shown["value"]
    assert list(sims.columns) == ["模型", "余弦相似度"] and sims.iloc[0, 0] == "default"
    assert shown["visible"] is True and note == ""
    shown, note = compare.run_scoring(ctx, KEYWORD_TRAP[0], "\n".join(KEYWORD_TRAP[1]), ["default"], "", "en")
    table = shown["value"]
    assert len(table) == 3 and sorted(v.split(" · ")[0] for v in table["default"]) == ["#1", "#2", "#3"]


def test_playground_says_what_is_missing_instead_of_an_empty_table(ctx):
    """An empty text showed a bare table headed "1 2 3": the table stays hidden and a note names what is missing."""
    from studio.ui.tabs import compare

    shown, note = compare.run_similarity(ctx, "糖尿病", "  ", ["default"], "en")
    assert shown == {"__type__": "update", "value": None, "visible": False}
    assert "Text B" in note and "Text A" not in note and "rs-warn" in note
    shown, note = compare.run_similarity(ctx, "", "", [], "zh-CN")
    assert shown["visible"] is False and "文本 A" in note and "文本 B" in note and "向量模型" in note
    shown, note = compare.run_scoring(ctx, "糖尿病", "\n \n", ["default"], "", "en")
    assert shown["visible"] is False and "Documents" in note and "Query" not in note
    shown, note = compare.run_scoring(ctx, " ", "a document", ["default"], "", "zh-CN")
    assert shown["visible"] is False and "查询" in note


def test_known_problems_read_as_advice_not_as_unexpected_errors(ctx):
    from studio.ui.tabs import compare, evaluate

    left, *_ = compare.run_search(ctx, "糖尿病", "default", "default", 10, "zh-CN")
    assert "语料库为空" in left and "出现错误" not in left
    summary, *_ = evaluate.run(ctx, [], "beir", "", "test", None, "10", "en", progress=no_progress)
    assert "Pick at least one model." in summary and "Something went wrong" not in summary


def test_compare_puts_the_starred_model_on_the_right():
    from studio.ui.tabs import compare

    names = ["all-MiniLM-L6-v2", "alpha", "zeta"]
    assert compare.right_model(None, names, "all-MiniLM-L6-v2") == "all-MiniLM-L6-v2", \
        "no ★ set: the ★ is the embedded model, never the last in models/"
    assert compare.right_system(None, names, "all-MiniLM-L6-v2") == "all-MiniLM-L6-v2+bm25"
    assert compare.right_system("default+bm25", names, "alpha") == "alpha+bm25", "the page's placeholder is named"
    assert compare.right_model(None, names, "alpha") == "alpha"
    assert compare.right_model("zeta", names, "alpha") == "zeta", "the presenter's own choice stays"


def test_evaluate_offers_the_starred_model_beside_the_baseline():
    from studio.ui.tabs import evaluate

    assert evaluate.first_models(["all-MiniLM-L6-v2", "medical-v1"], "all-MiniLM-L6-v2") == ["all-MiniLM-L6-v2"]
    assert evaluate.first_models(["all-MiniLM-L6-v2", "medical-v1"], "medical-v1") == ["all-MiniLM-L6-v2",
                                                                                       "medical-v1"]
    assert evaluate.first_models(["all-MiniLM-L6-v2"], "gone") == ["all-MiniLM-L6-v2"], \
        "a ★ that no longer loads is not offered"


def test_evaluate_tab_exports_the_recommended_systems_recipe(ctx, exports):
    from studio.ui.tabs import evaluate

    status, recipe = evaluate.export_recipe(ctx, None, "en")
    assert "Run an evaluation first" in status and not recipe["interactive"]
    *_, raw, _, _, _, _, kept, _ = evaluate.run(ctx, ["default"], "beir", "demo", "test", None, "10", "en",
                                                progress=no_progress)
    status, recipe = evaluate.export_recipe(ctx, kept, "en")
    written = json.loads(Path(recipe["value"]).read_text(encoding="utf-8"))
    assert recipe["interactive"] and Path(recipe["value"]).is_relative_to(exports)
    assert written["spec"] == raw["recommended"] and raw["recommended"] in status
    if written["fusion"]:
        measured = next(m for m in raw["models"] if m["model"] == raw["recommended"])["system"]["fusion"]
        assert (written["fusion"]["method"], written["fusion"]["weight"]) == (measured["method"], measured["weight"])


def test_evaluate_tab_calibrates_thresholds_on_the_gold_labels(demo_ctx):
    from studio.ui.tabs import evaluate

    status, table = evaluate.calibrate(demo_ctx, ["default"], None, None, "en")
    assert "on 64 gold pairs: 23 relevant, 41 irrelevant (16 partially relevant left out)" in status
    row = table.iloc[0]
    assert row["model"] == "default" and row["score"] == "cosine similarity"
    assert 0 < float(row["F1"]) <= 1 and -1 <= float(row["threshold (max F1)"]) <= 1
    status, table = evaluate.calibrate(demo_ctx, ["/etc"], None, None, "zh-CN")
    assert "rs-error" in status and table is None


def test_evaluate_tab_learning_curve_needs_a_training_file_and_an_admin(demo_ctx):
    from studio.ui.tabs import evaluate

    plot, status = evaluate.learning_curve(demo_ctx, ["default"], "db", "", "test", None, "50,100", "42", "en",
                                           progress=no_progress)
    assert plot is None and "pick the training file in &#x27;Also leave out the queries of&#x27;" in status
    eve = _as(demo_ctx, "eve", "expert")
    plot, status = evaluate.learning_curve(demo_ctx, ["default"], "db", "", "test", "train.jsonl", "50,100", "42",
                                           "en", eve, progress=no_progress)
    assert plot is None and "needs the Admin role" in status


def test_evaluate_tab_refuses_bad_cutoffs_in_the_users_language(ctx):
    from studio.ui.tabs import evaluate

    summary, *_ = evaluate.run(ctx, ["default"], "beir", "", "test", None, "1,0", "zh-CN")
    assert "rs-error" in summary and "截断位置须为用逗号分隔的正整数" in summary and "1,0" in summary


def test_models_tab_checks_sets_the_default_and_deletes_by_name(ctx, tmp_path, monkeypatch):
    from studio import config
    from studio.config import embedded_model_path
    from studio.ui.tabs import models

    monkeypatch.setattr(config, "MODELS_DIR", tmp_path / "models")
    (tmp_path / "models").mkdir()
    for name in ("mini", "spare"):
        (tmp_path / "models" / name).symlink_to(embedded_model_path(), target_is_directory=True)
    table, picker = models.refresh(ctx, "en", None)
    assert list(table["name"]) == ["all-MiniLM-L6-v2", "mini", "spare"] and list(table["default"]) == ["★", "", ""]
    assert picker["value"] == "all-MiniLM-L6-v2"
    assert "Loaded and encoded a test sentence" in models.run_check(ctx, "mini", "en")
    message, table = models.make_default(ctx, "mini", "en")
    assert "mini is now the default model" in message and list(table["default"]) == ["", "★", ""]
    message, table, picker = models.remove(ctx, "spare", False, "en")
    assert "Tick the box" in message and (tmp_path / "models" / "spare").exists()
    message, table, picker = models.remove(ctx, "spare", True, "en")
    assert "Deleted spare" in message and picker["choices"] == ["all-MiniLM-L6-v2", "mini"]
    for bad in (str(tmp_path / "models" / "mini"), "../models/mini"):
        assert "must be a name inside" in models.run_check(ctx, bad, "en")
        assert "must be a name inside" in models.make_default(ctx, bad, "en")[0]
        assert "must be a name inside" in models.remove(ctx, bad, True, "en")[0]
    assert (tmp_path / "models" / "mini").exists() and (tmp_path / "models" / ".default").read_text().strip() == "mini"


def test_models_tab_refuses_an_expert_and_its_refresh_is_blank(ctx, tmp_path, monkeypatch):
    from studio import config
    from studio.config import embedded_model_path
    from studio.ui.tabs import models

    monkeypatch.setattr(config, "MODELS_DIR", tmp_path / "models")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mini").symlink_to(embedded_model_path(), target_is_directory=True)
    eve = _as(ctx, "eve", "expert")
    table, picker = models.refresh(ctx, "en", None, eve)
    assert table is None and picker["choices"] == []
    message, _ = models.make_default(ctx, "mini", "en", eve)
    assert "needs the Admin role" in message and not (tmp_path / "models" / ".default").exists()
    message, *_ = models.remove(ctx, "mini", True, "en", eve)
    assert "needs the Admin role" in message and (tmp_path / "models" / "mini").is_dir()


def signed_in(ctx: UIContext, name: str):
    """`ctx` with sign-in on, and a request as Gradio gives it for `name`."""
    from types import SimpleNamespace

    ctx.auth = True
    return SimpleNamespace(username=name)


def test_signed_in_rating_and_deciding_ignore_the_name_the_page_sends(demo_ctx):
    with opened(demo_ctx.db_path) as db:
        from studio.store.users import set_password

        set_password(db, "alice", "password1")
    alice = signed_in(demo_ctx, "alice")
    _, pair, *_ = annotate.start(demo_ctx, "Dr. Smith", "en", alice)
    annotate.rate(demo_ctx, "Dr. Smith", pair, "", 2, "en", alice)
    with opened(demo_ctx.db_path) as db:
        raters = [r["name"] for r in db.query("SELECT a.name FROM ratings r JOIN annotators a ON a.id = "
                                              "r.annotator_id WHERE r.pair_id = ?", [pair])]
    assert "alice" in raters and "Dr. Smith" not in raters
    _, case, *_ = adjudicate.current_case(demo_ctx, "en", request=signed_in(demo_ctx, "Prof. Chen (陈教授)"))
    refused = adjudicate.decide(demo_ctx, "Prof. Chen (陈教授)", case, 2, "", "en", alice)
    assert "needs the Expert role" in refused[3] and refused[1] is None, "an annotator gets no case to decide"
    out = adjudicate.decide(demo_ctx, "Dr. Smith", case, 2, "", "en", signed_in(demo_ctx, "Prof. Chen (陈教授)"))
    assert f"pair #{case}" in out[3]
    with opened(demo_ctx.db_path) as db:
        expert = next(db.query("SELECT e.name FROM adjudications a JOIN annotators e ON e.id = a.expert_id "
                               "WHERE a.pair_id = ?", [case]))["name"]
    assert expert == "Prof. Chen (陈教授)"


def test_an_annotator_sees_no_agreement_disagreements_or_audit_rows(demo_ctx):
    alice = signed_in(demo_ctx, "Dr. Smith")
    card, bars, table, _, heat, dis, details = agreement.refresh(demo_ctx, "en", None, alice)
    assert "needs the Expert role" in card and table is None and dis is None and not details["visible"]
    card, pair, _, _, audit = adjudicate.current_case(demo_ctx, "en", request=alice)
    assert pair is None and audit is None and "needs the Expert role" in card


# Every public endpoint, by name: an event that does something gets a name users can script; the rest is private.
PUBLIC_ENDPOINTS = {
    "import_run", "import_pool", "import_demo", "team_save", "annotate_start", "annotate_rate_2", "annotate_rate_1",
    "annotate_rate_0", "annotate_skip", "annotate_undo", "agreement_report", "adjudicate_decide_2",
    "adjudicate_decide_1", "adjudicate_decide_0", "adjudicate_skip", "adjudicate_undo", "data_quality", "data_export",
    "train_start", "train_cancel",
    "train_resume", "models_check", "models_set_default", "models_encode_ahead", "models_delete", "evaluate_run",
    "evaluate_map", "evaluate_calibrate", "evaluate_curve", "evaluate_recipe", "evaluate_holes",
    "compare_similarity", "compare_score", "compare_search", "compare_send_to_queue", "queue_strategy",
    "backup_make", "controls_add", "controls_clear", "controls_rate", "controls_qualify", "guidelines_save",
    "judge_run", "judge_second_look", "judge_triage", "judge_second_look_undo", "judge_triage_undo"}


@pytest.mark.parametrize("auth", [False, True])
def test_every_public_endpoint_is_named_on_purpose(db_path, auth):
    demo, _ = build_app(db_path, auth=auth)
    public = [d["api_name"] for d in demo.get_config_file()["dependencies"]
              if d.get("api_visibility", "public") == "public"]
    assert sorted(public) == sorted(PUBLIC_ENDPOINTS), "an event without an explicit api_name, or a new one"


def test_collect_tab_orders_the_queue_and_shows_its_makeup(demo_ctx):
    message, makeup = import_.run_strategy(demo_ctx, "random", "zh-CN")
    assert "随机" in message and "已完成双人标注" in makeup and "100 / 180" in makeup
    *_, strategy, shown = import_.refresh(demo_ctx, "en")
    assert strategy["value"] == "random" and "untouched pairs" in shown
    refused, _ = import_.run_strategy(demo_ctx, "random", "en", request=signed_in(demo_ctx, "Dr. Smith"))
    assert "needs the Admin role" in refused


def test_closing_a_tab_gives_its_reserved_pair_back(demo_ctx):
    """The app registers an unload event that frees the session's reservation (the action is tested in
    test_queue.py); here: the handler the app registers does it for the session it is given."""
    from types import SimpleNamespace

    demo, _ = build_app(demo_ctx.db_path)
    unload = [d for d in demo.get_config_file()["dependencies"] if any(t[1] == "unload" for t in d["targets"])]
    assert len(unload) == 1
    leave = next(fn for fn in (b.fn for b in demo.fns.values()) if getattr(fn, "__name__", "") == "leave")
    tab = SimpleNamespace(username=None, session_hash="tab-1")
    _, pair, *_ = annotate.start(demo_ctx, "Dr. Smith", "en", tab)
    with opened(demo_ctx.db_path) as db:
        assert next(db.query("SELECT count(*) AS n FROM assignments WHERE session = 'tab-1'"))["n"] == 1
    leave(tab)
    with opened(demo_ctx.db_path) as db:
        assert next(db.query("SELECT count(*) AS n FROM assignments WHERE pair_id = ?", [pair]))["n"] == 0


def test_evaluate_tab_on_gold_labels_shows_coverage_and_an_admin_sends_the_holes_to_the_queue(demo_ctx, exports):
    """The demo's gold labels cover about a quarter of each system's top 10: ⑧ shows judged@10 per system, warns that
    the scores are lower bounds, and offers to queue the unjudged documents — from the runs the server kept, for an
    admin only; a second click adds nothing new."""
    from studio.store.gold import gold_set
    from studio.ui.tabs import evaluate

    summary, *_, errors, raw, _, _, _, _, kept, holes = evaluate.run(
        demo_ctx, ["default"], "db", "", "test", None, "10", "en", progress=no_progress)
    assert "likely an underestimate" in summary
    judged = {m["model"]: m["metrics"]["judged@10"] for m in raw["models"]}
    assert all(0 < share < 0.9 for share in judged.values())
    assert list(errors["judged@10"]) == [f"{100 * judged[m]:.0f} %" for m in errors["model"]]
    total = evaluate.unjudged_total(raw)
    assert holes["visible"] and holes["value"] == f"Send the {total:,} unjudged documents to the annotation queue"
    eve = _as(demo_ctx, "eve", "expert")
    assert "needs the Admin role" in evaluate.send_holes(demo_ctx, kept, "en", eve)
    status = evaluate.send_holes(demo_ctx, kept, "en", _as(demo_ctx, "ann", "admin"))
    added, waiting = map(int, re.search(r"Queued (\d+) unjudged pairs .*; (\d+) were already waiting", status).groups())
    assert added + waiting == total, "the demo's unrated imported pairs are queued already: counted, not added"
    with opened(demo_ctx.db_path) as db:
        queued = [(r["q"], r["d"]) for r in db.query(
            "SELECT q.key AS q, d.key AS d FROM pairs p JOIN queries q ON q.id = p.query_id "
            "JOIN documents d ON d.id = p.document_id WHERE p.source = 'holes'")]
        gold = gold_set(db)
    assert len(queued) == added > 0, "only the pairs it created"
    assert not [pair for pair in queued if pair[1] in gold.labels.get(pair[0], {})], "only unjudged pairs"
    assert "Queued 0 unjudged pairs" in evaluate.send_holes(demo_ctx, kept, "en", _as(demo_ctx, "ann", "admin"))


def test_evaluate_tab_scoring_trained_on_queries_recommends_nothing_and_exports_no_recipe(demo_ctx, exports,
                                                                                          tmp_path, monkeypatch):
    import json as _json

    from studio import config
    from studio.training.train_file import fingerprint
    from studio.store.gold import gold_set
    from studio.ui.tabs import evaluate

    monkeypatch.setattr(config, "MODELS_DIR", tmp_path / "models")
    with opened(demo_ctx.db_path) as db:
        gold = gold_set(db)
    texts = sorted(t for q, t in gold.queries.items() if any(v > 0 for v in gold.labels[q].values()))
    model = tmp_path / "models" / "ft"
    model.mkdir(parents=True)
    for part in config.embedded_model_path().iterdir():
        (model / part.name).symlink_to(part)
    (model / "studio_model.json").write_text(_json.dumps({"queries": {"train": [fingerprint(t) for t in texts[:10]],
                                                                      "valid": []}}))
    summary, *_, raw, _, _, _, _, kept, _ = evaluate.run(demo_ctx, ["ft"], "db", "", "test", None, "10", "en",
                                                        progress=no_progress)
    assert raw["queries"] == len(texts) - 10 and "Left out 10 labelled queries" in summary and "★" in summary
    summary, *_, raw, _, _, _, _, kept, _ = evaluate.run(demo_ctx, ["ft"], "db", "", "test", None, "10", "zh-CN",
                                                        progress=no_progress, include_trained=True)
    assert raw["queries"] == len(texts) and raw["recommended"] is None and "★" not in summary
    assert "不推荐任何系统" in summary
    status, recipe = evaluate.export_recipe(demo_ctx, kept, "en")
    assert "--include-trained" in status and not recipe["interactive"]


def test_the_model_rater_panel_judges_shows_kappa_and_refuses_an_annotator(demo_ctx):
    """③'s model-rater panel: the embedded model judges the demo's gold pairs (the judgments table appears with the
    run, κ against gold in the message, in Chinese too); an annotator is refused in words, and nothing is judged."""
    from studio.ui.tabs import model_rater

    message, table, picker, card = model_rater.run(demo_ctx, "model", "default", None, None, "gold", 20, "zh-CN")
    assert "κ" in message and "rs-error" not in message, message
    assert table["visible"] is True and len(table["value"]) == 20 and "标签" in "".join(table["value"].columns)
    assert picker["value"] and picker["value"].startswith("model:")
    refused, nothing, *_ = model_rater.run(demo_ctx, "model", "default", None, None, "gold", 5, "en",
                                           request=signed_in(demo_ctx, "Dr. Smith"))
    assert "needs the Admin role" in refused and nothing is None
