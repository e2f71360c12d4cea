"""Quotes in delimited files: CSV keeps RFC 4180 quoting but refuses a quote that runs over rows; TSV has none."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from studio.cli import cli
from studio.errors import InputError
from studio.ingest import read_pairs
from studio.store import connect
from studio.store import pairs as store_pairs


def write(path: Path, content: str) -> Path:
    path.write_bytes(content.encode("utf-8"))
    return path


def refused(path: Path) -> InputError:
    with pytest.raises(InputError) as err:
        read_pairs(path)
    return err.value


def documents(path: Path) -> list[str]:
    return [pair.document.text for pair in read_pairs(path).pairs]


# --- CSV ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("content, line, field", [
    ('query,document\nq1,"unterminated doc\nq2,doc two\nq3,doc three\n', 2, "document"),
    ('query,document\n"unterminated,doc\nq2,d2\n', 2, "query"),
    ('query,document\nq1,d1\nq2,"no end', 3, "document"),
    # the first multi-line field (lines 2-3) is closed; the quote that is never closed opens on line 3
    ('query,title,document\nq1,"a\ntitle","doc\nmore\n', 3, "document"),
])
def test_csv_quote_never_closed(tmp_path, content, line, field):
    path = write(tmp_path / "p.csv", content)
    err = refused(path)
    assert (err.code, err.file, err.line, err.field) == ("unclosed_quote", str(path), line, field)
    assert err.message().startswith(f"{path}, line {line}, field '{field}': a quote opened here is never closed")
    assert f"第 {line} 行" in err.message("zh-CN") and "引号" in err.message("zh-CN")


@pytest.mark.parametrize("content", [
    # a stray quote closes on a later row, followed by text (the csv module refuses it)
    'query,document\nq1,"stray doc\nq2,doc two\nq3,"doc" three\n',
    # a stray quote closes at the end of a later row: valid RFC 4180, but the field swallowed whole rows
    'query,document\nq1,"stray doc\nq2,doc two\nq3,size 12"\nq4,doc four\n',
])
def test_csv_quote_running_over_rows(tmp_path, content):
    err = refused(write(tmp_path / "p.csv", content))
    assert (err.code, err.line, err.field, err.params) == ("runaway_quote", 2, "document", {"end": 4})
    assert "line 2, field 'document': a quote opened here runs on to line 4" in err.message()


def test_csv_text_after_a_closing_quote(tmp_path):
    err = refused(write(tmp_path / "p.csv", 'query,document\nq1,d1\nq2,"Quoted" word starts this doc\n'))
    assert (err.code, err.line, err.field) == ("text_after_quote", 3, "document")


def test_csv_quoting_that_is_valid_still_reads(tmp_path):
    content = ('query,document\n'
               'q1,"Dear customer,\nwe refunded you, as promised.\n\nRegards, Support"\n'  # prose: spaces after commas
               'q2,"Options:\n- reset\n- restore"\n'
               'q3,"say ""hi"", then go"\n'
               'q4,He said "hi" to me\n'  # quotes inside an unquoted field are ordinary characters
               'q5,doc "two\n')
    assert documents(write(tmp_path / "p.csv", content)) == [
        "Dear customer,\nwe refunded you, as promised.\n\nRegards, Support", "Options:\n- reset\n- restore",
        'say "hi", then go', 'He said "hi" to me', 'doc "two']


# --- TSV ----------------------------------------------------------------------------------------


def test_tsv_quotes_are_ordinary_characters(tmp_path):
    content = ('query\tdocument\n'
               'q1\t"Quoted" word starts this doc.\n'
               'q2\t"unbalanced quote doc\n'
               'q3\tthird doc\n'
               'q4\t"whole text in quotes"\n')
    assert documents(write(tmp_path / "p.tsv", content)) == [
        '"Quoted" word starts this doc.', '"unbalanced quote doc', "third doc", '"whole text in quotes"']


def test_tsv_cell_quoted_the_csv_way_is_refused(tmp_path):
    path = write(tmp_path / "p.tab", 'query\tdocument\nq1\td1\nq2\t"He said ""hi"""\n')
    err = refused(path)
    assert (err.code, err.line, err.field) == ("quoted_tsv_field", 3, "document")
    assert ".tsv files are read without quoting" in err.message()


# --- through the CLI: nothing is imported -------------------------------------------------------


@pytest.mark.parametrize("name, content, expected", [
    ("p.csv", 'query,document\nq1,"unterminated doc\nq2,doc two\nq3,doc three\n',
     "p.csv, line 2, field 'document': a quote opened here is never closed"),
    ("p.csv", 'query,document\nq0,d0\nq1,"stray doc\nq2,doc two\nq3,end"\n',
     "p.csv, line 3, field 'document': a quote opened here runs on to line 5"),
])
def test_cli_imports_nothing_from_a_file_with_a_broken_quote(db_path, tmp_path, name, content, expected):
    path = write(tmp_path / name, content)
    result = CliRunner().invoke(cli, ["--db", str(db_path), "import", "pairs", str(path)], catch_exceptions=False)
    assert result.exit_code == 1 and expected in result.output
    assert store_pairs.counts(connect(db_path))["pairs"] == 0


def test_cli_imports_every_tsv_row_despite_an_unbalanced_quote(db_path, tmp_path):
    path = write(tmp_path / "p.tsv", 'query\tdocument\nq3\t"unbalanced quote doc\nq4\tfourth doc\nq5\tfifth doc\n')
    result = CliRunner().invoke(cli, ["--db", str(db_path), "import", "pairs", str(path)], catch_exceptions=False)
    assert result.exit_code == 0 and "3 new pairs" in result.output
