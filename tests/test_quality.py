from __future__ import annotations

import json

import pytest

from studio.records import GoldSet
from studio.dataset.quality import THRESHOLDS, Finding, QualityReport, _tfidf, quality_report, similar_pairs
from studio.errors import StudioError

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu amber bronze cobalt copper").split()
MANY = [f"{a}{b}" for a in WORDS[:10] for b in WORDS[:8]]  # 80 distinct words


def make_gold(labels: dict[str, dict[str, int]], docs: dict[str, str], queries: dict[str, str] | None = None,
              extra_docs: dict[str, str] | None = None) -> GoldSet:
    """A GoldSet over `labels`; queries default to "query <id>", `extra_docs` are unlabelled corpus documents."""
    queries = queries or {q: f"query {q}" for q in labels}
    return GoldSet(queries=queries, corpus={**docs, **(extra_docs or {})}, labels=labels)


def report_for(gold: GoldSet, kappa: float | None = 0.8, **kwargs) -> QualityReport:
    return quality_report(gold, kappa=kappa, **kwargs)


def codes(report: QualityReport) -> set[str]:
    return {f.code for f in report.findings}


def finding(report: QualityReport, code: str) -> Finding:
    return next(f for f in report.findings if f.code == code)


def pos_neg(positive: str, negative: str) -> GoldSet:
    """One query with one positive and one negative document."""
    return make_gold({"q": {"p": 2, "n": 0}}, {"p": positive, "n": negative})


def test_counts():
    gold = make_gold(
        {"q1": {"d1": 2, "d2": 1, "d3": 0}, "q2": {"d1": 0, "d4": 0}, "q3": {"d5": 2}, "q4": {}},
        {f"d{i}": f"document {WORDS[i]}" for i in range(1, 6)},
        extra_docs={"d6": "unlabelled", "d7": "also unlabelled"},
    )
    assert report_for(gold).counts == {
        "queries": 3, "labelled_pairs": 6, "positives": 2, "partials": 1, "negatives": 3, "documents": 7,
        "labelled_documents": 5, "queries_without_positive": 1, "queries_without_negative": 1,
    }


def test_queries_without_positive_or_negative_are_findings():
    gold = make_gold({"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}, "q3": {"d4": 2}},
                     {f"d{i}": WORDS[i] for i in range(1, 5)})
    report = report_for(gold)
    assert finding(report, "no_positive_queries").params == {"count": 1}
    assert finding(report, "no_negative_queries").params == {"count": 2}


def test_duplicate_rate_counts_normalised_pairs_beyond_the_first():
    gold = make_gold({"q1": {"d1": 2, "d3": 0}, "q2": {"d2": 2}},
                     {"d1": "Thirst and  fatigue", "d2": "thirst and fatigue ", "d3": "unrelated text"},
                     queries={"q1": "Diabetes  symptoms", "q2": "diabetes symptoms"})
    report = report_for(gold)
    assert report.duplicate_rate == pytest.approx(1 / 3)
    assert finding(report, "duplicates").params == {"rate": 0.333, "threshold": 0.05}


def test_no_duplicates_no_finding():
    gold = make_gold({"q1": {"d1": 2, "d2": 0}}, {"d1": "one text", "d2": "another text"})
    report = report_for(gold)
    assert report.duplicate_rate == 0
    assert "duplicates" not in codes(report)


@pytest.mark.parametrize(("second", "expected"), [
    (" ".join(MANY[:-1] + ["different"]), 2),  # one word of eighty changed
    (" ".join(MANY).upper(), 2),  # same normalised text
    (" ".join(MANY[:40]), 0),  # half of the text
    ("completely unrelated words about cooking pasta", 0),
])
def test_near_duplicate_documents(second, expected):
    docs = {"a": " ".join(MANY), "b": second, "c": "medicine dosage table", "d": "football league results"}
    gold = make_gold({"q1": {"a": 2, "c": 0}, "q2": {"b": 2, "d": 0}}, docs)
    report = report_for(gold)
    assert report.near_duplicate_documents == expected
    assert report.near_duplicate_rate == pytest.approx(expected / 4)
    if expected:
        assert finding(report, "near_duplicates").params == {"count": expected, "rate": expected / 4,
                                                              "threshold": 0.05}
    else:
        assert "near_duplicates" not in codes(report)


def test_near_duplicates_over_several_chunks(monkeypatch):
    from studio.dataset import quality

    monkeypatch.setattr(quality, "_PAIR_BATCH", 1)  # one candidate pair per batch
    docs = {f"d{i}": f"{WORDS[i]} {WORDS[i + 1]} {WORDS[i + 2]}" for i in range(10)}
    docs["d9"] = docs["d2"]
    gold = make_gold({"q": {d: 2 for d in docs}}, docs)
    assert report_for(gold).near_duplicate_documents == 2


@pytest.mark.parametrize(("positive", "negative", "low", "high"), [
    ("insulin lowers blood sugar", "insulin lowers blood sugar", 0.999, 1.0),  # identical → 1
    ("insulin lowers blood sugar quickly", "insulin lowers blood sugar slowly", 0.3, 0.999),
    ("insulin lowers blood sugar", "football league results today", 0.0, 0.0),
    ("糖尿病患者需要控制血糖", "糖尿病患者需要控制血糖", 0.999, 1.0),  # Chinese: bigrams, not one token
    ("糖尿病患者需要控制血糖", "今天北京天气晴朗", 0.0, 0.2),
])
def test_positive_negative_similarity(positive, negative, low, high):
    report = report_for(pos_neg(positive, negative))
    assert low - 1e-9 <= report.similarity_mean <= high + 1e-9
    assert report.similarity_max == pytest.approx(report.similarity_mean)
    assert ("similarity" in codes(report)) == (report.similarity_mean > THRESHOLDS["pos_neg_similarity"])


def test_similarity_is_mean_of_per_query_means_sorted_descending():
    gold = make_gold(
        {"same": {"p1": 2, "n1": 0}, "mixed": {"p2": 2, "n2": 0, "n3": 0}, "only_pos": {"p3": 2}},
        {"p1": "kidney stones", "n1": "kidney stones", "p2": "heart attack", "n2": "heart attack",
         "n3": "garden flowers", "p3": "whatever"},
    )
    report = report_for(gold)
    assert [s["query_id"] for s in report.similarity_by_query] == ["same", "mixed"]
    assert [s["mean"] for s in report.similarity_by_query] == pytest.approx([1.0, 0.5])
    assert report.similarity_by_query[1]["max"] == pytest.approx(1.0)
    assert report.similarity_by_query[0]["query"] == "query same"
    assert report.similarity_mean == pytest.approx(0.75)
    assert finding(report, "similarity").params == {"mean": 0.75, "threshold": 0.3}


def test_similarity_undefined_without_positive_and_negative_for_a_query():
    report = report_for(make_gold({"q1": {"d1": 2}, "q2": {"d2": 0}}, {"d1": "one", "d2": "two"}))
    assert report.similarity_mean is None and report.similarity_max is None
    assert report.similarity_by_query == []
    assert "similarity" not in codes(report)


def test_few_triplets():
    gold = make_gold({"q1": {"d1": 2, "d2": 2, "d3": 0}, "q2": {"d4": 1}}, {f"d{i}": WORDS[i] for i in range(1, 5)})
    report = report_for(gold)
    assert report.triplets == 2
    assert finding(report, "few_triplets").params == {"count": 2, "minimum": 1000}


def test_enough_triplets_no_finding():
    labels = {f"q{i}": {f"d{i}a": 2, f"d{i}b": 2, f"d{i}c": 0} for i in range(500)}
    docs = {d: f"{d} text" for q in labels.values() for d in q}
    report = report_for(make_gold(labels, docs))
    assert report.triplets == 1000
    assert "few_triplets" not in codes(report)


def test_triplets_need_a_negative_candidate_in_the_corpus():
    # The corpus holds only the query's positives: no negative can be annotated or mined.
    report = report_for(make_gold({"q": {"d1": 2, "d2": 2}}, {"d1": "one", "d2": "two"}))
    assert report.triplets == 0


@pytest.mark.parametrize(("kappa", "passed", "code", "params"), [
    (0.5, False, "gate_failed", {"kappa": 0.5, "gate": 0.6}),
    (0.12345, False, "gate_failed", {"kappa": 0.123, "gate": 0.6}),
    (0.6, True, None, None),
    (0.7, True, None, None),
    (None, False, "gate_undefined", {}),
])
def test_kappa_gate(kappa, passed, code, params):
    report = report_for(pos_neg("one", "two"), kappa=kappa)
    assert report.kappa == kappa
    assert report.gate_passed is passed
    assert codes(report) & {"gate_failed", "gate_undefined"} == ({code} if code else set())
    if code:
        assert finding(report, code).params == params


def test_token_lengths_with_the_embedded_tokenizer():
    long_doc = " ".join(WORDS[i % len(WORDS)] for i in range(600))
    gold = make_gold({"q1": {"long": 2, "short": 0}, "q2": {"short": 2, "other": 0}},
                     {"long": long_doc, "short": "a short document", "other": "another one"},
                     queries={"q1": "short query", "q2": " ".join(["word"] * 200)})
    report = report_for(gold)
    lengths = report.lengths
    assert lengths["document_max_length"] == 256  # max_seq_length of the embedded model's sentence_bert_config
    assert lengths["query_max_length"] == 128
    assert lengths["document_tokens"][0] > 600  # "long" sorts first; counted without truncation
    assert all(n > 2 for n in lengths["document_tokens"])  # [CLS] and [SEP] are counted
    assert lengths["documents_truncated"] == pytest.approx(1 / 3)
    assert lengths["queries_truncated"] == pytest.approx(1 / 2)
    assert lengths["model"].endswith("model")
    assert finding(report, "truncation").params == {"rate": 0.333, "max_length": 256}


def test_explicit_max_lengths():
    report = report_for(pos_neg("one two three four five six", "seven"), query_max_length=2,
                        document_max_length=4)
    assert report.lengths["document_max_length"] == 4
    assert report.lengths["documents_truncated"] == 0.5
    assert report.lengths["queries_truncated"] == 1.0


def test_missing_model():
    with pytest.raises(StudioError) as err:
        report_for(pos_neg("one", "two"), model="/nonexistent/model/folder")
    assert err.value.code == "model_missing"


def test_progress_stages():
    calls = []
    report_for(pos_neg("one", "two"), progress=lambda fraction, stage: calls.append((fraction, stage)))
    stages = [stage for _, stage in calls]
    assert stages[0] == "tfidf" and "tokens" in stages and stages[-1] == "done"
    fractions = [fraction for fraction, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_as_dict_is_json_serialisable():
    gold = make_gold({"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}},
                     {"d1": "糖尿病 diabetes", "d2": "糖尿病 diabetes", "d3": "x"})
    data = json.loads(json.dumps(report_for(gold, kappa=None).as_dict()))
    assert data["findings"][0].keys() == {"code", "params"}
    assert data["counts"]["queries"] == 2


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_every_finding_formats_in_the_catalogue(lang):
    from studio.i18n import t

    long_doc = " ".join(MANY * 5)
    gold = make_gold({"q1": {"a": 2, "b": 0}, "q2": {"c": 1}, "q3": {"a": 2}},
                     {"a": long_doc, "b": long_doc, "c": "other"}, queries={"q1": "x", "q2": "x", "q3": "x"})
    for kappa, gate in ((0.2, "gate_failed"), (None, "gate_undefined")):
        report = report_for(gold, kappa=kappa)
        assert codes(report) == {"duplicates", "near_duplicates", "similarity", "few_triplets", gate,
                                 "no_positive_queries", "no_negative_queries", "truncation"}
        for f in report.findings:
            assert "{" not in t(f"quality.warn_{f.code}", lang, **f.params)


@pytest.mark.parametrize("labels", [{}, {"q1": {}}])
def test_no_gold(labels):
    with pytest.raises(StudioError) as err:
        quality_report(make_gold(labels, {"d1": "text"}), kappa=None)
    assert err.value.code == "no_gold"


# --- the near-duplicate scan is exact and near-linear (prefix filter + exact cosine) --------------------------

EN_LINES = [" ".join(MANY[(i * 7 + k) % 80] for k in range(30)) + f" page{i} section{i % 7}" for i in range(20)]
_ZH = ["糖尿病患者需要控制血糖并且定期复查肾功能", "今天北京天气晴朗适合户外运动和散步",
       "高血压病人应当减少食盐摄入保持规律作息", "儿童接种流感疫苗可以降低住院的风险",
       "长期失眠可能与焦虑抑郁以及甲状腺疾病有关", "偏头痛发作时应避免强光和噪音刺激"]
ZH_LINES = [_ZH[i] + "，" + _ZH[(i + 1) % 6] for i in range(6)]


def planted(extra: int = 0) -> list[str]:
    """English and Chinese texts with planted near-duplicates (a word or character changed, case, a word added),
    exact copies, a half copy (not near), and `extra` distinct filler documents."""
    base = EN_LINES[:20] + ZH_LINES
    near = [EN_LINES[0].replace(MANY[4], ""), EN_LINES[1].upper(), EN_LINES[2] + " extra",
            ZH_LINES[0][:-1] + "名", ZH_LINES[1] + "吧", EN_LINES[3], ZH_LINES[2],
            " ".join(EN_LINES[4].split()[:18])]
    filler = [f"filler{i} topic{i // 3} note{i * 7} entry{i}x word{i}y" for i in range(extra)]
    return base + near + filler


def exact_pairs(texts: list[str], threshold: float = THRESHOLDS["near_duplicate_cosine"]) -> set[tuple[int, int]]:
    """Every pair of rows at or above `threshold`, from the dense all-pairs cosine matrix."""
    vectors = _tfidf(texts, [])
    cosine = (vectors @ vectors.T).toarray()
    return {(i, j) for i in range(len(texts)) for j in range(i + 1, len(texts)) if cosine[i, j] >= threshold}


def test_similar_pairs_are_the_exact_pairs_english_and_chinese():
    texts = planted(extra=30)
    found = similar_pairs(_tfidf(texts, []), THRESHOLDS["near_duplicate_cosine"])
    expected = exact_pairs(texts)
    assert found.row_pairs() == expected
    planted_pairs = {(0, 26), (1, 27), (2, 28), (20, 29), (21, 30), (3, 31), (22, 32)}
    assert planted_pairs <= expected  # the planted ones are there, in both languages
    assert not any(33 in pair for pair in expected)  # eighteen of thirty-two words is not a near-duplicate
    flagged = {row for pair in expected for row in pair}
    assert found.flagged.nonzero()[0].tolist() == sorted(flagged)


@pytest.mark.parametrize("threshold", [0.5, 0.8, 0.95, 0.99])
def test_similar_pairs_exact_at_any_threshold(threshold):
    texts = planted(extra=20) + [f"{MANY[i]} {MANY[i + 1]} {MANY[i + 2]} {MANY[i + 3]}" for i in range(40)]
    assert similar_pairs(_tfidf(texts, []), threshold).row_pairs() == exact_pairs(texts, threshold)


def test_identical_rows_are_grouped_not_compared():
    texts = ["alpha bravo charlie"] * 50 + ["delta echo foxtrot", "golf hotel india"]
    found = similar_pairs(_tfidf(texts, []), THRESHOLDS["near_duplicate_cosine"])
    assert found.comparisons == 0
    assert found.flagged.tolist() == [True] * 50 + [False, False]
    assert len(found.row_pairs()) == 50 * 49 // 2


@pytest.mark.parametrize("texts", [[], ["only one document here"], ["", ""], ["the of and", "a"]])
def test_similar_pairs_on_empty_one_or_termless_documents(texts):
    found = similar_pairs(_tfidf(texts, []), THRESHOLDS["near_duplicate_cosine"])
    assert found.comparisons == 0 and found.row_pairs() == set()
    assert found.flagged.tolist() == [False] * len(texts)


def test_one_labelled_document():
    report = report_for(make_gold({"q": {"d": 2}}, {"d": "the only labelled document"}))
    assert report.near_duplicate_documents == 0 and report.near_duplicate_rate == 0


def test_exact_comparisons_grow_linearly():
    """Twice the distinct documents, the same planted near-duplicates: about twice the exact cosines, not four."""
    small, large = planted(extra=400), planted(extra=800)
    threshold = THRESHOLDS["near_duplicate_cosine"]
    found_small, found_large = (similar_pairs(_tfidf(t, []), threshold) for t in (small, large))
    assert found_small.row_pairs() == found_large.row_pairs()  # fillers are never near-duplicates
    assert found_small.comparisons >= 7  # the planted pairs are verified
    assert found_large.comparisons <= 2 * found_small.comparisons + 10
    assert found_large.comparisons < len(large) // 10  # far from the n² / 2 of the scan it replaced
