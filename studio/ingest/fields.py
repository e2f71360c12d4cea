"""Where a value is in an input file, and reading one field of a row: the helpers every reader shares.

:class:`Where` builds the :class:`~studio.errors.InputError` that names the file, the 1-based physical line and the
field; :func:`get_text` and :func:`get_id` read a text or an id the same way in every format.
"""

from __future__ import annotations

from typing import NamedTuple

from studio.errors import InputError

_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "object"}


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
