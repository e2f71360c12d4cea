"""UI handlers as plain functions, plus one check that the whole app builds."""

from pathlib import Path

import plotly.graph_objects as go
import pytest

from studio.demo import load_demo
from studio.ui import render
from studio.ui.app import build_app
from studio.ui.context import UIContext, make_i18n
from studio.ui.tabs import adjudicate, agreement, annotate, data, import_


@pytest.fixture
def ctx(db_path):
    return UIContext(Path(db_path), make_i18n())


@pytest.fixture
def demo_ctx(ctx):
    with ctx.db() as db:
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
    with demo_ctx.db() as db:
        row = next(db.query("SELECT rating, note FROM ratings r JOIN annotators a ON a.id = r.annotator_id "
                            "WHERE a.name = 'Dr. Smith' AND pair_id = ?", [pair]))
    assert row == {"rating": 1, "note": "只部分回答"}
    _, pair3, _, status3, _ = annotate.undo(demo_ctx, "Dr. Smith", "en")
    assert pair3 == pair and f"pair #{pair}" in status3


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
    with ctx.db() as db:
        assert next(db.query("SELECT count(*) AS n FROM pairs"))["n"] == 0


def test_demo_button_hides_the_welcome_and_fills_the_project(ctx):
    message, counts, welcome, team = import_.run_demo(ctx, "en")
    assert "Demo project loaded" in message and welcome["visible"] is False
    assert len(team) == 4


def test_team_role_change(ctx):
    message, team = import_.add_person(ctx, "Dr. Wu", "expert", "en")
    assert "Dr. Wu is now: Expert" in message and list(team.iloc[0]) == ["Dr. Wu", "Expert", 0]
    message, team = import_.add_person(ctx, "Dr. Wu", "admin", "zh-CN")
    assert "管理员" in message and len(team) == 1


def test_data_tab_reports_quality_and_exports(demo_ctx, tmp_path, monkeypatch):
    monkeypatch.setattr(data, "EXPORTS_DIR", tmp_path / "exports")
    card, lengths, similarity, report_file = data.run_quality(demo_ctx, "default", "zh-CN", progress=lambda *a, **k: None)
    assert "训练样本" in card and "少于 1000" in card, "the few-examples warning is shown in Chinese"
    assert isinstance(lengths, go.Figure) and Path(report_file).exists()
    out = tmp_path / "exports" / "run" / "train.jsonl"
    message, files, preview, _ = data.run_export(demo_ctx, str(out), 0.1, "bm25", 5, "drop", 7, "none", "", "default",
                                                 "en", progress=lambda *a, **k: None)
    assert "training lines" in message and out.exists() and len(files) == 4
    assert set(preview[0]) == {"query", "pos", "neg"} and len(preview[0]["neg"]) == 5


def test_data_tab_explains_an_empty_project(ctx):
    card, *_ = data.run_quality(ctx, "default", "en", progress=lambda *a, **k: None)
    assert "no gold labels yet" in card


def test_train_tab_starts_a_job_and_shows_its_curves(ctx, tmp_path, monkeypatch):
    import json
    import time as _time

    from studio.training import jobs as training_jobs
    from studio.ui.tabs import train
    from tests.tiny_models import build_tiny_reranker

    monkeypatch.setattr(training_jobs.cfg, "JOBS_DIR", tmp_path / "jobs")
    monkeypatch.setattr(training_jobs.cfg, "MODELS_DIR", tmp_path / "models")
    base = str(build_tiny_reranker(tmp_path / "tiny"))
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"query": f"q{i}", "pos": [f"answer {i}"], "neg": [f"other {i}", "noise"]}) + "\n"
                            for i in range(4)), encoding="utf-8")
    form = ["reranker", base, str(data), "full", "tiny-rr", 1, 4, 4, "1e-3", 2, 16, 32, 0.02, 0.1, "auto", False,
            16, 32, 0.05]
    assert "--task reranker" in train.preview(*form) and "--max-steps 4" in train.preview(*form)
    message, job, card, loss_plot, lr_plot, log, table, timer = train.start(ctx, "en", None, *form)
    assert "Job #1 created" in message and job["value"] == 1
    deadline = _time.time() + 120
    while _time.time() < deadline:
        card, loss_plot, lr_plot, log, table, timer = train.poll(ctx, 1, "zh-CN")
        if "已完成" in card:
            break
        _time.sleep(1)
    assert "已完成" in card and (tmp_path / "models" / "tiny-rr" / "config.json").exists()
    assert len(loss_plot.data[0].x) == 4, "one point per logged step"
    assert list(table.iloc[0])[:4] == [1, "tiny-rr", "重排序模型（交叉编码器）", "已完成"]
    # The job picker names the job only: a status in it went stale ("running" beside a finished job's card).
    assert train.job_choices(ctx) == [("#1 · tiny-rr", 1)]
    # A refused form (batch size 0) says why and leaves the selected job's card and curves in place.
    refused = [*form[:4], "tiny-rr-2", 1, 4, 0, *form[8:]]
    message, job, card, loss_plot, *_ = train.start(ctx, "zh-CN", 1, *refused)
    assert "rs-error" in message and "已完成" in card and len(loss_plot.data[0].x) == 4
    assert "每步查询数" in message and "batch_size" not in message, "the field as the form labels it"
    message, *_ = train.start(ctx, "en", 1, *[*refused[:2], "", *refused[3:7], 4, *refused[8:]])
    assert "choose a training file" in message


def test_train_tab_warns_when_a_reranker_would_start_without_a_reranker_head(tmp_path):
    from studio.ui.tabs import train
    from tests.tiny_models import build_tiny_reranker

    warning = train.base_advice("reranker", "default", "en")  # all-MiniLM-L6-v2 is an embedder
    assert "rs-warn" in warning and "not a cross-encoder" in warning and "bge-reranker-v2-m3" in warning
    assert "不是交叉编码器" in train.base_advice("reranker", "default", "zh-CN")
    assert train.base_advice("embedder", "default", "en") == ""
    assert train.base_advice("reranker", str(build_tiny_reranker(tmp_path / "tiny")), "en") == ""  # a cross-encoder
    assert train.base_advice("reranker", "BAAI/bge-reranker-v2-m3", "en") == ""  # not on this machine: no guess


def test_train_tab_warns_when_the_data_gives_too_few_steps(tmp_path):
    from studio.ui.tabs import train

    data = tmp_path / "train.jsonl"
    data.write_text("".join('{"query": "q%d", "pos": ["p"], "neg": ["n"]}\n' % i for i in range(18)), encoding="utf-8")
    warning = train.steps_advice(str(data), 32, 1, -1, "en")
    assert "Only 1 training step(s) (18 training queries at batch size 32 × 1 epoch(s))" in warning
    assert "约 3 个训练步" in train.steps_advice(str(data), 32, 3, -1, "zh-CN")
    assert train.steps_advice(str(data), 1, 2, -1, "en") == "", "36 steps are enough"
    assert train.steps_advice(str(data), 32, 1, 50, "en") == "", "max steps decide when set"
    assert train.steps_advice(str(tmp_path / "missing.jsonl"), 32, 1, -1, "en") == ""
    assert train.form_advice("embedder", "default", str(data), 32, 1, -1, "en") == warning


def test_evaluate_tab_compares_models_on_the_demo_beir_folder(ctx, tmp_path, monkeypatch):
    from studio.config import DEMO_DIR
    from studio.ui.tabs import evaluate

    monkeypatch.setattr(evaluate, "EXPORTS_DIR", tmp_path / "exports")
    summary, bars, table, delta, errors, raw, html_file, csv_file, queries_file, picked = evaluate.run(
        ctx, ["default", "default"], "beir", str(DEMO_DIR), "test", None, "1,10", "zh-CN",
        progress=lambda *a, **k: None)
    assert "30 个查询" in summary and "中有 0 项显著" in summary
    assert isinstance(bars, go.Figure) and isinstance(delta, go.Figure)
    assert set(table["查询 更好/持平/更差"]) == {"0/30/0"}, "a model against itself ties on every query"
    assert list(errors.iloc[0])[0] == "default" and raw["queries"] == 30
    assert html_file["interactive"] and "评估报告" in Path(html_file["value"]).read_text(encoding="utf-8")
    assert Path(csv_file["value"]).name == "metrics.csv" and Path(queries_file["value"]).exists()
    assert len(picked["choices"]) == 30


def test_evaluate_tab_with_one_model_asks_for_a_second_and_hides_the_comparison(ctx, tmp_path, monkeypatch):
    from studio.config import DEMO_DIR
    from studio.ui.tabs import evaluate

    monkeypatch.setattr(evaluate, "EXPORTS_DIR", tmp_path / "exports")
    summary, bars, table, delta, errors, raw, *_ = evaluate.run(
        ctx, ["default"], "beir", str(DEMO_DIR), "test", None, "10", "en", progress=lambda *a, **k: None)
    assert "Only one model: add a second one" in summary and isinstance(bars, go.Figure)
    results, delta_shown, table_shown = evaluate._show_results(raw)
    assert results["visible"] and not delta_shown["visible"] and not table_shown["visible"]
    assert all(part["visible"] is False for part in evaluate._show_results(None))


def test_evaluate_tab_leaves_out_training_queries_and_says_when_too_few_are_left(ctx, tmp_path, monkeypatch):
    import json

    from studio.config import DEMO_DIR
    from studio.ui.tabs import evaluate

    monkeypatch.setattr(evaluate, "EXPORTS_DIR", tmp_path / "exports")
    queries = [json.loads(line)["text"] for line in (DEMO_DIR / "queries.jsonl").read_text("utf-8").splitlines()]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"query": q, "pos": ["x"], "neg": ["y"]}, ensure_ascii=False) + "\n"
                             for q in queries[:27]), encoding="utf-8")
    summary, bars, table, delta, errors, raw, *_ = evaluate.run(
        ctx, ["default", "default"], "beir", str(DEMO_DIR), "test", str(train), "1,5,10,20", "en",
        progress=lambda *a, **k: None)
    assert raw["queries"] == 3 and raw["evalset"] == "demo/test without the queries of train.jsonl"
    assert "demo/test without the queries of train.jsonl: 3 queries" in summary
    assert "Only 3 queries: too few for a significance test" in summary
    assert list(table.columns) == ["comparison", "baseline model", "model", "metric", "baseline value", "model value",
                                   "Δ (relative)", "p (Holm)", "verdict", "queries better / equal / worse"]
    assert [trace.name for trace in delta.data] == ["worse (0)", "unchanged (3)", "better (0)"]
    summary, *_ = evaluate.run(ctx, ["default"], "db", "", "test", None, "10", "zh-CN", progress=lambda *a, **k: None)
    assert "没有剩余的" in summary


def test_evaluate_tab_explains_missing_gold_labels(ctx):
    from studio.ui.tabs import evaluate

    summary, *rest = evaluate.run(ctx, ["default"], "db", "", "test", None, "10", "en", progress=lambda *a, **k: None)
    assert "no query with a relevant gold label" in summary and rest[:5] == [None] * 5
    assert not any(download["interactive"] for download in rest[5:8])


def test_evaluate_tab_reports_a_reranker_step_that_makes_ranking_worse(ctx, tmp_path, monkeypatch):
    from studio.config import DEMO_DIR
    from studio.ui.tabs import evaluate
    from tests.tiny_models import build_tiny_reranker

    monkeypatch.setattr(evaluate, "EXPORTS_DIR", tmp_path / "exports")
    reranker = str(build_tiny_reranker(tmp_path / "rr"))
    summary, bars, table, delta, errors, raw, html_file, *_ = evaluate.run(
        ctx, ["default"], "beir", str(DEMO_DIR), "test", None, "1,10", "en", "dense", reranker, 10,
        progress=lambda *a, **k: None)
    assert [m["model"] for m in raw["models"]] == ["default", f"default → {reranker}"], "dense alone is reported too"
    assert "The reranker makes ranking worse: ndcg@10 drops by" in summary and "rs-error" in summary
    assert set(table["comparison"]) == {"reranker step"} and table["model"].str.startswith("⚠").all()
    assert "▼ worse" in set(table["verdict"])
    assert "The reranker makes ranking worse" in Path(html_file["value"]).read_text(encoding="utf-8")


def test_evaluate_tab_mode_needs_an_m3_model(ctx):
    from studio.config import DEMO_DIR
    from studio.ui.tabs import evaluate

    summary, *_ = evaluate.run(ctx, ["default"], "beir", str(DEMO_DIR), "test", None, "10", "zh-CN", "colbert",
                               progress=lambda *a, **k: None)
    assert "不是 BGE-M3 模型" in summary


def test_evaluate_tab_draws_the_embedding_map_into_the_report(ctx, tmp_path, monkeypatch):
    from studio.config import DEMO_DIR
    from studio.ui.tabs import evaluate

    monkeypatch.setattr(evaluate, "EXPORTS_DIR", tmp_path / "exports")
    form = (["default"], "beir", str(DEMO_DIR), "test", None)
    *_, raw, _, _, _, picked = evaluate.run(ctx, *form, "10", "en", progress=lambda *a, **k: None)
    query = picked["choices"][0][1]
    figure, status, html_file = evaluate.draw_map(ctx, *form, [query], raw, "zh-CN")
    assert isinstance(figure, go.Figure) and "分布图" in status
    stars = next(trace for trace in figure.data if trace.name == "查询")
    assert len(stars.x) == 1, "only the picked query is drawn"
    assert Path(html_file["value"]).read_text(encoding="utf-8").count('class="plotly-graph-div') == 2
    _, status, html_file = evaluate.draw_map(ctx, *form, [], None, "en")
    assert "Run an evaluation first" in status


def test_compare_shows_two_models_side_by_side_with_moves_badges_and_queueing(demo_ctx, tmp_path):
    import torch
    from sentence_transformers import SentenceTransformer

    from studio.config import default_model_path
    from studio.ui.tabs import compare

    other = SentenceTransformer(str(default_model_path()), device="cpu")
    torch.manual_seed(0)
    with torch.no_grad():
        for p in other[0].auto_model.encoder.layer[-1].parameters():
            p.add_(torch.randn_like(p) * 0.05)  # a different model: what fine-tuning does, in miniature
    other.save(str(tmp_path / "other"))

    from studio.store.lookup import example_queries

    with demo_ctx.db() as db:
        query = example_queries(db)[0]  # the first example the tab offers
    left, right, pick, status = compare.run_search(demo_ctx, query, "default", str(tmp_path / "other"), 10, "zh-CN")
    assert left.count('class="rs-hit"') == 10 and right.count('class="rs-hit"') == 10
    assert "rs-badge" in left, "gold labels of the demo query show as badges"
    assert left != right and ("▲" in left or "▼" in left or "rs-new" in left), "the two models rank differently"
    assert "毫秒" in left and "<mark>" in left
    doc = pick["choices"][0][1]
    assert "已加入标注队列" in compare.send_to_queue(demo_ctx, "糖尿病患者可以吃水果吗？", doc, "zh-CN")
    assert "already in the project" in compare.send_to_queue(demo_ctx, "糖尿病患者可以吃水果吗？", doc, "en")


def test_compare_side_followed_by_a_reranker(demo_ctx, tmp_path):
    from studio.retrieval import rerank
    from studio.store.lookup import example_queries
    from studio.ui.tabs import compare
    from tests.tiny_models import build_tiny_reranker

    reranker = str(build_tiny_reranker(tmp_path / "rr"))
    with demo_ctx.db() as db:
        query = example_queries(db)[0]
    left, right, *_ = compare.run_search(demo_ctx, query, "default", "default", 5, "en", None, reranker, 20)
    assert left.count('class="rs-hit"') == 5 and right.count('class="rs-hit"') == 5
    assert f"default → {reranker}" in right and "→" not in left.split("rs-latency")[0]
    assert left != right, "the reranker reorders the dense candidates"
    assert reranker in rerank._rerankers, "the loaded reranker stays in memory for the next query"


def test_compare_asks_for_a_query(ctx):
    from studio.ui.tabs import compare

    left, *_ = compare.run_search(ctx, "  ", "default", "default", 10, "en")
    assert "Type a query" in left


def test_playground_tables(ctx):
    from studio.retrieval.playground import KEYWORD_TRAP
    from studio.ui.tabs import compare

    sims = compare.run_similarity("糖尿病的主要并发症有哪些？", "高血糖长期未控可能导致视网膜病变", ["default"], "zh-CN")
    assert list(sims.columns) == ["模型", "余弦相似度"] and sims.iloc[0, 0] == "default"
    table = compare.run_scoring(KEYWORD_TRAP[0], "\n".join(KEYWORD_TRAP[1]), ["default"], "", "en")
    assert len(table) == 3 and sorted(v.split(" · ")[0] for v in table["default"]) == ["#1", "#2", "#3"]


def test_known_problems_read_as_advice_not_as_unexpected_errors(ctx):
    from studio.ui.tabs import compare, evaluate

    left, *_ = compare.run_search(ctx, "糖尿病", "default", "default", 10, "zh-CN")
    assert "语料库为空" in left and "出现错误" not in left
    summary, *_ = evaluate.run(ctx, [], "beir", "", "test", None, "10", "en", progress=lambda *a, **k: None)
    assert "Pick at least one model." in summary and "Something went wrong" not in summary


def test_compare_puts_the_starred_model_on_the_right():
    from studio.ui.tabs import compare

    names = ["default", "alpha", "zeta"]
    assert compare.right_model(None, names, "default") == "zeta", "no ★: the last in models/"
    assert compare.right_model(None, names, "alpha") == "alpha"
    assert compare.right_model("zeta", names, "alpha") == "zeta", "the presenter's own choice stays"


def test_evaluate_offers_the_starred_model_beside_the_baseline():
    from studio.ui.tabs import evaluate

    assert evaluate.first_models(["default", "medical-v1"], "default") == ["default"]
    assert evaluate.first_models(["default", "medical-v1"], "medical-v1") == ["default", "medical-v1"]
    assert evaluate.first_models(["default"], "gone") == ["default"], "a ★ that no longer loads is not offered"


def test_evaluate_on_gold_labels_leaves_out_the_fine_tunes_training_queries(tmp_path, monkeypatch):
    import json

    from studio import config as cfg
    from studio.ui.tabs.evaluate import suggested_exclusion

    monkeypatch.setattr(cfg, "MODELS_DIR", tmp_path / "models")
    train = tmp_path / "train.jsonl"
    train.write_text('{"query": "q", "pos": ["p"], "neg": ["n"]}\n', encoding="utf-8")
    (tmp_path / "models" / "medical-v1").mkdir(parents=True)
    (tmp_path / "models" / "medical-v1" / "studio_model.json").write_text(json.dumps({"train": str(train)}))
    assert suggested_exclusion(["default", "medical-v1"], "db", None) == str(train)
    assert suggested_exclusion(["default", "medical-v1"], "db", "mine.jsonl") == "mine.jsonl", "the user's choice"
    assert suggested_exclusion(["default", "medical-v1"], "beir", None) is None, "a BEIR split is held out already"
    assert suggested_exclusion(["default"], "db", None) is None


def test_evaluate_tab_refuses_bad_cutoffs_in_the_users_language(ctx):
    from studio.ui.tabs import evaluate

    summary, *_ = evaluate.run(ctx, ["default"], "beir", "", "test", None, "1,0", "zh-CN")
    assert "rs-error" in summary and "截断位置须为用逗号分隔的正整数" in summary and "1,0" in summary
