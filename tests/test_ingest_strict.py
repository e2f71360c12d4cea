"""Imports that used to change data silently are refused, naming file, line and field, with the database unchanged.

Every reader (pairs and ratings from CSV, TSV, JSONL, JSON; BEIR corpus, queries, qrels; RAG logs) refuses a
header naming a column twice, a JSON object giving a key twice and a NUL character anywhere; a log record with a
key the reader does not read is refused too (a misplaced ``helpful_docs`` would have made a helpful document a
candidate negative).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.actions import Actor, Project, collect
from studio.errors import InputError
from studio.ingest import read_logs
from studio.store import opened

ADMIN = Actor("root", "admin", signed_in=True)
TABLES = ("documents", "queries", "pairs", "ratings", "annotators")

PAIRS_CSV = "query,document\nwarfarin diet,Vitamin K rich foods change INR.\n"
LOG = {"query": "怎么退款", "retrieved_docs": [{"doc_id": "r1", "content": "退款政策", "rank": 1},
                                              {"doc_id": "r5", "content": "配送时间", "rank": 5}],
       "user_feedback": {"helpful_docs": ["r5"]}}
CORPUS = '{"_id": "d1", "text": "Vitamin K rich foods change INR."}\n{"_id": "d2", "text": "Statins lower LDL."}\n'
QUERIES = '{"_id": "q1", "text": "warfarin diet"}\n'
QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t1\n"


def write(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8"))
    return path


def log_line(**changes) -> str:
    return json.dumps({**LOG, **changes}, ensure_ascii=False) + "\n"


def beir(root: Path, corpus: str = CORPUS, queries: str = QUERIES, qrels: str = QRELS) -> Path:
    write(root / "corpus.jsonl", corpus)
    write(root / "queries.jsonl", queries)
    write(root / "qrels" / "test.tsv", qrels)
    return root


def snapshot(db_path) -> dict:
    """Everything an import could change: row counts, every text and every pair's labels."""
    with opened(db_path) as db:
        counts = {table: next(db.query(f"SELECT count(*) AS n FROM {table}"))["n"] for table in TABLES}
        texts = sorted(r["text"] for r in db.query("SELECT text FROM documents UNION ALL SELECT text FROM queries"))
        pairs = list(db.query("SELECT query_id, document_id, hint, reference_label, in_queue FROM pairs ORDER BY id"))
    return {"counts": counts, "texts": texts, "pairs": pairs}


# Each case: import kind, the files to write (name -> content), the path to import, and the error expected:
# (code, file relative to tmp_path, line, field).
CASES = {
    # --- a header naming a column twice: the later column used to win
    "csv duplicate column": ("pairs", {"p.csv": "query,document,query\nq1,d1,q2\n"}, "p.csv",
                             ("duplicate_column", "p.csv", 1, "query")),
    "tsv duplicate column": ("pairs", {"p.tsv": "query\tdocument\tdocument\nq\td1\td2\n"}, "p.tsv",
                             ("duplicate_column", "p.tsv", 1, "document")),
    "ratings csv duplicate column": ("ratings", {"r.csv": "query,document,annotator,rating,rating\nq,d,ann,2,0\n"},
                                     "r.csv", ("duplicate_column", "r.csv", 1, "rating")),
    "qrels duplicate column": ("beir", {}, "ds", ("duplicate_column", "ds/qrels/test.tsv", 1, "corpus-id")),
    # --- the same for JSON: a key given twice in one object
    "jsonl duplicate key": ("pairs", {"p.jsonl": '{"query": "q", "document": "d"}\n'
                                                 '{"query": "q1", "document": "d", "query": "q2"}\n'},
                            "p.jsonl", ("duplicate_key", "p.jsonl", 2, "query")),
    "json duplicate key": ("ratings", {"r.json": '[\n{"query": "q", "document": "d", "annotator": "a", '
                                                 '"rating": 2, "rating": 0}\n]\n'},
                           "r.json", ("duplicate_key", "r.json", 2, "rating")),
    "corpus duplicate key": ("beir", {}, "ds", ("duplicate_key", "ds/corpus.jsonl", 2, "text")),
    "log duplicate key": ("logs", {"l.jsonl": log_line().replace('"rank": 5', '"rank": 5, "rank": 2')}, "l.jsonl",
                          ("duplicate_key", "l.jsonl", 1, "retrieved_docs[1].rank")),
    # --- a NUL character, raw or as \u0000, in any field (read or not)
    "csv nul": ("pairs", {"p.csv": "query,document\nq,vitamin\x00 K\n"}, "p.csv", ("nul_byte", "p.csv", 2, "document")),
    "csv nul on a later line of a quoted field": ("pairs", {"p.csv": 'query,document\nq,"one\ntwo\x00"\n'}, "p.csv",
                                                  ("nul_byte", "p.csv", 3, "document")),
    "csv nul in a column nobody reads": ("pairs", {"p.csv": "query,document,source\nq,d,x\x00\n"}, "p.csv",
                                         ("nul_byte", "p.csv", 2, "source")),
    "tsv nul": ("pairs", {"p.tsv": "query\tdocument\nq\x00\td\n"}, "p.tsv", ("nul_byte", "p.tsv", 2, "query")),
    "ratings note nul": ("ratings", {"r.csv": "query,document,annotator,rating,note\nq,d,ann,2,ok\x00\n"}, "r.csv",
                         ("nul_byte", "r.csv", 2, "note")),
    "jsonl escaped nul": ("pairs", {"p.jsonl": '{"query": "q", "document": "d\\u0000"}\n'}, "p.jsonl",
                          ("nul_byte", "p.jsonl", 1, "document")),
    "jsonl raw nul": ("pairs", {"p.jsonl": '{"query": "q", "document": "d"}\n{"query": "q\x00", "document": "d"}\n'},
                      "p.jsonl", ("nul_byte", "p.jsonl", 2, "query")),
    "jsonl nul between values": ("pairs", {"p.jsonl": '{"query": "q", "document": "d"}\x00\n'}, "p.jsonl",
                                 ("nul_byte", "p.jsonl", 1, None)),
    "json nul": ("pairs", {"p.json": '[\n{"query": "q", "document": "d"},\n{"query": "q2",\n "document": "d\x00"}\n]'},
                 "p.json", ("nul_byte", "p.json", 3, "document")),
    "corpus nul": ("beir", {}, "ds", ("nul_byte", "ds/corpus.jsonl", 2, "text")),
    "queries nul": ("beir", {}, "ds", ("nul_byte", "ds/queries.jsonl", 1, "text")),
    "qrels nul": ("beir", {}, "ds", ("nul_byte", "ds/qrels/test.tsv", 2, "corpus-id")),
    "log nul": ("logs", {"l.jsonl": log_line(query="退\x00款")}, "l.jsonl", ("nul_byte", "l.jsonl", 1, "query")),
    # --- a log key the reader does not read
    "log helpful_docs at the top level": (
        "logs", {"l.jsonl": log_line(user_feedback={}, helpful_docs=["r5"])}, "l.jsonl",
        ("misplaced_key", "l.jsonl", 1, "helpful_docs")),
    "log unknown top-level key": ("logs", {"l.jsonl": log_line(timestamp=1)}, "l.jsonl",
                                  ("unknown_key", "l.jsonl", 1, "timestamp")),
    "log unknown feedback key": ("logs", {"l.jsonl": log_line(user_feedback={"clicked_docs": ["r5"]})}, "l.jsonl",
                                 ("unknown_key", "l.jsonl", 1, "user_feedback.clicked_docs")),
}

BEIR_FILES = {
    "qrels duplicate column": {"qrels": "query-id\tcorpus-id\tcorpus-id\nq1\td1\t1\n"},
    "corpus duplicate key": {"corpus": CORPUS.replace('"text": "Statins', '"text": "x", "text": "Statins')},
    "corpus nul": {"corpus": CORPUS.replace("Statins", "Stat\\u0000ins")},
    "queries nul": {"queries": QUERIES.replace("diet", "di\x00et")},
    "qrels nul": {"qrels": QRELS.replace("d1", "d1\x00")},
}


@pytest.fixture
def project(db_path, tmp_path):
    """A project that already holds one import, so "unchanged" means more than "still empty"."""
    collect.import_file(Project(db_path), ADMIN, "pairs", write(tmp_path / "first.csv", PAIRS_CSV))
    return Project(db_path)


@pytest.mark.parametrize("case", CASES)
def test_refused_naming_file_line_and_field_with_the_database_unchanged(project, db_path, tmp_path, case):
    kind, files, target, (code, file, line, field) = CASES[case]
    for name, content in files.items():
        write(tmp_path / name, content)
    if kind == "beir":
        beir(tmp_path / "ds", **BEIR_FILES[case])
    before = snapshot(db_path)
    with pytest.raises(InputError) as refused:
        collect.import_file(project, ADMIN, kind, tmp_path / target)
    err = refused.value
    assert (err.code, err.file, err.line, err.field) == (code, str(tmp_path / file), line, field), err.message()
    assert snapshot(db_path) == before
    for lang in ("en", "zh-CN"):
        assert "\x00" not in err.message(lang), "the message never carries the character itself"


def test_the_same_files_without_the_problem_import(project, db_path, tmp_path):
    """The cases above fail for the reason named: fixed, the same content imports."""
    write(tmp_path / "p.csv", "query,document,source\nq,d,x\n")
    collect.import_file(project, ADMIN, "pairs", tmp_path / "p.csv")
    collect.import_file(project, ADMIN, "beir", beir(tmp_path / "ds"))
    write(tmp_path / "l.jsonl", log_line())
    collect.import_file(project, ADMIN, "logs", tmp_path / "l.jsonl")
    assert snapshot(db_path)["counts"]["pairs"] == 5


def test_blank_header_names_are_no_duplicates(tmp_path):
    """A spreadsheet export's trailing empty columns are columns nobody reads, not a name given twice."""
    from studio.ingest import read_pairs

    batch = read_pairs(write(tmp_path / "p.csv", "query,document,,\nq,d,,\n"))
    assert [(p.query.text, p.document.text) for p in batch.pairs] == [("q", "d")]


def test_a_duplicate_key_names_its_path_and_the_key(tmp_path):
    line = {"query": "q", "retrieved_docs": [{"doc_id": "a", "content": "c", "rank": 1}]}
    text = json.dumps(line)[:-1] + ', "metadata": {"session": 1, "session": 2}}\n'
    with pytest.raises(InputError) as refused:
        read_logs(write(tmp_path / "l.jsonl", text))
    assert (refused.value.field, refused.value.params) == ("metadata.session", {"key": "session"})
    assert "appears twice" in refused.value.message() and "出现了两次" in refused.value.message("zh-CN")


# --- RAG logs: keys ----------------------------------------------------------------------------------------------


def test_a_misplaced_helpful_docs_says_where_it_belongs_in_both_languages(tmp_path):
    path = write(tmp_path / "logs.jsonl", log_line() + log_line(user_feedback={}, helpful_docs=["r5"]))
    with pytest.raises(InputError) as refused:
        read_logs(path)
    assert refused.value.message().startswith(f"{path}, line 2, field 'helpful_docs': ")
    assert "user_feedback.helpful_docs" in refused.value.message()
    assert "第 2 行" in refused.value.message("zh-CN") and "user_feedback.helpful_docs" in refused.value.message("zh-CN")


@pytest.mark.parametrize("key, where", [("content", "retrieved_docs[].content"), ("rank", "retrieved_docs[].rank")])
def test_a_document_key_at_the_top_level_says_where_it_belongs(tmp_path, key, where):
    with pytest.raises(InputError) as refused:
        read_logs(write(tmp_path / "logs.jsonl", log_line(**{key: 1})))
    assert (refused.value.code, refused.value.field, refused.value.params["belongs"]) == ("misplaced_key", key, where)


def test_helpful_docs_inside_a_retrieved_document_is_refused(tmp_path):
    docs = [{"doc_id": "r5", "content": "配送时间", "rank": 5, "helpful_docs": ["r5"]}]
    with pytest.raises(InputError) as refused:
        read_logs(write(tmp_path / "logs.jsonl", log_line(retrieved_docs=docs, user_feedback={})))
    assert (refused.value.code, refused.value.field) == ("misplaced_key", "retrieved_docs[0].helpful_docs")


def test_an_unknown_key_lists_the_keys_read_there(tmp_path):
    docs = [{"doc_id": "r5", "content": "配送时间", "rank": 5, "score": 0.4}]
    with pytest.raises(InputError) as refused:
        read_logs(write(tmp_path / "logs.jsonl", log_line(retrieved_docs=docs)))
    err = refused.value
    assert (err.code, err.field) == ("unknown_key", "retrieved_docs[0].score")
    assert "doc_id, content, rank, title, metadata" in err.message() and "metadata" in err.message("zh-CN")


def test_metadata_holds_anything_else_and_is_not_read(tmp_path):
    docs = [{"doc_id": "r5", "content": "配送时间", "rank": 5, "metadata": {"score": 0.4, "index": "v2"}}]
    path = write(tmp_path / "logs.jsonl", log_line(retrieved_docs=docs, metadata={"ts": "2026-11-02", "user": 7}))
    (pair,) = read_logs(path).pairs
    assert (pair.document.key, pair.document.text, pair.hint) == ("r5", "配送时间", 2)


def test_the_documented_keys_are_the_keys_read():
    """The formats help (page and README) names every key a log line may have."""
    from studio.i18n import t
    from studio.ingest.logs import DOCUMENT_KEYS, FEEDBACK_KEYS, LINE_KEYS

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Data formats", 1)[1].split("\n## ", 1)[0]
    for text in (t("import.formats", "en"), t("import.formats", "zh-CN"), section):
        for key in (*LINE_KEYS, *DOCUMENT_KEYS, *FEEDBACK_KEYS):
            assert f"`{key}`" in text, key


# --- what else could name the path ---------------------------------------------------------------------------------


def test_an_unreadable_file_is_an_input_error_that_does_not_quote_the_path(tmp_path, monkeypatch):
    from studio.ingest import files, tabular

    path = write(tmp_path / "p.csv", PAIRS_CSV)

    def refuse(file, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr(files, "open", refuse, raising=False)
    with pytest.raises(InputError) as refused:
        tabular.read_pairs(path)
    assert (refused.value.code, refused.value.file) == ("unreadable", str(path))
    assert refused.value.params == {"detail": "Permission denied"}
