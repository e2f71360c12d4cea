"""What every tab gets: the database path, the i18n catalogue and the per-session language box."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from studio.errors import StudioError
from studio.i18n import LANGUAGES, catalogue, t
from studio.store import opened


def make_i18n() -> gr.I18n:
    return gr.I18n(**{lang: catalogue(lang) for lang in LANGUAGES})


@dataclass
class UIContext:
    db_path: Path
    i18n: gr.I18n
    lang: gr.Textbox | None = None
    # (fn, inputs, outputs) run once the page has loaded and the language is known
    on_load: list[tuple[Callable, list, list]] = field(default_factory=list)

    def db(self):
        """``with ctx.db() as db:`` — one connection per event (handlers run in a thread pool)."""
        return opened(self.db_path)


def error_text(exc: Exception, lang: str) -> str:
    """A user-facing message: our errors in the user's language, anything else as its first line."""
    if isinstance(exc, StudioError):
        return exc.message(lang)
    return t("common.unexpected_error", lang, detail=str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__)
