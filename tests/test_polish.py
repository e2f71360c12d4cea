"""Rough edges a new user hit in the views (#18): highlighting, singular counts, the Compare picker's order, charts
and Gradio's own texts in the page's language."""

from __future__ import annotations

import json
from types import SimpleNamespace

import plotly.graph_objects as go
import pytest

from studio.dataset.quality import Finding
from studio.i18n import catalogue
from studio.retrieval.tokenize import highlight_terms, tokenize
from studio.ui import render


# ------------------------------------------------------------------------------------------------- highlighting

def test_marks_are_not_shifted_by_a_character_whose_lower_case_is_longer():
    """'İ'.lower() is two characters: matching on a lower-cased copy shifted every mark after it."""
    assert render.highlight("İİİ warfarin and WARFARIN", "warfarin") == \
        "İİİ <mark>warfarin</mark> and <mark>WARFARIN</mark>"
    assert render.highlight("İzmir: <b>Diet</b> with warfarin", "diet warfarin") == \
        "İzmir: &lt;b&gt;<mark>Diet</mark>&lt;/b&gt; with <mark>warfarin</mark>"


def test_chinese_question_words_are_not_highlighted_but_bm25_keeps_them():
    query = "糖尿病的主要并发症有哪些？怎么预防？"
    html = render.highlight("糖尿病有哪些并发症？怎么预防？是否需要吃药", query)
    assert html == "<mark>糖尿病</mark>有哪些<mark>并发症</mark>？怎么<mark>预防</mark>？是否需要吃药"
    assert {"哪些", "有哪", "怎么", "症有"} <= set(tokenize(query)), "BM25's terms are unchanged"
    assert not {"哪些", "有哪", "怎么", "症有"} & set(highlight_terms(query))
    assert highlight_terms("吃什么好") == [], "no lone 吃 or 好 marked all over the document"
    assert highlight_terms("痛") == ["痛"] and highlight_terms("What is warfarin?") == ["warfarin"]


# ------------------------------------------------------------------------------------------------ singular counts

def test_every_singular_has_its_plural_in_both_languages():
    for lang in ("en", "zh-CN"):
        keys = catalogue(lang)
        singular = [k for k in keys if k.endswith("_one")]
        assert singular and all(k.removesuffix("_one") in keys for k in singular)
    assert render.counted("quality.warn_no_positive_queries", 1) == "quality.warn_no_positive_queries_one"
    assert render.counted("quality.warn_no_positive_queries", 2) == "quality.warn_no_positive_queries"
    assert render.counted("quality.warn_no_positive_queries", None) == "quality.warn_no_positive_queries"


@pytest.mark.parametrize("code, params, one, many", [
    ("no_positive_queries", {}, "1 query has no relevant document", "2 queries have no relevant document"),
    ("no_negative_queries", {}, "1 query has no annotated irrelevant document; its", "2 queries have"),
    ("few_triplets", {"minimum": 1000}, "Only 1 training example (", "Only 2 training examples ("),
    ("near_duplicates", {"rate": 0.1, "threshold": 0.05}, "1 labelled document (10.0%) has", "2 labelled documents"),
])
def test_quality_warnings_say_1_query_not_1_queries(code, params, one, many):
    from studio.ui.tabs.data import report_card

    def card(count: int, lang: str) -> str:
        report = SimpleNamespace(counts={"queries": 3, "positives": 1, "partials": 0, "negatives": 1}, triplets=1,
                                 duplicate_rate=0.0, similarity_mean=None, kappa=None, gate_passed=False,
                                 findings=[Finding(code, {"count": count, **params})])
        return report_card(report, {"min_triplets": 1000, "duplicate_rate": 0.05, "pos_neg_similarity": 0.3}, lang)

    assert one in card(1, "en") and many in card(2, "en")
    assert "1 " in card(1, "zh-CN") and "queries" not in card(1, "zh-CN")


def test_evaluation_lines_in_the_singular():
    from studio.evaluation.report import sample_size_line, significance_line, warning_lines
    from studio.ui.tabs.evaluate import summary_html

    rows = [{"significant": i == 0} for i in range(16)]
    report = {"evalset": "demo/test", "queries": 1, "documents": 90, "warnings": [],
              "comparisons": [{"rows": rows, "alpha": 0.05}]}
    assert significance_line(report, "en").startswith("1 of 16 metric changes is significant")
    assert sample_size_line(report, "en").startswith("Only 1 query: too few")
    assert "demo/test: 1 query, 90 documents." in summary_html(report, "en")
    warning = {"kind": "trained_on_eval", "model": "m", "overlap": 1, "queries": 1, "file": "/x/train.jsonl"}
    assert "the one query of this evaluation (train.jsonl)" in warning_lines({"warnings": [warning]}, "en")[0]
    report["queries"] = 2
    assert "demo/test: 2 queries, 90 documents." in summary_html(report, "en")


# ------------------------------------------------------------------------------------------------------- Compare

def test_the_have_a_result_rated_picker_follows_the_ranks_not_the_document_ids():
    from studio.ui.tabs.compare import rated_order

    def hits(*keys):
        return [SimpleNamespace(rank=rank, doc_key=key) for rank, key in enumerate(keys, start=1)]

    assert rated_order(hits("d9", "d2", "d5"), hits("d5", "d1", "d9", "d7")) == ["d9", "d2", "d5", "d1", "d7"]
    assert rated_order(list(reversed(hits("d3", "d1"))), []) == ["d3", "d1"], "by rank, whatever the list order"


def test_compare_offers_the_shown_results_in_rank_order(db_path):
    from studio.actions import Actor, Project, search
    from studio.demo import load_demo
    from studio.store import opened
    from studio.ui.context import UIContext, make_i18n
    from studio.ui.tabs import compare

    with opened(db_path) as db:
        load_demo(db)
    ctx = UIContext(db_path, make_i18n())
    query = "糖尿病患者可以吃水果吗？"
    *_, pick, _ = compare.run_search(ctx, query, "default", "default", 5, "en")
    keys = [key for _, key in pick["choices"]]
    ranked = [h.doc_key for h in search.search(Project(db_path), Actor.local(), query, "default", k=5).side.hits]
    assert keys == ranked and keys != sorted(keys), "as the list shows them, not by document id"


# ------------------------------------------------------------------------------------ Gradio's and Plotly's texts

def test_charts_carry_plotlys_toolbar_texts_in_the_pages_language():
    import gradio as gr

    figure = render.chart(go.Figure(go.Bar(x=["a"], y=[1])), "zh-CN")
    assert isinstance(figure, go.Figure), "still a plotly figure for the code and tests that draw it"
    config = json.loads(gr.Plot().postprocess(figure).plot)["config"]
    assert config["locale"] == "zh-CN" and config["displaylogo"] is False
    dictionary = config["locales"]["zh-CN"]["dictionary"]
    assert dictionary["Zoom"] == "缩放" and dictionary["Pan"] == "平移"
    assert json.loads(render.chart(figure, "en").to_json())["config"]["locales"]["en"]["dictionary"]["Zoom"] == "Zoom"
    assert render.chart(None, "en") is None


def test_gradios_own_keys_the_page_shows_are_in_the_catalogue_it_hands_to_gradio():
    """Gradio's status line says i18n("common.complete"), a key none of its own catalogues has: the page showed
    the bare key. Ours fills it in; the gradio.* keys hold Gradio's hard-coded English labels and their
    translations for the page to swap in."""
    from studio.ui.context import make_i18n

    translations = make_i18n().translations_dict
    assert translations["zh-CN"]["common.complete"] == "完成" and translations["en"]["common.complete"] == "Done"
    assert translations["en"]["gradio.click_to_upload"] == "Click to upload or drop files"
    assert translations["zh-CN"]["gradio.copy_table_data"] == "复制表格数据"
