"""CSV cells that a spreadsheet will not run as formulas (OWASP "CSV injection").

Excel, LibreOffice and Google Sheets treat a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some
versions, a tab or carriage return before one) as a formula, so a query text or a model name such as
``=HYPERLINK(...)`` in an exported CSV could run when an analyst opens it. :func:`safe_cell` prefixes such a text
with ``'``, which spreadsheets show as a plain string. Only ``str`` cells change: numbers stay numbers, so a delta
of ``-0.03`` written from a float is still a negative number (and reads back as one). A text that merely looks
like a number, ``"-0.03"``, is prefixed too: the writer cannot tell it from ``"-1+cmd|' /C calc'!A0"``.

Use :func:`writer` / :func:`dict_writer` in place of ``csv.writer`` / ``csv.DictWriter``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from typing import Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """`value`, with ``'`` in front when it is a ``str`` starting with one of :data:`TRIGGERS`; other values as
    they are (``safe_cell(-0.03) == -0.03``, ``safe_cell("=1+1") == "'=1+1"``)."""
    if isinstance(value, str) and value.startswith(TRIGGERS):
        return "'" + value
    return value


class SafeWriter:
    """A ``csv.writer`` whose rows go through :func:`safe_cell`."""

    def __init__(self, f, dialect: str | type[csv.Dialect] = "excel", **fmtparams: Any) -> None:
        self._writer = csv.writer(f, dialect, **fmtparams)

    @property
    def dialect(self):
        return self._writer.dialect

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class SafeDictWriter(csv.DictWriter):
    """A ``csv.DictWriter`` whose values (and header) go through :func:`safe_cell`."""

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow({k: safe_cell(v) for k, v in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for row in rowdicts:
            self.writerow(row)


def writer(f, dialect: str | type[csv.Dialect] = "excel", **fmtparams: Any) -> SafeWriter:
    """``csv.writer(f, ...)`` that neutralises formula-like text cells (:func:`safe_cell`)."""
    return SafeWriter(f, dialect, **fmtparams)


def dict_writer(f, fieldnames: Iterable[str], **kwargs: Any) -> SafeDictWriter:
    """``csv.DictWriter(f, fieldnames, ...)`` that neutralises formula-like text cells (:func:`safe_cell`)."""
    return SafeDictWriter(f, fieldnames, **kwargs)
