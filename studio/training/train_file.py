"""The FlagEmbedding training file (JSONL, one ``{"query", "pos", "neg"}`` object a line, optional ``pos_scores`` /
``neg_scores``): the one reader every part of the studio uses, with the checks the worker applies, and the query
fingerprints a fine-tune records about the queries it learned from (``studio_model.json``), so an evaluation can
leave them out after the training files are rewritten or deleted (:mod:`studio.evaluation.heldout`).

:func:`check_train_file` checks a file (its first :data:`CHECKED_LINES` lines before a job is recorded, every line in
the worker), :func:`records` reads it, :func:`count_lines` counts its queries without checking them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from studio.errors import InputError

# Lines of a training file checked before a job is recorded (the worker reads them all): big files stay fast.
CHECKED_LINES = 100
SUFFIXES = (".jsonl", ".json")


@dataclass(frozen=True)
class Checked:
    """What :func:`check_train_file` found in the lines it checked."""

    lines: int                # non-empty lines checked
    first_has_scores: bool    # the first line carries pos_scores and neg_scores
    all_have_scores: bool     # every line checked does


def check_train_file(path: str | Path, *, distill: str = "auto", limit: int | None = CHECKED_LINES) -> Checked:
    """Check the first `limit` lines of a FlagEmbedding JSONL file (every line when `limit` is None) the way the
    worker reads them.

    Args:
        distill: whether every line must carry ``pos_scores`` and ``neg_scores`` (the job setting of that name):
            ``on`` yes, ``auto`` when the first line does, ``off`` no (as for a validation file).

    Raises:
        InputError: naming the file, line and field: ``file_not_found``, ``train_file_suffix``, a bad line (see
            :func:`check_train_line`), ``train_no_scores``, ``no_rows`` for a file without a line.
    """
    file = Path(path)
    if not file.is_file():
        raise InputError("file_not_found", file=str(path))
    if file.suffix.lower() not in SUFFIXES:
        raise InputError("train_file_suffix", file=str(path), suffix=file.suffix or "(none)")
    checked, first_scores, all_scores = 0, None, True
    for number, raw in read_lines(file, str(path)):
        if not raw.strip():
            continue
        scores = check_train_line(raw, str(path), number)
        first_scores = scores if first_scores is None else first_scores
        all_scores = all_scores and scores
        if not scores and (distill == "on" or (distill == "auto" and first_scores)):
            raise InputError("train_no_scores", file=str(path), line=number)
        checked += 1
        if limit is not None and checked >= limit:
            break
    if not checked:
        raise InputError("no_rows", file=str(path))
    return Checked(checked, bool(first_scores), all_scores)


def read_lines(path: str | Path, name: str | None = None) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 file, decoded line by line so that bad bytes are found where they are.

    Raises:
        InputError: ``invalid_utf8`` naming the file (as `name`, default the path) and the line.
    """
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError("invalid_utf8", file=name or str(path), line=number) from None


def check_train_line(raw: str, file: str, line: int) -> bool:
    """One {"query", "pos", "neg"} line, as FlagEmbedding's datasets read it; returns whether it carries pos_scores
    and neg_scores. Raises InputError naming the file, line and field."""
    try:
        record = json.loads(raw)
    except ValueError as exc:
        raise InputError("train_line_not_json", file=file, line=line, detail=getattr(exc, "msg", str(exc))) from None
    if not isinstance(record, dict):
        raise InputError("not_object", file=file, line=line)
    if not isinstance(record.get("query"), str) or not record["query"].strip():
        raise InputError("train_line_query", file=file, line=line, field="query")
    for key in ("pos", "neg"):
        value = record.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise InputError("train_line_texts", file=file, line=line, field=key)
    for key, texts in (("pos_scores", "pos"), ("neg_scores", "neg")):
        scores = record.get(key)
        if key in record and (not isinstance(scores, list) or len(scores) != len(record[texts])
                              or not all(_number(s) for s in scores)):
            raise InputError("train_line_scores", file=file, line=line, field=key, texts=texts)
    return "pos_scores" in record and "neg_scores" in record


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def records(path: str | Path, name: str | None = None) -> Iterator[tuple[int, str, dict]]:
    """(line number, raw line, parsed record) of each non-empty line of a training or validation file.

    Raises:
        InputError: naming the file (as `name`, default the path), the line and the field, for a line that is not
            UTF-8, not JSON, or not a ``{"query", "pos", "neg"}`` record as FlagEmbedding reads it.
    """
    file = name or str(path)
    for number, raw in read_lines(path, file):
        if raw.strip():
            check_train_line(raw, file, number)
            yield number, raw, json.loads(raw)


def count_lines(path: str | Path) -> int | None:
    """Non-empty lines of a training file (one query each), unchecked, or None when there is no such file."""
    try:
        with open(path, encoding="utf-8") as f:
            return sum(1 for line in f if line.strip())
    except (OSError, UnicodeDecodeError):
        return None


def file_queries(path: str | Path) -> set[str]:
    """The distinct query texts of one training or validation file (checked as :func:`records` checks them)."""
    return {record["query"] for _, _, record in records(path)}


def fingerprint(text: str) -> str:
    """A query text's fingerprint: the first 16 hex digits of its SHA-1 (collisions are out of reach at any
    realistic number of queries, and the texts themselves stay out of the model folder)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def file_fingerprints(path: str | Path | None) -> list[str]:
    """Sorted fingerprints of the distinct query texts of one training file ([] for None)."""
    return sorted(map(fingerprint, file_queries(path))) if path else []
