"""The FlagEmbedding training file (JSONL, one ``{"query", "pos", "neg"}`` object a line, optional ``pos_scores`` /
``neg_scores``): the one reader every part of the studio uses, with the checks the worker applies, and the query
fingerprints a fine-tune records about the queries it learned from (``studio_model.json``), so an evaluation can
leave them out after the training files are rewritten or deleted (:mod:`studio.evaluation.heldout`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from studio.training.config import check_train_line, read_lines


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
