"""Opening an input file and reading its lines: UTF-8, line by line, so that a bad byte is named by its line.

Every problem becomes an :class:`~studio.errors.InputError` naming the file (and the line), never the server's error
text (it may name a temporary upload's path).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from studio.errors import InputError


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
            yield number, offset, decode_line(name, number, raw)
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


def decode_line(name: str, number: int, raw: bytes) -> str:
    """Line `number` of file `name` as text (a BOM dropped from the first).

    Raises:
        InputError: ``invalid_utf8`` naming the line.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("invalid_utf8", file=name, line=number) from None
    return text.removeprefix("\ufeff") if number == 1 else text
