"""Honest measurement: how much of each ranking was judged (judged@K), condensed nDCG (against ranx on the run with
unjudged documents filtered out), the coverage warning with its pairs to label, the query-count planner in the
report, and CSV cells a spreadsheet cannot run as formulas."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
from click.testing import CliRunner
from ranx import Qrels, Run, evaluate as ranx_evaluate

from studio import csv_safe
from studio.cli import cli
from studio.config import DEMO_DIR
from studio.evaluation import export
from studio.evaluation.metrics import (
    condensed_run, coverage, evaluate, judged_at_k, per_query, unjudged_pairs,
)
from studio.evaluation.report import build_report, planner_line, recommend, warning_lines
from studio.evaluation.runner import EvalSet, RunResult
from test_eval_metrics import _random_case

KS = (1, 3, 5, 10, 20)


# ------------------------------------------------------------------------------------------- judged@K, condensed

def test_judged_at_k_hand_example():
    # ranking a (2), x (unjudged), b (0), y (unjudged); c (1) not retrieved
    qrels = {"q": {"a": 2, "b": 0, "c": 1}, "absent": {"a": 1}, "nothing": {}}
    run = {"q": {"a": 0.9, "x": 0.8, "b": 0.7, "y": 0.6}, "nothing": {"a": 1.0}}
    got = judged_at_k(qrels, run, (1, 2, 3, 4, 10))
    assert got["judged@1"] == {"q": 1.0, "absent": 0.0, "nothing": 0.0}
    assert got["judged@2"]["q"] == 0.5 and got["judged@3"]["q"] == pytest.approx(2 / 3)
    assert got["judged@4"]["q"] == 0.5
    assert got["judged@10"]["q"] == pytest.approx(2 / 10), "a ranking shorter than K still divides by K, as P@K"
    assert unjudged_pairs(qrels, run, 3) == {("q", "x"), ("nothing", "a")}
    assert unjudged_pairs(qrels, run, 10) == {("q", "x"), ("q", "y"), ("nothing", "a")}
    # condensed: a, b (x, y removed) → a at rank 1, as before: the grade-2 document first, then 0
    assert condensed_run(qrels, run) == {"q": {"a": 0.9, "b": 0.7}, "absent": {}, "nothing": {}}


def test_condensed_ndcg_moves_judged_documents_up():
    # ranking x (unjudged), b (1), a (2): nDCG counts x as a miss; condensed puts b at rank 1 and a at rank 2
    qrels = {"q": {"a": 2, "b": 1}}
    run = {"q": {"x": 0.9, "b": 0.8, "a": 0.7}}
    idcg = 2 + 1 / math.log2(3)
    plain = evaluate(qrels, run, (10,))["ndcg@10"]
    got = coverage(qrels, run, (10,))
    assert plain == pytest.approx((1 / math.log2(3) + 2 / 2) / idcg)
    assert got["ndcg_condensed@10"] == pytest.approx((1 + 2 / math.log2(3)) / idcg)
    assert got["ndcg_condensed@10"] > plain
    assert got["judged@10"] == pytest.approx(2 / 10)
    full = {"q": {"b": 0.8, "a": 0.7}}
    assert coverage(qrels, full, (10,))["ndcg_condensed@10"] == pytest.approx(evaluate(qrels, full, (10,))["ndcg@10"])


@pytest.mark.parametrize("seed", range(8))
def test_condensed_ndcg_equals_ranx_on_the_run_without_unjudged_documents(seed):
    """ranx knows nothing of condensed lists: scoring it on the run with unjudged documents filtered out is an
    independent implementation; judged@K is checked against a plain loop over the rankings."""
    qrels, run = _random_case(seed)
    filtered = {q: {d: s for d, s in sorted(docs.items()) if d in qrels.get(q, {})} for q, docs in run.items()}
    names = [f"ndcg@{k}" for k in KS]
    ranx_run = Run(filtered)
    ranx_means = ranx_evaluate(Qrels(qrels), ranx_run, names, make_comparable=True)
    got = coverage(qrels, run, KS)
    ours = per_query(qrels, condensed_run(qrels, run), KS, ("ndcg",))
    for k in KS:
        assert got[f"ndcg_condensed@{k}"] == pytest.approx(ranx_means[f"ndcg@{k}"], abs=1e-9)
        for qid in qrels:
            assert ours[f"ndcg@{k}"][qid] == pytest.approx(ranx_run.scores[f"ndcg@{k}"][qid], abs=1e-9)
        loop = []
        for qid, judged in qrels.items():
            top = sorted(run.get(qid, {}).items(), key=lambda item: (-item[1], item[0]))[:k]
            loop.append(sum(doc in judged for doc, _ in top) / k)
        assert got[f"judged@{k}"] == pytest.approx(np.mean(loop), abs=1e-12)
        assert got[f"ndcg_condensed@{k}"] >= evaluate(qrels, run, (k,))[f"ndcg@{k}"] - 1e-12
    assert evaluate(qrels, run, KS) == pytest.approx(evaluate(qrels, run, KS)), "evaluate() unchanged: 4 metrics"
    assert set(evaluate(qrels, run, (10,))) == {"p@10", "recall@10", "mrr@10", "ndcg@10"}


# --------------------------------------------------------------------------------------------- report, warning

def two_systems(n: int = 30, judged_extra: int = 8) -> tuple[EvalSet, list[RunResult]]:
    """System "full": relevant document first, then `judged_extra` judged-0 documents and unjudged ones;
    system "sparse": the same relevant document first, then only unjudged documents."""
    corpus = {f"d{j:03d}": f"document {j}" for j in range(40)}
    queries = {f"q{i:02d}": f"query {i}" for i in range(n)}
    qrels = {}
    full, sparse = {}, {}
    for i, q in enumerate(queries):
        rel = f"d{i:03d}"
        zeros = [f"d{(i + 1 + j) % 40:03d}" for j in range(judged_extra)]
        qrels[q] = {rel: 2, **{d: 0 for d in zeros}}
        others = [d for d in corpus if d != rel and d not in zeros]
        full[q] = {d: 20.0 - r for r, d in enumerate([rel, *zeros, *others][:15])}
        sparse[q] = {d: 20.0 - r for r, d in enumerate([*others[:1], rel, *others[1:14]])}
    runs = [RunResult("full", full, group=0), RunResult("sparse", sparse, group=1)]
    return EvalSet("toy", queries, corpus, qrels), runs


def test_report_metrics_carry_judged_and_condensed_beside_ndcg_never_in_comparisons():
    evalset, results = two_systems()
    report, comparisons = build_report(evalset, results, (1, 10))
    full, sparse = report["models"]
    assert list(full["metrics"])[-4:] == ["ndcg_condensed@1", "ndcg_condensed@10", "judged@1", "judged@10"]
    assert full["metrics"]["judged@10"] == pytest.approx(0.9) and sparse["metrics"]["judged@10"] == pytest.approx(0.1)
    assert full["unjudged"] == {"1": 0, "10": 30} and sparse["unjudged"] == {"1": 30, "10": 270}
    assert sparse["metrics"]["ndcg_condensed@10"] == 1.0 > sparse["metrics"]["ndcg@10"]
    metrics = {row["metric"] for c in report["comparisons"] for row in c["rows"]}
    assert metrics == {f"{m}@{k}" for m in ("p", "recall", "mrr", "ndcg") for k in (1, 10)}, "4 IR metrics only"
    assert len(comparisons[0].rows) == 8


def test_a_poorly_judged_system_is_warned_about_with_both_readings_and_the_fix():
    evalset, results = two_systems()
    report, _ = build_report(evalset, results, (10,))
    [warning] = [w for w in report["warnings"] if w["kind"] == "low_judged"]
    assert warning["model"] == "sparse" and warning["significant"] is False, "a caution, never red"
    assert (warning["judged"], warning["best_judged"], warning["best_model"]) == (pytest.approx(0.1),
                                                                                  pytest.approx(0.9), "full")
    assert warning["unjudged"] == 270 and warning["ndcg_condensed"] == 1.0
    assert warning["ndcg"] == pytest.approx(report["models"][1]["metrics"]["ndcg@10"])
    lines = warning_lines(report, "en")
    assert len(lines) == len(report["warnings"]), "one line per warning: the UI zips them"
    [en] = [line for line in lines if "gold label" in line]
    assert en.startswith("⚠ Only 10 % of sparse's top-10 documents have a gold label, against 90 % for full")
    assert "270 unjudged query–document pairs" in en and f"{warning['ndcg']:.3f}" in en and "1.000" in en
    assert 'studio pool --system "sparse" --depth 10 --unjudged (or ⑧\'s button)' in en
    [zh] = [line for line in warning_lines(report, "zh-CN") if "金标准" in line]
    assert "270 个未标注的查询–文档对" in zh and "压缩 nDCG@10" in zh and "送入标注队列" in zh


@pytest.mark.parametrize("extra, warned", [(8, {"sparse"}), (7, {"sparse"}), (9, set())])
def test_the_warning_thresholds(extra, warned):
    """full's judged@10 is (1 + extra) / 10: 0.9 passes, 0.8 is below 0.9; sparse (0.1) is always warned about."""
    evalset, results = two_systems(judged_extra=extra)
    if not warned:  # both fully judged: sparse takes full's ranking
        results = [results[0], RunResult("copy", results[0].run, group=1)]
    report, _ = build_report(evalset, results, (10,))
    flagged = {w["model"] for w in report["warnings"] if w["kind"] == "low_judged"}
    assert flagged == (warned | ({"full"} if extra < 8 else set()))


def test_how_far_behind_the_best_covered_system_is_said_only_when_it_is():
    evalset, results = two_systems(judged_extra=9)  # full: 100 % judged
    runs = {q: dict(docs) for q, docs in results[0].run.items()}
    for i, q in enumerate(runs):  # one unjudged document at rank 2 everywhere, a second at rank 3 in half
        runs[q][f"x{i}"] = 19.5
        if i % 2:
            runs[q][f"y{i}"] = 19.4
    report, _ = build_report(evalset, [results[0], RunResult("mostly", runs, group=1)], (10,))
    [warning] = [w for w in report["warnings"] if w["kind"] == "low_judged"]
    assert warning["model"] == "mostly" and warning["judged"] == pytest.approx(0.85) and warning["unjudged"] == 45
    assert ", against 100 % for full: its 45 unjudged" in warning_lines(report, "en")[-1]
    alone, _ = build_report(evalset, [results[1]], (10,))
    [line] = warning_lines(alone, "en")
    assert line.startswith("⚠ Only 10 % of sparse's top-10 documents have a gold label: its 270 unjudged")
    for q in list(runs)[1::2]:
        del runs[q][f"y{list(runs).index(q)}"]
    report, _ = build_report(evalset, [results[0], RunResult("mostly", runs, group=1)], (10,))
    assert report["models"][1]["metrics"]["judged@10"] == pytest.approx(0.9)
    assert report["warnings"] == [], "90 % judged, 10 points behind: no warning"
    short = {q: dict([(d, s) for d, s in docs.items() if d in evalset.qrels[q]][:3])
             for q, docs in results[0].run.items()}
    report, _ = build_report(evalset, [RunResult("short", short)], (10,))
    assert report["models"][0]["metrics"]["judged@10"] == pytest.approx(0.3)
    assert report["warnings"] == [], "3 documents per query, all judged: nDCG@10 is exact, nothing to label"


def test_html_and_csv_show_coverage_and_the_warning_in_amber(tmp_path):
    evalset, results = two_systems()
    report, _ = build_report(evalset, results, (10,))
    html = export.render_html(report, "en")
    assert "judged@10" in html and "ndcg_condensed@10" in html and "unjudged@10" in html
    assert '<div class="caution">⚠ Only 10 %' in html, "a coverage caution is amber, not a red warning"
    assert '<div class="warning">⚠ sparse is worse than full' in html, "the worse comparison stays red"
    assert "judged@K: share of the top K" in html
    assert "judged@K：前 K 个结果" in export.render_html(report, "zh-CN")
    with open(export.write_csv(report, tmp_path / "m.csv"), encoding="utf-8-sig", newline="") as f:
        rows = {(r["model"], r["metric"]): r for r in csv.DictReader(f)}
    assert float(rows[("sparse", "judged@10")]["value"]) == pytest.approx(0.1)
    assert rows[("sparse", "unjudged@10")]["value"] == "270" and rows[("sparse", "unjudged@10")]["k"] == "10"
    assert rows[("sparse", "judged@10")]["delta"] == "" and rows[("sparse", "ndcg@10")]["baseline"] == "full"
    assert float(rows[("sparse", "ndcg_condensed@10")]["value"]) == 1.0


# ---------------------------------------------------------------------------------------------------- planner

def test_recommend_plans_the_query_count_from_the_top_two_systems():
    evalset, results = two_systems()
    rec = recommend(evalset, results, (10,))
    plan = rec["planner"]
    best, runner_up = (results[0], results[1]) if rec["spec"] == "full" else (results[1], results[0])
    d = [a - b for a, b in zip(per_query(evalset.qrels, best.run, (10,), ("ndcg",))["ndcg@10"].values(),
                               per_query(evalset.qrels, runner_up.run, (10,), ("ndcg",))["ndcg@10"].values())]
    assert plan["queries"] == 30 and plan["observed_delta"] == pytest.approx(rec["delta"])
    # every query differs by the same amount: no spread, so no count can be told
    assert np.std(d) < 1e-12 and plan["reason"] == "no_spread" and plan["needed_observed"] is None
    assert planner_line({"recommendation": rec}, "en") == ("You have 30 queries; the two best systems differ by the "
                                                           "same amount on every one of them, so how many queries a "
                                                           "t-test needs cannot be told.")
    assert recommend(evalset, results[:1], (10,))["planner"] is None
    assert planner_line({"recommendation": None}, "en") is None and planner_line({}, "en") is None


def test_planner_sentence_in_both_languages_and_in_the_html(tmp_path):
    rng = np.random.default_rng(0)
    evalset, results = two_systems(60)
    noisy = {q: {d: s + float(rng.normal(0, 3)) for d, s in docs.items()} for q, docs in results[0].run.items()}
    rec = recommend(evalset, [results[0], RunResult("noisy", noisy, group=1)], (10,))
    plan = rec["planner"]
    assert plan["reason"] is None and plan["sd"] > 0 and plan["needed_0.02"] > plan["needed_observed"] >= 2
    report = {"recommendation": rec}
    en = planner_line(report, "en")
    assert en == (f"You have 60 queries; about {plan['needed_0.02']:,} would be needed to tell a 0.02 difference "
                  f"(80 % power, α = 0.05), and about {plan['needed_observed']:,} to confirm the observed "
                  f"{plan['observed_delta']:.3f} one.")
    zh = planner_line(report, "zh-CN")
    assert zh.startswith("你有 60 个查询；要分辨 0.02 的差异（80% 统计功效，α = 0.05）")
    tie = {**rec, "planner": {**plan, "observed_delta": 0.0, "needed_observed": None, "reason": "no_difference"}}
    assert "tie on average" in planner_line({"recommendation": tie}, "en")
    full, _ = build_report(evalset, [results[0], RunResult("noisy", noisy, group=1)], (10,))
    full.update(recommended=rec["spec"], recommendation=rec)
    assert en in export.render_html(full, "en")


def test_cli_eval_prints_the_planner_after_the_recommendation(tmp_path):
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "s.db"), "eval", "--beir", str(DEMO_DIR),
                                      "--system", "bm25", "--system", "default", "--k", "10"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    best = next(i for i, line in enumerate(lines) if line.startswith("Best on these 30 queries"))
    assert lines[best + 1].startswith("You have 30 queries; about ")
    assert any(line.startswith("judged@10") for line in lines)


# ---------------------------------------------------------------------------------------------- CSV injection

@pytest.mark.parametrize("value, expected", [
    ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'), ("+1", "'+1"), ("-cmd", "'-cmd"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("plain", "plain"), ("", ""), (-0.03, -0.03), (-2, -2), (None, None)])
def test_safe_cell_neutralises_formula_text_only(value, expected):
    assert csv_safe.safe_cell(value) == expected


def test_safe_writers_keep_negative_numbers_numbers():
    out = io.StringIO()
    csv_safe.writer(out).writerows([["=1+1", -0.03, "ok"]])
    dict_out = io.StringIO()
    w = csv_safe.dict_writer(dict_out, ["a", "b"])
    w.writeheader()
    w.writerows([{"a": "-x", "b": -1.5}])
    assert out.getvalue() == "'=1+1,-0.03,ok\r\n"
    assert dict_out.getvalue() == "a,b\r\n'-x,-1.5\r\n"


def test_report_csvs_neutralise_names_and_query_texts(tmp_path):
    evalset, results = two_systems()
    results[1].model = "=cmd|' /C calc'!A0"
    evalset.queries["q00"] = "@SUM(1+1)"
    report, _ = build_report(evalset, results, (10,))
    with open(export.write_csv(report, tmp_path / "m.csv"), encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["model"] for r in rows} == {"full", "'=cmd|' /C calc'!A0"}
    negative = [r for r in rows if r["delta"].startswith("-")]
    assert negative and all(float(r["delta"]) < 0 for r in negative), "a negative delta is still a number"
    path = export.write_queries_csv(report, tmp_path / "q.csv", evalset.queries)
    with open(path, encoding="utf-8-sig", newline="") as f:
        texts = {r["query"] for r in csv.DictReader(f)}
    assert "'@SUM(1+1)" in texts and "query 1" in texts
