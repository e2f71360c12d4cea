"""JSON Lines and JSON files, read strictly: one object a line (or a list of objects), each checked for what would
change data silently.

A JSON object giving a key twice (``duplicate_key``; JSON itself keeps the last value) and a NUL character in any
string or key (``nul_byte``; it would be stored inside the text) are refused like any other bad row, naming the
field as a path (``retrieved_docs[1].content``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from studio.errors import InputError
from studio.ingest.fields import Where, json_type
from studio.ingest.files import decode_line, iter_lines, iter_lines_at

_JSON_SPACE = re.compile(r"[ \t\n\r]*")


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
    text = decode_line(name, number, f.readline())
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


def json_rows(path: str | Path) -> list[tuple[int, dict]]:
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
