"""Tests for the file readers in studio.ingest: formats, line numbers and error codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.errors import InputError
from studio.ingest import read_any, read_beir, read_logs, read_pairs, read_ratings
from studio.ingest.records import Document, Query

PAIRS = [
    {"query_id": "q1", "query": "如何重置密码", "doc_id": "d1", "title": "账户",
     "document": "在设置页面点击“忘记密码”。"},
    {"query_id": "q2", "query": "refund policy", "doc_id": 7, "document": "Refunds within 30 days."},
]


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def delimited(rows: list[dict], sep: str) -> str:
    columns = ["query_id", "query", "doc_id", "title", "document"]
    lines = [sep.join(columns)] + [sep.join(str(row.get(c, "")) for c in columns) for row in rows]
    return "\n".join(lines) + "\n"


FORMATS = {
    "pairs.csv": lambda rows: delimited(rows, ","),
    "pairs.tsv": lambda rows: delimited(rows, "\t"),
    "pairs.tab": lambda rows: delimited(rows, "\t"),
    "pairs.jsonl": lambda rows: "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
    # One object per line, after the opening "[" on line 1, so line numbers match the other formats.
    "pairs.json": lambda rows: "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n]\n",
}


def raises(code: str, func, *args, **kwargs) -> InputError:
    with pytest.raises(InputError) as err:
        func(*args, **kwargs)
    assert err.value.code == code, err.value.message()
    return err.value


# --- read_pairs: formats ------------------------------------------------------------------------


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("bom", [False, True])
def test_read_pairs_formats(tmp_path, name, bom):
    content = ("\ufeff" if bom else "") + FORMATS[name](PAIRS)
    path = write(tmp_path / name, content)
    batch = read_pairs(path)
    assert (batch.source, batch.file) == ("import", str(path))
    first_line = 1 if name.endswith(".jsonl") else 2  # the others have a header or an opening "["
    assert [p.line for p in batch.pairs] == [first_line, first_line + 1]
    first, second = batch.pairs
    assert first.query == Query("如何重置密码", key="q1")
    assert first.document == Document("在设置页面点击“忘记密码”。", key="d1", title="账户")
    assert second.document == Document("Refunds within 30 days.", key="7", title="")
    assert (second.annotator, second.rating, second.reference_label, second.hint) == (None, None, None, None)


def test_read_pairs_optional_columns_and_whitespace(tmp_path):
    path = write(tmp_path / "p.csv", "query,document\n  hello  , world \n")
    (pair,) = read_pairs(path).pairs
    assert pair.query == Query("hello") and pair.document == Document("world")


def test_quoted_csv_field_with_comma_and_newline(tmp_path):
    path = write(tmp_path / "p.csv", 'query,document\nq1,"first, part\nsecond part"\nq2,\n')
    err = raises("empty_text", read_pairs, path)
    assert (err.line, err.field) == (4, "document")
    path = write(tmp_path / "p.csv", 'query,document\r\nq1,"first, part\r\nsecond part"\r\nq2,d2\r\n')
    first, second = read_pairs(path).pairs
    assert first.document.text == "first, part\r\nsecond part"
    assert (first.line, second.line) == (2, 4)


def test_blank_lines_are_skipped(tmp_path):
    content = '\n{"query": "a", "document": "b"}\n   \n{"query": "c", "document": "d"}\n'
    path = write(tmp_path / "p.jsonl", content)
    assert [p.line for p in read_pairs(path).pairs] == [2, 4]


# --- read_pairs / read_ratings: errors ----------------------------------------------------------


@pytest.mark.parametrize("name, content, code, line, field", [
    ("p.csv", "query,doc\nq,d\n", "missing_column", 1, "document"),
    ("p.tsv", "document\td\n", "missing_column", 1, "query"),
    ("p.csv", "query,document\nq,d\nq2\n", "missing_field", 3, "document"),
    ("p.jsonl", '{"query": "q", "document": "d"}\n{"query": "q"}\n', "missing_field", 2, "document"),
    ("p.jsonl", '{"query": null, "document": "d"}\n', "missing_field", 1, "query"),
    ("p.csv", "query,document\nq,d\n   ,d\n", "empty_text", 3, "query"),
    ("p.json", '[{"query": "q", "document": "d"},\n\n {"query": "q", "document": " "}]',
     "empty_text", 3, "document"),
    ("p.jsonl", '{"query": 5, "document": "d"}\n', "bad_type", 1, "query"),
    ("p.jsonl", '{"query": "q", "document": "d", "doc_id": [1]}\n', "bad_type", 1, "doc_id"),
    ("p.csv", "query,document\nq,d,extra\n", "bad_type", 2, None),
    ("p.jsonl", '{"query": "q", "document": "d"}\n{"query": "q", "document": }\n', "bad_json", 2, None),
    ("p.jsonl", '{"query": "q", "document": "d"}\n["q", "d"]\n', "not_object", 2, None),
    ("p.json", '[\n  {"query": "q", "document": "d"},\n  "x"\n]', "not_object", 3, None),
    ("p.json", '[\n  {"query": "q", "document": "d"}\n  {"query": "q"}\n]', "bad_json", 3, None),
    ("p.json", '{"query": "q", "document": "d"}', "bad_type", 1, None),
    ("p.csv", "query,document\n", "no_rows", None, None),
    ("p.jsonl", "\n\n", "no_rows", None, None),
    ("p.json", "[]", "no_rows", None, None),
    ("p.csv", b"query,document\nq,d\nq,\xff\xfe bad\n", "invalid_utf8", 3, None),
    ("p.jsonl", b'{"query": "q", "document": "d"}\n\n{"query": "\xc3\x28"}\n', "invalid_utf8", 3, None),
])
def test_read_pairs_errors(tmp_path, name, content, code, line, field):
    path = write(tmp_path / name, content)
    err = raises(code, read_pairs, path)
    assert (err.file, err.line, err.field) == (str(path), line, field)


def test_unknown_format_and_missing_file(tmp_path):
    err = raises("unknown_format", read_pairs, write(tmp_path / "p.txt", "query,document\n"))
    assert err.params == {"suffix": ".txt"}
    missing = tmp_path / "nope.csv"
    assert raises("file_not_found", read_pairs, missing).file == str(missing)


@pytest.mark.parametrize("reader", [read_pairs, read_ratings, read_logs])
def test_a_directory_is_not_a_file(tmp_path, reader):
    folder = tmp_path / "pairs.csv"
    folder.mkdir()
    err = raises("is_directory", reader, folder)
    assert err.message() == f"{folder}: this is a directory, not a file"


def test_chinese_error_message_names_the_line(tmp_path):
    path = write(tmp_path / "p.csv", b"query,document\nq,d\nq,\xff\n")
    err = raises("invalid_utf8", read_pairs, path)
    assert "第 3 行" in err.message("zh-CN")
    assert "line 3" in err.message("en")


RATINGS_HEADER = "query_id,query,doc_id,document,annotator,rating,note\n"


def test_read_ratings(tmp_path):
    rows = "q1,问题,d1,文档,alice,2,很好\nq1,问题,d1,文档,bob, 0 ,\n"
    path = write(tmp_path / "r.csv", RATINGS_HEADER + rows)
    batch = read_ratings(path)
    assert batch.source == "ratings"
    assert [(p.annotator, p.rating, p.note, p.line) for p in batch.pairs] == [
        ("alice", 2, "很好", 2), ("bob", 0, "", 3)]


@pytest.mark.parametrize("value", [1, "1"])
def test_read_ratings_accepts_int_and_int_string(tmp_path, value):
    row = {"query": "q", "document": "d", "annotator": "a", "rating": value}
    (pair,) = read_ratings(write(tmp_path / "r.jsonl", json.dumps(row))).pairs
    assert pair.rating == 1


@pytest.mark.parametrize("value", ["3", "x", "1.5", "2.0", "-1"])
def test_bad_rating_csv(tmp_path, value):
    path = write(tmp_path / "r.csv", RATINGS_HEADER + "q1,q,d1,d,alice,1,\nq2,q,d2,d,alice," + value + ",\n")
    err = raises("bad_rating", read_ratings, path)
    assert (err.line, err.field, err.params) == (3, "rating", {"value": value})


@pytest.mark.parametrize("value", [1.5, 2.0, True, 3, [1]])
def test_bad_rating_json(tmp_path, value):
    row = {"query": "q", "document": "d", "annotator": "a", "rating": value}
    err = raises("bad_rating", read_ratings, write(tmp_path / "r.json", json.dumps([row])))
    assert (err.line, err.field) == (1, "rating")


@pytest.mark.parametrize("header, row, field", [
    ("query,document,rating\n", "q,d,1\n", "annotator"),
    ("query,document,annotator\n", "q,d,a\n", "rating"),
])
def test_ratings_missing_column(tmp_path, header, row, field):
    err = raises("missing_column", read_ratings, write(tmp_path / "r.csv", header + row))
    assert (err.line, err.field, err.params) == (1, field, {"column": field})


@pytest.mark.parametrize("rows, line", [
    # same ids, texts differ: the ids identify the pair
    (["q1,q,d1,d,alice,1,", "q2,q,d1,d,alice,1,", "q1,other,d1,other,alice,2,"], 4),
    # no ids: the texts identify the pair
    ([",q,,d,alice,1,", ",q,,d2,alice,1,", ",q,,d,alice,0,"], 4),
])
def test_duplicate_rating(tmp_path, rows, line):
    path = write(tmp_path / "r.csv", RATINGS_HEADER + "\n".join(rows) + "\n")
    err = raises("duplicate_rating", read_ratings, path)
    assert (err.line, err.field, err.params) == (line, "annotator", {"annotator": "alice"})


def test_third_rater(tmp_path):
    rows = ["q1,q,d1,d,alice,1,", "q1,q,d2,d,carol,1,", "q1,q,d1,d,bob,2,", "q1,q,d1,d,carol,0,"]
    err = raises("too_many_raters", read_ratings, write(tmp_path / "r.csv", RATINGS_HEADER + "\n".join(rows)))
    assert (err.line, err.field, err.params) == (5, "annotator", {"annotator": "carol"})


# --- BEIR ---------------------------------------------------------------------------------------


def make_beir(root: Path, qrels: str, corpus: list[dict] | None = None, queries: list[dict] | None = None,
              split: str = "test") -> Path:
    corpus = corpus if corpus is not None else [
        {"_id": "d1", "title": "标题", "text": "文本一"},
        {"_id": 2, "text": "text two"},
        {"_id": "d3", "title": "only a title", "text": ""},
        {"_id": "d4", "text": "never judged"},
    ]
    if queries is None:
        queries = [{"_id": "q1", "text": "查询"}, {"_id": "q2", "text": "unjudged"}]
    root.mkdir(exist_ok=True)
    (root / "qrels").mkdir(exist_ok=True)
    write(root / "corpus.jsonl", "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in corpus))
    write(root / "queries.jsonl", "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in queries))
    write(root / "qrels" / f"{split}.tsv", qrels)
    return root


@pytest.mark.parametrize("header", ["query-id\tcorpus-id\tscore\n", ""])
def test_read_beir(tmp_path, header):
    root = make_beir(tmp_path / "ds", header + "q1\td1\t1\nq1\t2\t0\nq1\td3\t1\n")
    batch = read_beir(root)
    assert (batch.source, batch.file) == ("beir", str(root))
    first_line = 2 if header else 1
    assert [(p.query.key, p.document.key, p.line) for p in batch.pairs] == [
        ("q1", "d1", first_line), ("q1", "2", first_line + 1), ("q1", "d3", first_line + 2)]
    assert batch.pairs[0].query == Query("查询", key="q1")
    assert batch.pairs[0].document == Document("文本一", key="d1", title="标题")
    assert batch.pairs[2].document == Document("only a title", key="d3", title="only a title")
    assert batch.extra_documents == [Document("never judged", key="d4")]
    assert batch.extra_queries == [Query("unjudged", key="q2")]


@pytest.mark.parametrize("scores, min_relevant, labels", [
    ([0, 1, 2], 1, [0, 1, 2]),  # graded qrels keep the grade
    ([0, 1, 2], 2, [0, 0, 2]),
    ([0, 1, 1], 1, [0, 2, 2]),  # binary qrels: relevant means 2
    ([0, 1, 1], 2, [0, 0, 0]),
    ([0, 3, 1], 1, [0, 2, 1]),  # grades above 2 are capped
])
def test_beir_label_mapping(tmp_path, scores, min_relevant, labels):
    qrels = "".join(f"q1\t{doc}\t{score}\n" for doc, score in zip(["d1", "2", "d3"], scores))
    batch = read_beir(make_beir(tmp_path / "ds", qrels), min_relevant=min_relevant)
    assert [p.reference_label for p in batch.pairs] == labels


def test_beir_split(tmp_path):
    root = make_beir(tmp_path / "ds", "q2\td4\t1\n", split="dev")
    assert [p.query.key for p in read_any("beir", root, split="dev").pairs] == ["q2"]
    err = raises("no_qrels", read_beir, root)
    assert err.params == {"split": "test", "path": str(root / "qrels" / "test.tsv")}


@pytest.mark.parametrize("qrels, code, line, field", [
    ("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\tmissing\t1\n", "unknown_document", 3, "corpus-id"),
    ("q1\td1\t1\n\nq9\td1\t1\n", "unknown_query", 3, "query-id"),
    ("query-id\tcorpus-id\tscore\nq1\td1\thigh\n", "bad_score", 2, "score"),
    ("q1\td1\t1\nq1\td1\t2\n", "duplicate_id", 2, "corpus-id"),
    ("q1\td1\t1\nq1\td1\t1\nq1\tmissing\t1\n", "unknown_document", 3, "corpus-id"),
    ("q1\td1\t1\nq1\td1\n", "missing_field", 2, "score"),
    ("query-id\tcorpus-id\tscore\n", "no_rows", None, None),
])
def test_beir_qrels_errors(tmp_path, qrels, code, line, field):
    root = make_beir(tmp_path / "ds", qrels)
    err = raises(code, read_beir, root)
    assert (err.file, err.line, err.field) == (str(root / "qrels" / "test.tsv"), line, field)


@pytest.mark.parametrize("corpus, line, code, field", [
    ([{"_id": "a", "text": "x"}, {"_id": "a", "text": "y"}], 2, "duplicate_id", "_id"),
    ([{"_id": "a", "text": "x"}, {"_id": "b", "title": " ", "text": ""}], 2, "empty_text", "text"),
    ([{"text": "x"}], 1, "missing_field", "_id"),
])
def test_beir_corpus_errors(tmp_path, corpus, line, code, field):
    root = make_beir(tmp_path / "ds", "q1\ta\t1\n", corpus=corpus)
    err = raises(code, read_beir, root)
    assert (err.file, err.line, err.field) == (str(root / "corpus.jsonl"), line, field)


def test_beir_missing_paths(tmp_path):
    raises("dir_not_found", read_beir, tmp_path / "nope")
    root = make_beir(tmp_path / "ds", "q1\td1\t1\n")
    (root / "queries.jsonl").unlink()
    assert raises("file_not_found", read_beir, root).file == str(root / "queries.jsonl")
    (root / "queries.jsonl").mkdir()
    assert raises("is_directory", read_beir, root).file == str(root / "queries.jsonl")


def test_beir_given_a_file_says_it_is_no_directory(tmp_path):
    path = write(tmp_path / "corpus.jsonl", '{"_id": "d1", "text": "x"}\n')
    assert "this is a file, not a directory" in raises("not_directory", read_beir, path).message()


# --- logs ---------------------------------------------------------------------------------------


def log_line(helpful: list, docs: list[dict] | None = None, **extra) -> str:
    docs = docs if docs is not None else [
        {"doc_id": f"d{rank}", "content": f"内容 {rank}", "rank": rank} for rank in (1, 2, 5)]
    line = {"query": "怎么退款", "retrieved_docs": docs, "user_feedback": {"helpful_docs": helpful}, **extra}
    return json.dumps(line, ensure_ascii=False) + "\n"


def test_read_logs_hints(tmp_path):
    path = write(tmp_path / "logs.jsonl", log_line(["d1"], query_id="q7")
                 + json.dumps({"query": "no docs", "retrieved_docs": []}) + "\n")
    batch = read_logs(path)
    assert batch.source == "logs"
    hints = [(p.document.key, p.hint, p.line) for p in batch.pairs]
    assert hints == [("d1", 2, 1), ("d2", None, 1), ("d5", 0, 1)]
    assert batch.pairs[0].query == Query("怎么退款", key="q7")
    assert batch.pairs[0].document == Document("内容 1", key="d1")
    assert batch.extra_queries == [Query("no docs")]


def test_read_logs_without_feedback(tmp_path):
    docs = [{"doc_id": 9, "content": "c", "rank": 4, "title": "t"}]
    path = write(tmp_path / "logs.jsonl", json.dumps({"query": "q", "retrieved_docs": docs}))
    (pair,) = read_logs(path).pairs
    assert (pair.document, pair.hint) == (Document("c", key="9", title="t"), 0)


@pytest.mark.parametrize("content, code, field", [
    (log_line(["d9"]), "helpful_not_retrieved", "user_feedback.helpful_docs"),
    (log_line([], docs=[{"doc_id": "a", "content": "x", "rank": 1}, {"doc_id": "b", "rank": 2}]),
     "missing_field", "retrieved_docs[1].content"),
    (log_line([], docs=[{"doc_id": "a", "content": "x", "rank": "1"}]), "bad_type", "retrieved_docs[0].rank"),
    (log_line([], docs=[{"doc_id": "a", "content": "x", "rank": 1.0}]), "bad_type", "retrieved_docs[0].rank"),
    (log_line([], docs=[{"doc_id": "a", "content": "x", "rank": 0}]), "bad_type", "retrieved_docs[0].rank"),
    (log_line([], docs=["a"]), "bad_type", "retrieved_docs[0]"),
    (log_line([None]), "missing_field", "user_feedback.helpful_docs[0]"),
    (json.dumps({"query": "q"}) + "\n", "missing_field", "retrieved_docs"),
])
def test_read_logs_errors(tmp_path, content, code, field):
    path = write(tmp_path / "logs.jsonl", log_line(["d1"]) + "\n" + content)
    err = raises(code, read_logs, path)
    assert (err.file, err.line, err.field) == (str(path), 3, field)


def test_helpful_doc_that_was_not_retrieved_names_the_log_not_a_corpus(tmp_path):
    err = raises("helpful_not_retrieved", read_logs, write(tmp_path / "logs.jsonl", log_line(["L8"])))
    assert err.message().endswith("helpful document id 'L8' is not among this line's retrieved_docs")
    assert "corpus.jsonl" not in err.message() and "corpus.jsonl" not in err.message("zh-CN")


# --- read_any -----------------------------------------------------------------------------------


def test_read_any_dispatches(tmp_path):
    pairs = write(tmp_path / "p.csv", "query,document\nq,d\n")
    ratings = write(tmp_path / "r.csv", "query,document,annotator,rating\nq,d,a,1\n")
    logs = write(tmp_path / "l.jsonl", log_line([]))
    assert read_any("pairs", pairs).source == "import"
    assert read_any("ratings", ratings).source == "ratings"
    assert read_any("logs", logs).source == "logs"
    assert read_any("beir", make_beir(tmp_path / "ds", "q1\td1\t1\n"), min_relevant=1).source == "beir"
    with pytest.raises(ValueError):
        read_any("excel", pairs)
