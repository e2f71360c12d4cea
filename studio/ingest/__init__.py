"""Readers that turn user files into :class:`~studio.ingest.records.ImportBatch` records.

Readers only parse and validate (raising :class:`~studio.errors.InputError`); the store writes batches.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from studio.ingest.beir import read_beir
from studio.ingest.logs import read_logs
from studio.ingest.records import ImportBatch
from studio.ingest.tabular import read_pairs, read_ratings

READERS: dict[str, Callable[..., ImportBatch]] = {
    "pairs": read_pairs,
    "ratings": read_ratings,
    "beir": read_beir,
    "logs": read_logs,
}

__all__ = ["READERS", "read_any", "read_beir", "read_logs", "read_pairs", "read_ratings"]


def read_any(kind: str, path: str | Path, *, stream: bool = True, **options: object) -> ImportBatch:
    """Read `path` with the reader for `kind` (``pairs``, ``ratings``, ``beir`` or ``logs``).

    This is the import's door (:func:`studio.actions.collect.import_file`), so the batch is streamed by default:
    its records are read once, by :func:`~studio.store.imports.import_batch`, and a bad line rolls that import
    back (see the readers' `stream`).

    Args:
        kind: which reader to use.
        path: the file (or, for ``beir``, the directory).
        stream: read lazily (memory flat in the file's size); False returns lists.
        **options: passed to the reader, e.g. ``split`` and ``min_relevant`` for ``beir``.

    Raises:
        ValueError: `kind` is not one of the four.
    """
    try:
        reader = READERS[kind]
    except KeyError:
        raise ValueError(f"unknown import kind {kind!r}; use one of {', '.join(READERS)}") from None
    return reader(path, stream=stream, **options)
