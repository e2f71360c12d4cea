"""Read RAG logs: one JSON object per line with the query, the retrieved documents and user feedback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from studio.errors import InputError
from studio.ingest.fields import Where, get_id, get_text, json_type
from studio.ingest.json_files import iter_jsonl
from studio.ingest.records import Document, ImportBatch, Origin, PairRecord, Query

# Unclicked documents ranked this high may simply not have been read, so they get no hint.
AMBIGUOUS_TOP_RANKS = 3

# The keys read at each level of a log line; ``metadata`` (anything) is the place for whatever else a log keeps.
# Any other key is refused: feedback the reader skipped would turn a helpful document into a candidate negative.
LINE_KEYS = ("query", "query_id", "retrieved_docs", "user_feedback", "metadata")
DOCUMENT_KEYS = ("doc_id", "content", "rank", "title", "metadata")
FEEDBACK_KEYS = ("helpful_docs",)
# Where a key written at the wrong level belongs.
HOMES = {"helpful_docs": "user_feedback.helpful_docs",
         **{key: f"retrieved_docs[].{key}" for key in ("doc_id", "content", "rank", "title")}}


def read_logs(path: str | Path, *, stream: bool = False) -> ImportBatch:
    """Read RAG logs into pairs, each with a weak ``hint`` label.

    Each line: ``{"query", "query_id"?, "retrieved_docs": [{"doc_id", "content", "rank", "title"?, "metadata"?}],
    "user_feedback"?: {"helpful_docs": [doc_id, ...]}, "metadata"?}``. ``rank`` is 1-based. The hint is 2 for a
    helpful document, 0 for an unhelpful one ranked below the top 3, and None for an unhelpful one in the top 3.
    A line with no retrieved documents contributes its query to ``extra_queries``. ``metadata`` is not read.
    Error fields are paths such as ``retrieved_docs[2].content`` (0-based index).

    Args:
        stream: return a batch whose ``pairs`` are read lazily, once, by the import (memory flat in the file's
            size). The whole file is checked now, in a first pass that keeps only the queries without documents
            (``extra_queries``, imported before the pairs as without `stream`); the pairs are read again then.

    Raises:
        InputError: for the first problem found, e.g. ``helpful_not_retrieved`` for a helpful doc id that is
            not among the line's retrieved documents, ``bad_type`` for a rank that is not a positive integer,
            ``misplaced_key`` for a known key at the wrong level (``helpful_docs`` outside ``user_feedback``),
            ``unknown_key`` for any other key not listed above.
    """
    name = str(path)
    if stream:
        extra = [query for query, pairs in _log_lines(path) if not pairs]
        return ImportBatch("logs", name, (pair for _, pairs in _log_lines(path) for pair in pairs),
                           extra_queries=extra)
    batch = ImportBatch("logs", name)
    for query, pairs in _log_lines(path):
        if not pairs:
            batch.extra_queries.append(query)
        batch.pairs.extend(pairs)
    return batch


def _log_lines(path: str | Path) -> Iterator[tuple[Query, list[PairRecord]]]:
    """Each line's query and pairs, checked; ``no_rows`` at the end for a file without lines."""
    name = str(path)
    lines = 0
    for line, obj in iter_jsonl(path):
        lines += 1
        at = Where(name, line)
        _check_keys(obj, LINE_KEYS, at)
        query = Query(get_text(obj, "query", at), key=get_id(obj, "query_id", at))
        retrieved = _retrieved(obj, at)
        helpful = _helpful(obj, at)
        retrieved_ids = {document.key for document, _ in retrieved}
        for key in helpful:
            if key not in retrieved_ids:
                raise at.error("helpful_not_retrieved", "user_feedback.helpful_docs", key=key)
        yield query, [PairRecord(query, document, line=line,
                                 hint=2 if document.key in helpful else (0 if rank > AMBIGUOUS_TOP_RANKS else None))
                      for document, rank in retrieved]
    if not lines:
        raise InputError("no_rows", file=name)


def _retrieved(obj: dict, at: Where) -> list[tuple[Document, int]]:
    items = obj.get("retrieved_docs")
    if items is None:
        raise at.error("missing_field", "retrieved_docs")
    if not isinstance(items, list):
        raise at.error("bad_type", "retrieved_docs", expected="list", got=json_type(items))
    result = []
    for index, item in enumerate(items):
        prefix = f"retrieved_docs[{index}]"
        if not isinstance(item, dict):
            raise at.error("bad_type", prefix, expected="object", got=json_type(item))
        _check_keys(item, DOCUMENT_KEYS, at, prefix)
        key = get_id(item, "doc_id", at, field=f"{prefix}.doc_id", required=True)
        text = get_text(item, "content", at, field=f"{prefix}.content")
        title = get_text(item, "title", at, field=f"{prefix}.title", required=False)
        rank = item.get("rank")
        if rank is None:
            raise at.error("missing_field", f"{prefix}.rank")
        if isinstance(rank, bool) or not isinstance(rank, int):
            raise at.error("bad_type", f"{prefix}.rank", expected="integer", got=json_type(rank))
        if rank < 1:
            raise at.error("bad_type", f"{prefix}.rank", expected="a rank of 1 or more", got=str(rank))
        origin = Origin(at.file, at.line, f"{prefix}.doc_id")
        result.append((Document(text, key=key, title=title, origin=origin), rank))
    return result


def _helpful(obj: dict, at: Where) -> set[str]:
    feedback = obj.get("user_feedback")
    if feedback is None:
        return set()
    if not isinstance(feedback, dict):
        raise at.error("bad_type", "user_feedback", expected="object", got=json_type(feedback))
    _check_keys(feedback, FEEDBACK_KEYS, at, "user_feedback")
    ids = feedback.get("helpful_docs")
    if ids is None:
        return set()
    if not isinstance(ids, list):
        raise at.error("bad_type", "user_feedback.helpful_docs", expected="list", got=json_type(ids))
    # get_id validates one id; wrap each list element so it can.
    return {get_id({"id": value}, "id", at, field=f"user_feedback.helpful_docs[{i}]", required=True)
            for i, value in enumerate(ids)}


def _check_keys(obj: dict, known: tuple[str, ...], at: Where, prefix: str = "") -> None:
    """Refuse a key of `obj` that is not in `known`, saying where it belongs when it is a key read elsewhere."""
    for key in obj:
        if key in known:
            continue
        field = f"{prefix}.{key}" if prefix else key
        if key in HOMES:
            raise at.error("misplaced_key", field, key=key, belongs=HOMES[key])
        raise at.error("unknown_key", field, key=key, known=", ".join(known))
