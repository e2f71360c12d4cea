"""Evaluation reports a user can open and share: HTML that works offline, CSV, the reranker step that may make
things worse, BGE-M3 scoring modes, the embedding map, and `studio eval --html --csv --mode` end to end."""

from __future__ import annotations

import csv
import json
import os
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from studio.cli import cli
from studio.config import DEMO_DIR
from studio.errors import StudioError
from studio.evaluation import embedding_map, export
from studio.evaluation.report import build_report, comparison_plan, evaluate_models, warning_lines
from studio.evaluation.runner import EvalSet, RunResult, from_beir
from studio.retrieval import m3

CHROMIUM = "/usr/bin/chromium"


def synthetic(n: int = 40) -> EvalSet:
    """Each query has one relevant (2) and one partial (1) document among 4n."""
    corpus = {f"d{j:03d}": f"document {j}" for j in range(4 * n)}
    queries = {f"q{i:02d}": f"query {i} <b>bold</b>" for i in range(n)}
    qrels = {f"q{i:02d}": {f"d{2 * i:03d}": 2, f"d{2 * i + 1:03d}": 1} for i in range(n)}
    return EvalSet("synthetic", queries, corpus, qrels)


def good_run(evalset: EvalSet) -> dict:
    """Relevant documents first, then 8 others."""
    run = {}
    for q, judged in evalset.qrels.items():
        ranked = sorted(judged, key=lambda d: -judged[d]) + [d for d in list(evalset.corpus)[-8:]]
        run[q] = {d: 10.0 - r for r, d in enumerate(ranked)}
    return run


def reversed_run(run: dict) -> dict:
    """The same documents in the opposite order: a deliberately bad reranker."""
    return {q: {d: -s for d, s in docs.items()} for q, docs in run.items()}


class Page(HTMLParser):
    """Scripts (src, inline size), link hrefs, elements by class, and the visible text of an HTML page."""

    def __init__(self):
        super().__init__()
        self.scripts: list[dict] = []
        self.links: list[str] = []
        self.classes: list[str] = []
        self.text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.scripts.append({"src": attrs.get("src"), "size": 0})
            self._in_script = True
        if tag == "link" or (tag in ("img", "iframe") and attrs.get("src")):
            self.links.append(attrs.get("href") or attrs.get("src") or "")
        self.classes += (attrs.get("class") or "").split()

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1]["size"] += len(data)
        else:
            self.text.append(data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


# --------------------------------------------------------------------------------------- reranker step, flags

def test_a_reranker_that_worsens_ranking_is_flagged_never_hidden():
    evalset = synthetic()
    first = good_run(evalset)
    results = [RunResult("dense", first, group=0, stage="first"),
               RunResult("dense → bad", reversed_run(first), group=0, stage="reranked")]
    report, _ = build_report(evalset, results, (1, 10))
    [comparison] = report["comparisons"]
    assert comparison["kind"] == "reranker" and comparison["worse"] and comparison["headline"]["metric"] == "ndcg@10"
    [warning] = [w for w in report["warnings"] if w["kind"] != "low_judged"]  # 8 unjudged in each top 10
    assert warning["kind"] == "reranker_worse" and warning["significant"] and warning["delta"] < 0
    en = warning_lines(report, "en")[0]
    assert en.startswith("⚠ The reranker makes ranking worse: ndcg@10 drops by")
    assert f"p = {comparison['headline']['p_holm']:.4f}, significant" in en
    zh = warning_lines(report, "zh-CN")[0]
    assert "重排序让排序变差了" in zh and "经 Holm 校正后显著" in zh


def test_a_better_reranker_gives_no_warning_and_plan_pairs_stages():
    evalset = synthetic()
    first = good_run(evalset)
    runs = [RunResult("A", reversed_run(first), group=0), RunResult("A → R", first, group=0, stage="reranked"),
            RunResult("B", reversed_run(first), group=1), RunResult("B → R", first, group=1, stage="reranked")]
    assert comparison_plan(runs) == [("model", 0, 2), ("model", 1, 3), ("reranker", 0, 1), ("reranker", 2, 3)]
    report, _ = build_report(evalset, runs, (10,))
    assert {w["kind"] for w in report["warnings"]} == {"low_judged"}, "only the coverage cautions"
    assert len(warning_lines(report, "en")) == len(report["warnings"])
    assert [c["kind"] for c in report["comparisons"]] == ["model", "model", "reranker", "reranker"]


def test_too_few_queries_for_any_significant_change_is_said():
    from studio.evaluation.compare import min_queries_for_significance, paired_randomization
    from studio.evaluation.report import sample_size_line

    assert min_queries_for_significance(1) == 6 and min_queries_for_significance(16) == 10
    assert paired_randomization([0.0] * 5, [1.0] * 5) >= 0.05 > paired_randomization([0.0] * 6, [1.0] * 6)
    small = synthetic(4)
    runs = [RunResult("base", reversed_run(good_run(small)), group=0), RunResult("tuned", good_run(small), group=1)]
    report, _ = build_report(small, runs, (1, 5, 10, 20))
    assert all(not row["significant"] for row in report["comparisons"][0]["rows"]), "4 queries all better: still no"
    assert sample_size_line(report, "en").startswith("Only 4 queries: too few for a significance test. With fewer "
                                                     "than 10 queries none of the 16 metric changes")
    assert "只有 4 个查询" in sample_size_line(report, "zh-CN")
    assert "Only 4 queries" in export.render_html(report, "en")
    runs = [RunResult("base", reversed_run(good_run(synthetic())), group=0),
            RunResult("tuned", good_run(synthetic()), group=1)]
    assert sample_size_line(build_report(synthetic(), runs, (1, 5, 10, 20))[0], "en") is None


def test_beir_evaluation_can_leave_out_the_training_queries():
    full = from_beir(DEMO_DIR)
    trained = set(list(full.queries.values())[:28])
    held_out = from_beir(DEMO_DIR, exclude_queries=trained, name="held out")
    assert held_out.name == "held out" and len(held_out.qrels) == 2 and held_out.corpus == full.corpus
    assert not trained & set(held_out.queries.values())
    with pytest.raises(StudioError) as err:
        from_beir(DEMO_DIR, exclude_queries=set(full.queries.values()))
    assert err.value.code == "no_eval_queries"


def test_evaluate_models_reports_dense_and_dense_then_reranker(tiny_reranker, tmp_path):
    evalset = from_beir(DEMO_DIR)
    report, comparisons = evaluate_models(evalset, ["default"], (1, 10, 100), reranker=str(tiny_reranker),
                                          rerank_top=10, run_out=tmp_path / "runs")
    labels = [m["model"] for m in report["models"]]
    assert labels == ["default", f"default → {tiny_reranker}"]
    assert [m["stage"] for m in report["models"]] == ["first", "reranked"]
    assert report["comparisons"][0]["kind"] == "reranker" and len(comparisons) == 1
    assert report["reranker"] == str(tiny_reranker) and report["rerank_top"] == 10
    dense, reranked = report["models"]
    assert reranked["metrics"]["recall@100"] == pytest.approx(dense["metrics"]["recall@100"]), \
        "documents past the reranked top 10 keep their dense order below them"
    # A random cross-encoder is worse than MiniLM on the demo: it must say so.
    assert report["comparisons"][0]["worse"] and report["warnings"][0]["kind"] == "reranker_worse"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["default+reranker.trec", "default.trec"]
    only, _ = evaluate_models(evalset, ["default"], (10,), reranker=str(tiny_reranker), rerank_top=10,
                              include_first_stage=False)
    assert [m["stage"] for m in only["models"]] == ["reranked"] and only["comparisons"] == []


# ------------------------------------------------------------------------------------------------ exports

@pytest.fixture
def significant_report():
    evalset = synthetic()
    better = good_run(evalset)
    runs = [RunResult("base <model>", reversed_run(better), {"queries_per_s": 12.5}, group=0),
            RunResult("tuned-v1", better, {"queries_per_s": 11.0}, group=1)]
    report, _ = build_report(evalset, runs, (1, 10), settings={"mode": "dense", "reranker": None})
    return evalset, report


def test_html_report_is_self_contained_and_shows_the_results(significant_report, tmp_path):
    _, report = significant_report
    path = export.write_html(report, tmp_path / "out" / "report.html", "en")
    page = parse(path)
    assert [s["src"] for s in page.scripts if s["src"]] == [], "no script is loaded from anywhere"
    assert max(s["size"] for s in page.scripts) > 1_000_000, "plotly.js is inlined"
    assert "plotly.js" in path.read_text(encoding="utf-8")[:200_000]
    assert page.links == []
    assert page.classes.count("plotly-graph-div") == 2, "metric bars and the per-query delta histogram"
    text = " ".join(page.text)
    assert "base <model>" in text and "tuned-v1" in text, "model names, escaped"
    assert "<model>" not in path.read_text(encoding="utf-8").split("<body>")[1].replace("&lt;model&gt;", "")
    tuned = report["models"][1]["metrics"]["ndcg@10"]
    assert f"{tuned:.4f}" in text
    assert "★" in text and "▲ better" in text, "significance markers"
    row = next(r for r in report["comparisons"][0]["rows"] if r["metric"] == "ndcg@10")
    assert f"{row['p_holm']:.4f}" in text and f"{row['wins']}/{row['ties']}/{row['losses']}" in text
    assert "Worst queries" in text and "query 0 <b>bold</b>" in text
    assert "No comparison lowers the headline metric" in text
    zh = parse(export.write_html(report, tmp_path / "zh.html", "zh-CN"))
    assert "评估报告" in " ".join(zh.text) and "各模型指标" in " ".join(zh.text)


def test_html_report_flags_a_worse_reranker_in_red(tmp_path):
    evalset = synthetic()
    first = good_run(evalset)
    report, _ = build_report(evalset, [RunResult("dense", first), RunResult("dense → bad", reversed_run(first),
                                                                             stage="reranked")], (10,))
    page = parse(export.write_html(report, tmp_path / "r.html", "en"))
    assert "warning" in page.classes and "worse" in page.classes
    assert any("The reranker makes ranking worse" in t for t in page.text)
    assert "Reranker step: dense → bad vs dense alone" in " ".join(page.text)


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make test installs it)")
def test_html_report_renders_its_charts_offline_in_chromium(significant_report, tmp_path):
    from playwright.sync_api import sync_playwright

    _, report = significant_report
    path = export.write_html(report, tmp_path / "report.html", "en")
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)
        bars = page.locator(".js-plotly-plot").count()
        browser.close()
    assert bars == 2
    assert [u for u in requests if not u.startswith(("file:", "data:", "blob:"))] == []


def test_csv_has_one_row_per_model_and_metric_with_deltas(significant_report, tmp_path):
    evalset, report = significant_report
    with open(export.write_csv(report, tmp_path / "m.csv"), encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * (8 + 6) and list(rows[0]) == list(export.METRIC_COLUMNS), "+ coverage at k = 1, 10"
    base = [r for r in rows if r["model"] == "base <model>"]
    tuned = {r["metric"]: r for r in rows if r["model"] == "tuned-v1"}
    assert all(r["delta"] == "" and r["baseline"] == "" for r in base)
    row = next(r for r in report["comparisons"][0]["rows"] if r["metric"] == "ndcg@10")
    assert tuned["ndcg@10"]["k"] == "10" and tuned["ndcg@10"]["baseline"] == "base <model>"
    assert float(tuned["ndcg@10"]["delta"]) == pytest.approx(row["delta"])
    assert float(tuned["ndcg@10"]["relative_delta"]) == pytest.approx(row["relative"])
    assert float(tuned["ndcg@10"]["p_value"]) == pytest.approx(row["p_value"])
    assert tuned["ndcg@10"]["significant"] == "True"
    with open(export.write_queries_csv(report, tmp_path / "q.csv", evalset.queries), encoding="utf-8-sig") as f:
        per_query = list(csv.DictReader(f))
    assert len(per_query) == 2 * 40 and per_query[0]["query"] == "query 0 <b>bold</b>"
    assert {r["metric"] for r in per_query} == {"ndcg@10"}


# ------------------------------------------------------------------------------------------------ BGE-M3

def reference_scores(model, queries, docs) -> dict[str, np.ndarray]:
    """BGEM3FlagModel's own scores, pair by pair: encode + dot / compute_lexical_matching_score / colbert_score,
    their weighted sum, and compute_score's dense and sparse.

    compute_score's ColBERT (and so its weighted sum) is not a reference: it scores padded batches, where the
    zero vectors of padding tokens clip a document's negative best match to 0 (short documents, random weights).
    """
    q = model.encode_queries(queries, return_dense=True, return_sparse=True, return_colbert_vecs=True)
    d = model.encode_corpus(docs, return_dense=True, return_sparse=True, return_colbert_vecs=True)
    colbert = np.array([[float(model.colbert_score(a, b)) for b in d["colbert_vecs"]] for a in q["colbert_vecs"]])
    dense = q["dense_vecs"] @ d["dense_vecs"].T
    sparse = np.asarray(model.compute_lexical_matching_score(q["lexical_weights"], d["lexical_weights"]), dtype=float)
    w_dense, w_sparse, w_colbert = m3.DEFAULT_WEIGHTS
    combined = model.compute_score([[a, b] for a in queries for b in docs],
                                   weights_for_different_modes=list(m3.DEFAULT_WEIGHTS))
    return {"dense": dense, "sparse": sparse, "colbert": colbert,
            "weighted": (w_dense * dense + w_sparse * sparse + w_colbert * colbert) / sum(m3.DEFAULT_WEIGHTS),
            "compute_dense": np.asarray(combined["dense"]).reshape(len(queries), len(docs)),
            "compute_sparse": np.asarray(combined["sparse"]).reshape(len(queries), len(docs))}


def test_m3_modes_equal_bgem3_flag_models_own_scores(tiny_m3):
    queries = ["diabetes and fruit", "糖尿病的主要并发症有哪些？", "document 3", "signs of a stroke"]
    docs = ["Fruit is fine for diabetics in moderation.", "高血糖长期未控可能导致视网膜病变、肾衰竭等",
            "document 3 text", "Face drooping, arm weakness, speech difficulty", "", "stroke stroke stroke",
            "糖尿病 并发症 视网膜"]
    from FlagEmbedding import BGEM3FlagModel

    expected = reference_scores(BGEM3FlagModel(str(tiny_m3), use_fp16=False, devices="cpu"), queries, docs)
    assert np.abs(expected["sparse"]).max() > 0, "some query and document share weighted tokens"
    for mode in m3.MODES:
        got = m3.score_corpus(queries, docs, str(tiny_m3), mode, chunk_size=3)
        assert got.shape == (4, 7)
        np.testing.assert_allclose(got, expected[mode], atol=1e-5, err_msg=mode)
        if mode in ("dense", "sparse"):
            np.testing.assert_allclose(got, expected[f"compute_{mode}"], atol=1e-5, err_msg=mode)


def test_vectorised_sparse_and_colbert_match_pair_by_pair(monkeypatch):
    rng = np.random.default_rng(0)
    q_sparse = [{str(t): float(rng.random()) for t in rng.choice(50, 6, replace=False)} for _ in range(5)] + [{}]
    d_sparse = [{str(t): float(rng.random()) for t in rng.choice(50, 9, replace=False)} for _ in range(8)] + [{}]
    expected = [[sum(w * d.get(t, 0.0) for t, w in q.items()) for d in d_sparse] for q in q_sparse]
    np.testing.assert_allclose(m3.sparse_scores(q_sparse, d_sparse), expected, atol=1e-12)
    monkeypatch.setattr(m3, "_CELLS", 64)  # forces many query groups
    q_vecs = [rng.normal(size=(n, 4)).astype(np.float32) for n in (3, 1, 5, 2)]
    d_vecs = [rng.normal(size=(n, 4)).astype(np.float32) for n in (2, 7, 1, 4, 0)]
    expected = [[(q @ d.T).max(1).sum() / len(q) if len(d) else 0.0 for d in d_vecs] for q in q_vecs]
    np.testing.assert_allclose(m3.colbert_scores(q_vecs, d_vecs), expected, atol=1e-5)


def test_a_non_m3_model_with_a_non_dense_mode_is_a_catalogue_error():
    evalset = from_beir(DEMO_DIR)
    with pytest.raises(StudioError) as info:
        evaluate_models(evalset, ["default"], (10,), mode="colbert")
    assert info.value.code == "not_m3" and "'default' is not a BGE-M3 model" in str(info.value)
    assert "无法使用“colbert”模式打分" in info.value.message("zh-CN")
    with pytest.raises(StudioError, match="unknown scoring mode"):
        m3.check_mode("default", "hybrid")


# ------------------------------------------------------------------------------------------ embedding map

def test_embedding_map_sample_is_deterministic_and_bounded():
    evalset = synthetic(60)
    a = embedding_map.sample(evalset, max_queries=25, n_unlabelled=10)
    assert a == embedding_map.sample(evalset, max_queries=25, n_unlabelled=10)
    assert len(a.query_ids) == 25 and len(a.doc_ids) == 25 * 2 + 10
    labelled = {d for q in a.query_ids for d in evalset.qrels[q]}
    assert set(a.doc_ids[:50]) == labelled and not set(a.doc_ids[50:]) & labelled


def test_embedding_map_two_models_side_by_side(tmp_path):
    from studio.ui import charts

    evalset = from_beir(DEMO_DIR)
    panels = embedding_map.build_maps(evalset, ["default", "default"], None)
    assert len(panels) == 1, "the same model once"
    picked = sorted(evalset.qrels)[:2]
    panel = embedding_map.build_map(evalset, "default", picked)
    assert panel.xy.shape == (len(panel.ids), 2) and np.isfinite(panel.xy).all()
    assert sum(panel.selected) == 2 and set(panel.links) == set(picked)
    assert {panel.label[panel.ids.index(d)] for q in picked for d, rel in evalset.qrels[q].items() if rel > 0} <= {1, 2}
    assert panel.relevant_cos > panel.other_cos, "MiniLM already puts queries nearer their relevant documents"
    fig = charts.embedding_map([panel, embedding_map.build_map(evalset, "default", picked, label="again")], "zh-CN")
    assert {"xaxis", "xaxis2"} <= set(fig.layout.to_plotly_json()) and "again" in fig.layout.annotations[1].text
    names = {trace.name for trace in fig.data if trace.showlegend is not False}
    assert {"相关", "查询", "未标注"} <= names
    stars = next(tr for tr in fig.data if tr.name == "查询")
    assert len(stars.x) == 2 and evalset.queries[picked[0]][:20] in "".join(stars.hovertext)
    page = parse(export.write_html(
        build_report(evalset, [RunResult("default", {q: {} for q in evalset.qrels})], (10,))[0],
        tmp_path / "map.html", "en", embedding_map=fig))
    assert page.classes.count("plotly-graph-div") == 2 and "Embedding map (t-SNE)" in " ".join(page.text)


# ------------------------------------------------------------------------------------------------ CLI

def run_cli(tmp_path, *args):
    return CliRunner().invoke(cli, ["--db", str(tmp_path / "s.db"), "eval", "--beir", str(DEMO_DIR), *args],
                              catch_exceptions=False)


def test_cli_eval_writes_html_and_csv_on_the_demo(tmp_path):
    html, table = tmp_path / "report.html", tmp_path / "metrics.csv"
    result = run_cli(tmp_path, "--model", "default", "--model", "default", "--k", "1,10", "--mode", "dense",
                     "--html", str(html), "--csv", str(table), "--lang", "zh-CN", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["mode"] == "dense" and report["queries"] == 30
    assert {w["kind"] for w in report["warnings"]} <= {"low_judged"}, "a model vs itself: nothing worse"
    page = parse(html)
    assert [s for s in page.scripts if s["src"]] == [] and "评估报告" in " ".join(page.text)
    assert f"{report['models'][0]['metrics']['ndcg@10']:.4f}" in " ".join(page.text)
    with open(table, encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    # 4 IR metrics, condensed nDCG, judged share and unjudged count at k = 1 and 10, for two runs
    assert len(rows) == 2 * 14 and {r["delta"] for r in rows if r["baseline"]} == {"0.0"}
    assert {r["metric"] for r in rows[14:] if not r["baseline"]} == {"ndcg_condensed@1", "ndcg_condensed@10", "judged@1",
                                                                "judged@10", "unjudged@1", "unjudged@10"}
    assert len((tmp_path / "metrics.queries.csv").read_text(encoding="utf-8-sig").splitlines()) == 1 + 2 * 30


def test_cli_eval_mode_needs_an_m3_model_and_runs_with_one(tmp_path, tiny_m3):
    refused = run_cli(tmp_path, "--model", "default", "--mode", "sparse")
    assert refused.exit_code == 1 and "'default' is not a BGE-M3 model" in refused.output
    assert "Traceback" not in refused.output
    result = run_cli(tmp_path, "--model", str(tiny_m3), "--mode", "weighted", "--k", "10", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["mode"] == "weighted" and report["weights"] == [0.4, 0.2, 0.4]
    assert report["models"][0]["model"] == f"{tiny_m3} [weighted]"


def test_a_model_evaluated_on_its_own_training_queries_is_flagged(tmp_path):
    """On the project's gold labels a fine-tune has seen the queries it is scored on: the report says so (red in
    ⑧, a line in the CLI and the HTML report) and names the file to leave out."""
    import json

    from studio.evaluation.report import training_overlap, warning_lines
    from studio.evaluation.runner import EvalSet, RunResult

    train = tmp_path / "train.jsonl"
    train.write_text('{"query": "warfarin diet", "pos": ["p"], "neg": ["n"]}\n'
                     '{"query": "not in the evaluation", "pos": ["p"], "neg": ["n"]}\n', encoding="utf-8")
    model = tmp_path / "medical-v1"
    model.mkdir()
    (model / "studio_model.json").write_text(json.dumps({"train": str(train), "valid": None}), encoding="utf-8")
    evalset = EvalSet("gold", {"q1": "warfarin diet", "q2": "statin pain"}, {"d1": "x"}, {"q1": {"d1": 2}, "q2": {"d1": 0}})
    runs = [RunResult("default", {}), RunResult(str(model), {}), RunResult(str(model), {}, stage="reranked")]
    warnings = training_overlap(evalset, runs)
    assert [(w["model"], w["overlap"], w["queries"]) for w in warnings] == [(str(model), 1, 2)]
    line = warning_lines({"warnings": warnings}, "en")[0]
    assert "trained or validated on 1 of these 2 queries (train.jsonl)" in line and "--include-trained" in line
    assert "偏高" in warning_lines({"warnings": warnings}, "zh-CN")[0]
    held_out = EvalSet("gold", {"q2": "statin pain"}, {"d1": "x"}, {"q2": {"d1": 0}})
    assert training_overlap(held_out, runs) == []
    (tmp_path / "train.valid.jsonl").write_text('{"query": "statin pain", "pos": ["p"], "neg": ["n"]}\n',
                                                encoding="utf-8")
    [warning] = training_overlap(evalset, runs)
    assert (warning["overlap"], warning["queries"]) == (2, 2), "the validation twin's queries count too"
    assert "2 of these 2 queries (train.jsonl and train.valid.jsonl)" in warning_lines({"warnings": [warning]}, "en")[0]
    assert training_overlap(held_out, runs)[0]["overlap"] == 1
