"""Read query/document pairs and ratings from CSV, TSV, JSONL or JSON files.

Also holds the small line/field helpers that the BEIR and log readers share: every problem becomes an
:class:`InputError` naming the file, the 1-based physical line and the field.

Nothing that would change data silently gets through: a header naming a column twice (``duplicate_column``), a
JSON object giving a key twice (``duplicate_key``; JSON itself keeps the last value) and a NUL character in any
field (``nul_byte``; it would be stored inside the text) are refused like any other bad row.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple

from studio.errors import InputError
from studio.ingest.records import Document, ImportBatch, PairRecord, Query
from studio.ingest.stream import gathered, nonempty

DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
# Only CSV has quoting; TSV (like BEIR qrels and quote-less exports) takes every character literally.
QUOTED_DELIMITERS = {","}
PAIR_FIELDS = ("query", "document")
RATING_FIELDS = ("annotator", "rating")  # plus the pair: its texts, or query_id/doc_id of an imported one
# Documents can be long; the csv module's default cap (128 KiB per field) would reject them.
CSV_FIELD_LIMIT = 64 * 1024 * 1024

_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "object"}
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_DIGITS = re.compile(r"[0-9]+")


class Where(NamedTuple):
    """A place in an input file, to build errors that point at it (a tuple: one is made per row)."""

    file: str
    line: int | None = None

    def error(self, code: str, field: str | None = None, **params: object) -> InputError:
        """An :class:`InputError` at this place."""
        return InputError(code, file=self.file, line=self.line, field=field, **params)


def json_type(value: object) -> str:
    """The JSON name of `value`'s type, for ``bad_type`` messages."""
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def check_file(path: str | Path) -> None:
    """Make sure `path` is a file.

    Raises:
        InputError: ``is_directory`` for a folder, ``file_not_found`` when nothing is there.
    """
    if Path(path).is_dir():
        raise InputError("is_directory", file=str(path))
    if not Path(path).is_file():
        raise InputError("file_not_found", file=str(path))


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, text)`` for each physical line of a UTF-8 file, line endings kept.

    A UTF-8 BOM at the start is dropped. Decoding line by line lets ``invalid_utf8`` name the line.

    Raises:
        InputError: ``file_not_found``, ``is_directory``, ``unreadable`` or ``invalid_utf8``.
    """
    for number, _, text in iter_lines_at(path):
        yield number, text


def iter_lines_at(path: str | Path) -> Iterator[tuple[int, int, str]]:
    """As :func:`iter_lines`, with where each line starts: ``(line number, byte offset, text)``."""
    name = str(path)
    with open_bytes(path) as f:
        offset = 0
        for number, raw in enumerate(f, start=1):
            yield number, offset, _decode(name, number, raw)
            offset += len(raw)


def open_bytes(path: str | Path) -> BinaryIO:
    """`path` opened for reading bytes.

    Raises:
        InputError: ``file_not_found``, ``is_directory`` or ``unreadable``.
    """
    check_file(path)
    try:
        return open(path, "rb")
    except OSError as e:  # not str(e): it names the path, which may be a temporary upload's
        raise InputError("unreadable", file=str(path), detail=e.strerror or type(e).__name__) from None


def _decode(name: str, number: int, raw: bytes) -> str:
    """Line `number` of file `name` as text (a BOM dropped from the first).

    Raises:
        InputError: ``invalid_utf8`` naming the line.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("invalid_utf8", file=name, line=number) from None
    return text.removeprefix("\ufeff") if number == 1 else text


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield ``(line number, object)`` for each non-blank line of a JSON Lines file.

    Raises:
        InputError: ``file_not_found``, ``invalid_utf8``, ``bad_json``, ``not_object``, and ``duplicate_key`` or
            ``nul_byte`` (see :func:`check_json`).
    """
    for number, _, value in iter_jsonl_at(path):
        yield number, value


def iter_jsonl_at(path: str | Path) -> Iterator[tuple[int, int, dict]]:
    """As :func:`iter_jsonl`, with where each line starts: ``(line number, byte offset, object)``."""
    for number, offset, text in iter_lines_at(path):
        if text.strip():
            yield number, offset, _json_object(Where(str(path), number), text)


def read_jsonl_line(f: BinaryIO, name: str, number: int, offset: int) -> dict:
    """The object on line `number` of the JSON Lines file `name` (open as `f`), which starts at byte `offset`:
    read again, and checked again, after :func:`iter_jsonl_at` found it there.

    Raises:
        InputError: the errors of :func:`iter_jsonl`, or ``unreadable`` when the line is blank now (the file
            changed since it was read).
    """
    f.seek(offset)
    text = _decode(name, number, f.readline())
    if not text.strip():
        raise InputError("unreadable", file=name, line=number, detail="the file changed while it was imported")
    return _json_object(Where(name, number), text)


def _json_object(at: Where, text: str) -> dict:
    """The JSON object of one non-blank line, checked (see :func:`iter_jsonl`)."""
    try:
        value = loads(text)
    except json.JSONDecodeError as e:
        if "\x00" in text:  # outside any string, so no field to name
            raise at.error("nul_byte") from None
        raise at.error("bad_json", detail=e.msg) from None
    check_json(value, at)
    if not isinstance(value, dict):
        raise at.error("not_object")
    return value


class _Repeated(dict):
    """A JSON object that gave `key` twice (``json`` keeps the last value without a word)."""

    key: str


def _object(pairs: list[tuple[str, object]]) -> dict:
    obj: dict = {}
    for key, value in pairs:
        if key in obj:
            repeated = _Repeated(obj)
            repeated.key = key
            return repeated
        obj[key] = value
    return obj


def loads(text: str) -> object:
    """``json.loads`` that keeps what :func:`check_json` looks for: an object with a repeated key stays
    recognisable, and a NUL inside a string is read (not refused as a control character) so that the field
    holding it can be named.

    Raises:
        json.JSONDecodeError: as ``json.loads``.
    """
    return json.loads(text, object_pairs_hook=_object, strict="\x00" not in text)


def check_json(value: object, at: Where) -> None:
    """Refuse a value read by :func:`loads` that would change data silently.

    Raises:
        InputError: ``duplicate_key`` for an object with a key given twice, ``nul_byte`` for a NUL character
            in a string or key, each naming the field as a path (``retrieved_docs[1].content``).
    """
    found = _suspect(value, "")
    if found:
        code, field, params = found
        raise at.error(code, field or None, **params)


def _suspect(value: object, path: str) -> tuple[str, str, dict] | None:
    """The first repeated key or NUL character in `value`, as ``(code, field path, params)``."""
    if isinstance(value, str):
        return ("nul_byte", path, {}) if "\x00" in value else None
    if isinstance(value, _Repeated):
        return "duplicate_key", _path(path, value.key), {"key": _printable(value.key)}
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return "nul_byte", _path(path, key), {}
            found = _suspect(item, _path(path, key))
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _suspect(item, f"{path}[{index}]")
            if found:
                return found
    return None


def _path(path: str, key: str) -> str:
    key = _printable(key)
    return f"{path}.{key}" if path else key


def _printable(text: str) -> str:
    """`text` with NUL shown as ``\\0``, so a message never carries the character itself."""
    return text.replace("\x00", "\\0")


def get_text(obj: dict, name: str, at: Where, *, field: str | None = None, required: bool = True) -> str:
    """The stripped string `obj[name]`; ``""`` when optional and absent.

    Raises:
        InputError: ``missing_field`` (absent or null), ``bad_type`` (not a string) or ``empty_text``.
    """
    value = obj.get(name)
    if type(value) is str:  # the usual case, first (a file has millions of rows)
        text = value.strip()
        if text or not required:
            return text
    field = field or name
    if value is None:
        if required:
            raise at.error("missing_field", field)
        return ""
    if not isinstance(value, str):
        raise at.error("bad_type", field, expected="string", got=json_type(value))
    value = value.strip()
    if required and not value:
        raise at.error("empty_text", field)
    return value


def get_id(obj: dict, name: str, at: Where, *, field: str | None = None,
           required: bool = False) -> str | None:
    """`obj[name]` as a stripped string id (integers are accepted); None when optional and absent or blank.

    Raises:
        InputError: ``bad_type``, and when required ``missing_field`` or ``empty_text``.
    """
    value = obj.get(name)
    if type(value) is str:  # the usual case, first
        key = value.strip()
        if key:
            return key
    field = field or name
    if value is None:
        if required:
            raise at.error("missing_field", field)
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise at.error("bad_type", field, expected="string or integer", got=json_type(value))
    key = str(value).strip()
    if required and not key:
        raise at.error("empty_text", field)
    return key or None


def read_pairs(path: str | Path, *, stream: bool = False) -> ImportBatch:
    """Read pairs to annotate: ``query``, ``document``; optional ``query_id``, ``doc_id``, ``title``.

    Args:
        path: a ``.csv``, ``.tsv``/``.tab``, ``.jsonl`` or ``.json`` (list of objects) file.
        stream: return a batch whose ``pairs`` are read lazily, once, as the store imports them (memory flat in
            the file's size). The file's start is read now (its header and first row checked, ``no_rows`` for an
            empty file); a later bad row raises the same error, naming the same line and field, during
            :func:`~studio.store.imports.import_batch`, which then writes nothing. A ``.json`` file is one
            document and is read whole either way.

    Raises:
        InputError: for the first problem found; without `stream`, nothing is returned unless the whole file is
            valid.
    """
    name = str(path)
    rows = _rows(path, PAIR_FIELDS) if stream else _records(path, PAIR_FIELDS)
    pairs = (PairRecord(*_pair(row, Where(name, line)), line=line) for line, row in rows)
    return ImportBatch("import", name, gathered(pairs, stream))


def read_ratings(path: str | Path, *, stream: bool = False) -> ImportBatch:
    """Read ratings made elsewhere: the pair fields plus ``annotator``, ``rating`` (0/1/2), optional ``note``.

    A rating is an integer or a string of one (``2``, ``"2"``); ``"2.0"`` and ``2.0`` are refused. A pair
    is identified by ``query_id``/``doc_id`` when given, else by its texts; with ids the texts may be left out
    (then the query and document must be in the database already: :func:`_rated_pair`). In one file a pair may be
    rated once per annotator and by at most two annotators.

    Args:
        stream: as for :func:`read_pairs`. The check above still remembers each pair's raters (a set per pair,
            not the records).

    Raises:
        InputError: ``bad_rating``, ``duplicate_rating``, ``too_many_raters`` and the errors of
            :func:`read_pairs`.
    """
    name = str(path)
    rows = _rows(path, RATING_FIELDS) if stream else _records(path, RATING_FIELDS)
    return ImportBatch("ratings", name, gathered(_rating_records(name, rows), stream))


def _rating_records(name: str, rows: Iterable[tuple[int, dict]]) -> Iterator[PairRecord]:
    """The records of :func:`read_ratings`, checked as they are read."""
    raters: dict[tuple, set[str]] = {}
    for line, row in rows:
        at = Where(name, line)
        query, document = _rated_pair(row, at)
        annotator = get_text(row, "annotator", at)
        rating = _rating(row.get("rating"), at)
        note = get_text(row, "note", at, required=False)
        seen = raters.setdefault(_pair_identity(query, document), set())
        if annotator in seen:
            raise at.error("duplicate_rating", "annotator", annotator=annotator)
        if len(seen) >= 2:
            raise at.error("too_many_raters", "annotator", annotator=annotator)
        seen.add(annotator)
        yield PairRecord(query, document, line=line, annotator=annotator, rating=rating, note=note)


def _pair(row: dict, at: Where) -> tuple[Query, Document]:
    query = Query(get_text(row, "query", at), key=get_id(row, "query_id", at))
    document = Document(get_text(row, "document", at), key=get_id(row, "doc_id", at),
                        title=get_text(row, "title", at, required=False))
    return query, document


def _rated_pair(row: dict, at: Where) -> tuple[Query, Document]:
    """The pair a rating is about: as :func:`_pair`, except that a side given by id alone (its text absent or blank)
    is a reference to a query or document already imported (``text`` None; the store resolves it)."""
    query_key, doc_key = get_id(row, "query_id", at), get_id(row, "doc_id", at)
    by_id = query_key is not None and _blank(row, "query"), doc_key is not None and _blank(row, "document")
    if not any(by_id):
        return _pair(row, at)
    query = Query(None, key=query_key) if by_id[0] else Query(get_text(row, "query", at), key=query_key)
    document = Document(None, key=doc_key) if by_id[1] else Document(
        get_text(row, "document", at), key=doc_key, title=get_text(row, "title", at, required=False))
    return query, document


def _blank(row: dict, name: str) -> bool:
    value = row.get(name)
    return value is None or (isinstance(value, str) and not value.strip())


def _pair_identity(query: Query, document: Document) -> tuple:
    # Texts compare with white space collapsed, as the store matches them.
    return (("id", query.key) if query.key else ("text", " ".join(query.text.split())),
            ("id", document.key) if document.key else ("text", " ".join(document.text.split())))


def _rating(value: object, at: Where) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise at.error("missing_field", "rating")
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value)
    else:
        number = -1
    if number not in (0, 1, 2):
        raise at.error("bad_rating", "rating", value=value)
    return number


def _records(path: str | Path, required: Sequence[str]) -> list[tuple[int, dict]]:
    """All rows of a tabular file as ``(line, dict)``; raises ``no_rows`` when there are none."""
    return list(_rows(path, required))


def _rows(path: str | Path, required: Sequence[str]) -> Iterator[tuple[int, dict]]:
    """The rows of a tabular file as ``(line, dict)``, read lazily; ``no_rows`` is raised at the end when there
    were none. The file and its format are checked now (``file_not_found``, ``unknown_format``)."""
    name = str(path)
    check_file(path)
    suffix = Path(path).suffix.lower()
    if suffix in DELIMITERS:
        rows = _csv_rows(path, DELIMITERS[suffix], required)
    elif suffix == ".jsonl":
        rows = iter_jsonl(path)
    elif suffix == ".json":
        rows = iter(_json_rows(path))
    else:
        raise InputError("unknown_format", file=name, suffix=Path(path).suffix)
    return nonempty(rows, name)


def _csv_rows(path: str | Path, delimiter: str, required: Sequence[str]) -> Iterator[tuple[int, dict]]:
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


def _json_rows(path: str | Path) -> list[tuple[int, dict]]:
    name = str(path)
    text = "".join(chunk for _, chunk in iter_lines(path))
    try:
        data = loads(text)
    except json.JSONDecodeError as e:
        if "\x00" in text:  # a NUL outside any string broke the JSON: name the line it is on
            raise InputError("nul_byte", file=name, line=text.count("\n", 0, text.index("\x00")) + 1) from None
        raise InputError("bad_json", file=name, line=e.lineno, detail=e.msg) from None
    if not isinstance(data, list):
        check_json(data, Where(name, 1))
        raise InputError("bad_type", file=name, line=1, expected="list of objects", got=json_type(data))
    rows = []
    for line, item in zip(_element_lines(text), data):
        check_json(item, Where(name, line))
        if not isinstance(item, dict):
            raise InputError("not_object", file=name, line=line)
        rows.append((line, item))
    return rows


def _element_lines(text: str) -> Iterator[int]:
    """The line on which each element of a (valid) top-level JSON list starts."""
    decoder = json.JSONDecoder(strict=False)  # only finds where elements start; `text` was read by loads()
    pos = _JSON_SPACE.match(text).end() + 1  # just past "["
    line, counted = 1, 0
    while True:
        pos = _JSON_SPACE.match(text, pos).end()
        if text[pos] == "]":
            return
        line, counted = line + text.count("\n", counted, pos), pos
        yield line
        _, pos = decoder.raw_decode(text, pos)
        pos = _JSON_SPACE.match(text, pos).end() + 1  # past "," or the closing "]"
        if text[pos - 1] == "]":
            return
