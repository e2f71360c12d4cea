"""The errors the studio raises for user mistakes; the CLI and UI turn them into one-line messages.

Each error carries a catalogue code (``error.<code>`` in ``studio/locales``) and its parameters, so the
same error reads in English on the CLI and in the user's language in the UI (:meth:`StudioError.message`).
"""

from __future__ import annotations

from studio.i18n import t


class StudioError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""

    def __init__(self, code: str, /, **params: object):
        self.code, self.params = code, params
        super().__init__(self.message("en"))

    def message(self, lang: str = "en") -> str:
        """The message in `lang` (``en`` or ``zh-CN``)."""
        return t(f"error.{self.code}", lang, **self.params)


class InputError(StudioError):
    """A file or row of user input is malformed; names the file, line and field."""

    def __init__(self, code: str, /, *, file: str | None = None, line: int | None = None,
                 field: str | None = None, **params: object):
        self.file, self.line, self.field = file, line, field
        super().__init__(code, **params)

    def message(self, lang: str = "en") -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.line is not None:
            where.append(t("error.where_line", lang, line=self.line))
        if self.field:
            where.append(t("error.where_field", lang, field=self.field))
        reason = t(f"error.{self.code}", lang, **self.params)
        return f"{', '.join(where)}: {reason}" if where else reason


class NotFoundError(StudioError):
    """A record (annotator, pair, query, document, file) does not exist."""


class RuleError(StudioError):
    """An annotation rule would be broken (third rater, self double-rating, wrong role)."""


class Forbidden(StudioError):
    """The actor's role does not allow this action (checked on the server, audited)."""

    def __init__(self, what: str, /, *, actor: str, role: str, needs: str):
        self.what = what
        super().__init__("forbidden", actor=actor, role=role, needs=needs, action=what)

    def message(self, lang: str = "en") -> str:
        p = self.params
        return t("error.forbidden", lang, actor=p["actor"], role=t(f"role.{p['role']}", lang),
                 needs=t(f"role.{p['needs']}", lang))
