"""Helpers for streamed batches: records read lazily, one pass, inside the import's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain
from typing import TypeVar

from studio.errors import InputError

T = TypeVar("T")


def primed(items: Iterable[T]) -> Iterator[T]:
    """`items` with its first item read now, so that the errors of a file's start (unreadable, a bad header,
    a bad first row, ``no_rows`` for an empty file) are raised when the reader is called, not during the import."""
    it = iter(items)
    for first in it:
        return chain((first,), it)
    return iter(())


def nonempty(items: Iterable[T], file: str) -> Iterator[T]:
    """`items`, raising ``no_rows`` naming `file` at the end when there were none."""
    empty = True
    for item in items:
        empty = False
        yield item
    if empty:
        raise InputError("no_rows", file=file)


def gathered(items: Iterable[T], stream: bool) -> Iterable[T]:
    """`items` as a list, or, when `stream`, as a primed iterator read once (see :func:`primed`)."""
    return primed(items) if stream else list(items)
