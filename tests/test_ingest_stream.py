"""Streamed imports (issue #19): memory flat in the file's size, still all-or-nothing, the same rows as before.

`read_any` (the import's door) streams: records are read once, inside the import's transaction. These tests pin
what that must not change: a bad line near the end of a big file leaves the database as it was and names the line,
a key given another text is refused however far apart the two rows are, and a streamed import writes exactly the
rows a list-built one does.
"""

from __future__ import annotations

import csv
import json
import tracemalloc
from pathlib import Path

import pytest

from studio.actions import Actor, Project, collect
from studio.errors import InputError
from studio.ingest import read_any
from studio.store import imports, opened
from studio.store.imports import import_batch

ADMIN = Actor("root", "admin", signed_in=True)
TABLES = ("documents", "queries", "pairs", "ratings", "annotators", "audit_log")


def write_pairs(path: Path, n: int, *, bad: dict[int, tuple[str, str, str, str]] | None = None) -> Path:
    """`n` pairs (20 per query, ids given); `bad` replaces the row on a 1-based file line (the header is line 1)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["query_id", "query", "doc_id", "document"])
        for i in range(n):
            row = (f"q{i // 20}", f"query {i // 20} about warfarin", f"d{i}", f"document {i}: dosage and diet")
            out.writerow((bad or {}).get(i + 2, row))
    return path


def snapshot(db_path: Path) -> dict:
    """Row counts, the queue counters and the largest ids: what an import that failed must leave as they were."""
    with opened(db_path) as db:
        counts = {t: next(db.query(f"SELECT count(*) AS n, max(id) AS top FROM {t}")) for t in TABLES}
        counters = next(db.query("SELECT queued, double_rated FROM queue_counts"))
    return {"counts": counts, "counters": counters}


def rows(db_path: Path) -> dict[str, list[tuple]]:
    """Every imported row, without timestamps."""
    queries = {
        "documents": "SELECT id, key, title, text, text_hash, source FROM documents ORDER BY id",
        "queries": "SELECT id, key, text, text_hash, source FROM queries ORDER BY id",
        "pairs": "SELECT id, query_id, document_id, source, in_queue, reference_label, hint, ratings_n FROM pairs "
                 "ORDER BY id",
        "ratings": "SELECT pair_id, annotator_id, rating, note FROM ratings ORDER BY id",
        "annotators": "SELECT id, name FROM annotators ORDER BY id",
        "queue_counts": "SELECT queued, double_rated FROM queue_counts",
    }
    with opened(db_path) as db:
        return {name: [tuple(r.values()) for r in db.query(sql)] for name, sql in queries.items()}


def import_path(db_path: Path, kind: str, path: Path, *, stream: bool = True, **options) -> imports.ImportSummary:
    with opened(db_path) as db:
        return import_batch(db, read_any(kind, path, stream=stream, **options), queue=kind != "beir")


def python_peak(db_path: Path, path: Path) -> int:
    """Peak bytes Python allocated to import `path` streamed (SQLite's own page cache is not Python's)."""
    with opened(db_path) as db:
        tracemalloc.start()
        try:
            import_batch(db, read_any("pairs", path))
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


# --- memory ---------------------------------------------------------------------------------------------------------


def test_memory_stays_flat_as_the_file_grows(tmp_path, monkeypatch):
    monkeypatch.setattr(imports, "RECENT_KEYS", 500)  # the bounded key cache, small, so the file's size shows
    small = python_peak(tmp_path / "small.db", write_pairs(tmp_path / "small.csv", 4_000))
    big = python_peak(tmp_path / "big.db", write_pairs(tmp_path / "big.csv", 32_000))
    assert big < 1.5 * small, f"8x the lines took {big / small:.1f}x the memory ({small} -> {big} bytes)"
    assert big < 2_000_000  # a list-built batch of 32,000 pairs alone takes over 20 MB


# --- all or nothing -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad, code, field", [
    (("q9", "query", "d9", "   "), "empty_text", "document"),           # found by the reader, mid-stream
    (("q0", "another text for q0", "d9", "text"), "conflicting_key", "query_id"),  # found by the store
])
def test_a_bad_line_near_the_end_of_a_big_file_writes_nothing(db_path, tmp_path, bad, code, field):
    write_pairs(tmp_path / "base.csv", 10)
    collect.import_file(Project(db_path), ADMIN, "pairs", tmp_path / "base.csv")
    before = snapshot(db_path)
    big = write_pairs(tmp_path / "big.csv", 20_000, bad={19_990: bad})
    with pytest.raises(InputError) as err:
        collect.import_file(Project(db_path), ADMIN, "pairs", big)
    assert (err.value.code, err.value.file, err.value.line, err.value.field) == (code, str(big), 19_990, field)
    assert snapshot(db_path) == before


def test_a_bad_start_is_refused_when_the_file_is_read(tmp_path):
    """Header and first-row checks happen before any transaction (the stream reads ahead one row)."""
    path = tmp_path / "p.csv"
    path.write_text("query,document,query\nq,d,q2\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_any("pairs", path)
    assert (err.value.code, err.value.line, err.value.field) == ("duplicate_column", 1, "query")
    path.write_text("query,document\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_any("pairs", path)
    assert err.value.code == "no_rows"


# --- keys -----------------------------------------------------------------------------------------------------------


def test_a_key_with_another_text_is_refused_however_far_apart(db_path, tmp_path, monkeypatch):
    """The key cache is bounded: a key gone from it is checked through the UNIQUE index."""
    monkeypatch.setattr(imports, "RECENT_KEYS", 50)
    path = write_pairs(tmp_path / "p.csv", 400, bad={390: ("q300", "query 300 about warfarin", "d3", "not d3's text")})
    with pytest.raises(InputError) as err:
        import_path(db_path, "pairs", path)
    assert (err.value.code, err.value.line, err.value.field, err.value.params) == (
        "conflicting_key", 390, "doc_id", {"key": "d3"})
    assert snapshot(db_path)["counts"]["documents"]["n"] == 0


def test_reimporting_a_big_file_adds_nothing_and_counts_each_pair_once(db_path, tmp_path, monkeypatch):
    monkeypatch.setattr(imports, "RECENT_KEYS", 50)
    path = write_pairs(tmp_path / "p.csv", 300)
    first = import_path(db_path, "pairs", path)
    with open(path, "a", encoding="utf-8") as f:  # the first pair again, at the end: named twice, counted once
        f.write("q0,query 0 about warfarin,d0,document 0: dosage and diet\n")
    again = import_path(db_path, "pairs", path)
    assert (first.pairs, first.documents, first.queries) == (300, 300, 15)
    assert (again.pairs, again.existing_pairs, again.documents, again.queries) == (0, 300, 0, 0)
    assert rows(db_path)["queue_counts"] == [(300, 0)]


# --- the same rows as a list-built batch ---------------------------------------------------------------------------


def write_kinds(root: Path) -> dict[str, tuple[Path, dict]]:
    """A small file of each kind, with what trips a careless streamer: texts without ids (matched by text), an id
    repeated, a pair named twice, titles, a BEIR corpus with unjudged documents, a log line without documents."""
    root.mkdir()
    pairs = root / "pairs.csv"
    pairs.write_text("query_id,query,doc_id,title,document\n"
                     ",warfarin diet,,,Vitamin K changes INR.\n"
                     "q2,statins,d2,Lipids,Statins lower LDL.\n"
                     ",warfarin diet,d3,,Vitamin K changes INR.\n"
                     "q2,statins,d2,Lipids,Statins lower LDL.\n"
                     ",  warfarin   diet ,,,Leafy greens.\n", encoding="utf-8")
    ratings = root / "ratings.jsonl"
    ratings.write_text("".join(json.dumps(r) + "\n" for r in [
        {"query": "warfarin diet", "document": "Vitamin K changes INR.", "annotator": "ann", "rating": 2},
        {"query": "warfarin diet", "document": "Vitamin K changes INR.", "annotator": "bob", "rating": 1},
        {"query_id": "q2", "doc_id": "d2", "annotator": "ann", "rating": 0, "note": "off topic"},
    ]), encoding="utf-8")
    logs = root / "logs.jsonl"
    logs.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [
        {"query": "怎么退款", "retrieved_docs": [{"doc_id": "r1", "content": "退款政策", "rank": 1},
                                              {"doc_id": "r5", "content": "配送时间", "rank": 5}],
         "user_feedback": {"helpful_docs": ["r1"]}},
        {"query": "no documents", "retrieved_docs": []},
        {"query_id": "lq", "query": "发票",
         "retrieved_docs": [{"doc_id": "r1", "content": "退款政策", "rank": 4}]},
    ]), encoding="utf-8")
    beir = root / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in [
        {"_id": "b1", "title": "Warfarin", "text": "Vitamin K rich foods change INR."},
        {"_id": "b2", "text": "Statins lower LDL."},
        {"_id": "b3", "title": "only a title"},
        {"_id": "b4", "text": "never judged"},
    ]), encoding="utf-8")
    (beir / "queries.jsonl").write_text('{"_id": "bq1", "text": "warfarin diet"}\n{"_id": "bq2", "text": "unjudged"}\n'
                                        '{"_id": "bq3", "text": "statins"}\n', encoding="utf-8")
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nbq3\tb2\t2\nbq1\tb1\t1\nbq1\tb3\t0\n",
                                             encoding="utf-8")
    return {"pairs": (pairs, {}), "ratings": (ratings, {}), "logs": (logs, {}), "beir": (beir, {"split": "test"})}


def test_a_streamed_import_writes_the_same_rows_as_a_list_built_one(tmp_path):
    files = write_kinds(tmp_path / "files")
    summaries = {}
    for stream in (True, False):
        db_path = tmp_path / f"stream-{stream}.db"
        summaries[stream] = [import_path(db_path, kind, path, stream=stream, **options).as_dict()
                             for kind, (path, options) in files.items()]
    assert summaries[True] == summaries[False]
    assert rows(tmp_path / "stream-True.db") == rows(tmp_path / "stream-False.db")
    assert [s["pairs"] for s in summaries[True]] == [4, 0, 3, 3]
    assert rows(tmp_path / "stream-True.db")["queue_counts"] == [(7, 1)]  # BEIR pairs are not queued


@pytest.mark.parametrize("kind", ["pairs", "ratings", "logs", "beir"])
def test_read_any_streams_every_kind_and_reads_it_once(tmp_path, kind):
    path, options = write_kinds(tmp_path / "files")[kind]
    streamed, listed = read_any(kind, path, **options), read_any(kind, path, stream=False, **options)
    assert not isinstance(streamed.pairs, list) and isinstance(listed.pairs, list)
    assert list(streamed.pairs) == listed.pairs
    assert list(streamed.pairs) == []  # consumed: an iterator, read once by the import
    assert list(streamed.extra_documents) == listed.extra_documents
    assert list(streamed.extra_queries) == listed.extra_queries
