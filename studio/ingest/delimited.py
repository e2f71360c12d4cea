"""Delimited files: CSV (RFC 4180 quoting) and TSV (no quoting: a quote is an ordinary character).

Rows come with the physical line they start on. A header naming a column twice (``duplicate_column``), a NUL
character (``nul_byte``), a quote that ran on over whole rows (``runaway_quote``), a quote never closed
(``unclosed_quote``), text after a closing quote (``text_after_quote``), a CSV-quoted TSV cell
(``quoted_tsv_field``) and a row with more cells than the header (``bad_type``) are refused, naming line and column.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path

from studio.errors import InputError
from studio.ingest.files import iter_lines_at

DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
# Only CSV has quoting; TSV (like BEIR qrels and quote-less exports) takes every character literally.
QUOTED_DELIMITERS = {","}
# Documents can be long; the csv module's default cap (128 KiB per field) would reject them.
CSV_FIELD_LIMIT = 64 * 1024 * 1024


def csv_rows(path: str | Path, delimiter: str, required: Sequence[str]) -> Iterator[tuple[int, dict]]:
    """Rows of a delimited file. CSV has RFC 4180 quoting; TSV has none: there a quote is an ordinary character."""
    name = str(path)
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    quoting = csv.QUOTE_MINIMAL if delimiter in QUOTED_DELIMITERS else csv.QUOTE_NONE
    taken: list[tuple[int, str]] = []  # the physical lines of the record being read; a quoted field may span several
    reader = csv.reader(_taking(iter_lines_at(path), taken), delimiter=delimiter, quoting=quoting, strict=True)
    header: list[str] | None = None
    quoted = delimiter in QUOTED_DELIMITERS
    while True:
        taken.clear()
        try:
            cells = next(reader, None)
        except csv.Error as e:
            raise _csv_error(name, taken, header, delimiter, str(e)) from None
        if cells is None:
            return
        start, first = taken[0]
        one_line = len(taken) == 1  # the usual record: the checks below that need more are skipped for it
        if not one_line or "\x00" in first:
            _check_nul(name, taken, header, cells)
        if not "".join(cells).strip():
            continue
        if header is None:
            header = [cell.strip() for cell in cells]
            check_header(name, start, header)
            for column in required:
                if column not in header:
                    raise InputError("missing_column", file=name, line=start, field=column, column=column)
            continue
        if not one_line or (not quoted and '"' in first):
            _check_quotes(name, taken, header, cells, delimiter)
        if len(cells) > len(header) and "".join(cells[len(header):]).strip():
            # An unquoted delimiter inside a text would otherwise silently cut the text short.
            raise InputError("bad_type", file=name, line=start, expected=f"{len(header)} columns",
                             got=f"{len(cells)} columns")
        yield start, dict(zip(header, cells))


def check_header(name: str, line: int, header: Sequence[str]) -> None:
    """Refuse a header that names a column twice (a row would keep only one of the two cells).

    Blank names are left alone: they are columns nobody reads (trailing delimiters of a spreadsheet export).

    Raises:
        InputError: ``duplicate_column`` naming the column.
    """
    seen: set[str] = set()
    for column in header:
        if column in seen:
            raise InputError("duplicate_column", file=name, line=line, field=column, column=column)
        if column:
            seen.add(column)


def _check_nul(name: str, taken: list[tuple[int, str]], header: list[str] | None, cells: list[str]) -> None:
    """Refuse a record with a NUL character, naming the physical line it is on and its column (none in the header)."""
    for index, cell in enumerate(cells):
        if "\x00" in cell:
            line = next((number for number, text in taken if "\x00" in text), taken[0][0])
            raise InputError("nul_byte", file=name, line=line, field=_column(header, index))


def _taking(lines: Iterator[tuple[int, int, str]], taken: list[tuple[int, str]]) -> Iterator[str]:
    """The texts of `lines` (:func:`iter_lines_at`), each ``(number, text)`` appended to `taken` as the csv reader
    asks for it."""
    for number, _, text in lines:
        taken.append((number, text))
        yield text


def _csv_error(name: str, taken: list[tuple[int, str]], header: list[str] | None, delimiter: str,
               detail: str) -> InputError:
    """The error for a record the csv module refused, pointing at the quote that broke it when one did."""
    broken = _broken_quote(taken, delimiter) if delimiter in QUOTED_DELIMITERS else None
    if broken is None:
        return InputError("bad_type", file=name, line=taken[-1][0], expected="CSV row", got=detail)
    line, column, closed = broken
    field = _column(header, column)
    if not closed:
        return InputError("unclosed_quote", file=name, line=line, field=field)
    if line == taken[-1][0]:
        return InputError("text_after_quote", file=name, line=line, field=field)
    return InputError("runaway_quote", file=name, line=line, field=field, end=taken[-1][0])


def _check_quotes(name: str, taken: list[tuple[int, str]], header: list[str], cells: list[str],
                  delimiter: str) -> None:
    """Refuse a CSV record whose quoted field took in whole rows, or a TSV cell that was quoted the CSV way.

    A multi-line CSV record all of whose later lines look like rows of their own (see :func:`_looks_like_row`)
    is most likely a stray quote that ran on to the next stray quote. TSV is read without quoting, so a
    CSV-quoted cell (in quotes, inner quotes doubled) would keep its quotes.
    """
    if delimiter not in QUOTED_DELIMITERS:
        for column, cell in zip(header, cells):
            if _csv_quoted(cell):
                raise InputError("quoted_tsv_field", file=name, line=taken[0][0], field=column)
        return
    if len(taken) > 1 and all(_looks_like_row(text, len(header), delimiter) for _, text in taken[1:]):
        line, column, _ = _broken_quote(taken[:1], delimiter) or (taken[0][0], None, False)
        raise InputError("runaway_quote", file=name, line=line, field=_column(header, column), end=taken[-1][0])


def _broken_quote(lines: list[tuple[int, str]], delimiter: str) -> tuple[int, int, bool] | None:
    """Where the quoted field that breaks a CSV record opens: ``(line, column index, closed)``; None if none.

    Follows RFC 4180 over the record's `lines`: `closed` is True for a quote followed by text (``"a"b``),
    False for a quote still open at the end of `lines`.
    """
    column, opened, state = 0, (0, 0), "start"
    for number, text in lines:
        for char in text:
            if state == "quoted":
                state = "quote" if char == '"' else state
            elif state == "quote":  # just after a quote inside a quoted field: it closes it unless doubled
                if char == '"':
                    state = "quoted"
                elif char == delimiter:
                    column, state = column + 1, "start"
                elif char in "\r\n":
                    state = "plain"
                else:
                    return (*opened, True)
            elif char == delimiter:
                column, state = column + 1, "start"
            elif state == "start" and char == '"':
                opened, state = (number, column), "quoted"
            else:
                state = "plain"
    return (*opened, False) if state == "quoted" else None


def _looks_like_row(text: str, columns: int, delimiter: str) -> bool:
    """Whether a line of a quoted field reads as a row: exactly `columns` cells, no space after a delimiter.

    Prose in a multi-line text rarely has exactly the header's number of delimiters on every line, and it
    puts a space after a comma; machine-written rows do not.
    """
    cells = text.rstrip("\r\n").split(delimiter)
    return len(cells) == columns and not any(cell[:1].isspace() for cell in cells[1:])


def _csv_quoted(cell: str) -> bool:
    """Whether a TSV cell looks CSV-quoted: wrapped in quotes, with every quote inside doubled (at least one)."""
    text = cell.strip()
    if len(text) < 4 or text[0] != '"' or text[-1] != '"':
        return False
    inner = text[1:-1]
    return '""' in inner and '"' not in inner.replace('""', "")


def _column(header: list[str] | None, index: int | None) -> str | None:
    """The name of column `index`, None when unknown (no header yet, or past its end)."""
    return header[index] if header and index is not None and index < len(header) else None
