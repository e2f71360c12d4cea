"""Read query/document pairs and ratings from CSV, TSV, JSONL or JSON files.

The formats are read by :mod:`studio.ingest.delimited` (CSV, TSV) and :mod:`studio.ingest.json_files` (JSONL, JSON),
the fields with :mod:`studio.ingest.fields`; every problem becomes an :class:`InputError` naming the file, the
1-based physical line and the field. Nothing that would change data silently gets through (see those modules).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from studio.errors import InputError
from studio.ingest.delimited import DELIMITERS, csv_rows
from studio.ingest.fields import Where, get_id, get_text
from studio.ingest.files import check_file
from studio.ingest.json_files import iter_jsonl, json_rows
from studio.ingest.records import Document, ImportBatch, PairRecord, Query
from studio.ingest.stream import gathered, nonempty

PAIR_FIELDS = ("query", "document")
RATING_FIELDS = ("annotator", "rating")  # plus the pair: its texts, or query_id/doc_id of an imported one
_DIGITS = re.compile(r"[0-9]+")


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
        rows = csv_rows(path, DELIMITERS[suffix], required)
    elif suffix == ".jsonl":
        rows = iter_jsonl(path)
    elif suffix == ".json":
        rows = iter(json_rows(path))
    else:
        raise InputError("unknown_format", file=name, suffix=Path(path).suffix)
    return nonempty(rows, name)
