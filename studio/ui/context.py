"""What every tab gets: the project, whether sign-in is on, the i18n catalogue and the per-session language box."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from studio.actions import Actor, Project
from studio.actions.team import signed_in_actor
from studio.errors import StudioError
from studio.i18n import LANGUAGES, catalogue, t


def make_i18n() -> gr.I18n:
    return gr.I18n(**{lang: catalogue(lang) for lang in LANGUAGES})


@dataclass
class UIContext:
    db_path: Path
    i18n: gr.I18n
    auth: bool = False        # sign-in on: the actor is the signed-in user, never a name the page sends
    lang: gr.Textbox | None = None
    # (fn, inputs, outputs) run once the page has loaded and the language is known
    on_load: list[tuple[Callable, list, list]] = field(default_factory=list)
    # fn(request) run when a browser session ends (the tab closed or reloaded)
    on_unload: list[Callable] = field(default_factory=list)

    @property
    def project(self) -> Project:
        return Project(self.db_path)

    def actor(self, request: gr.Request | None, picked: str | None = None) -> Actor:
        """Who is acting in this request. With sign-in: the signed-in user with their role from the database
        (`picked` is ignored). Without sign-in (this machine, or a trusted room): the name picked in the page,
        acting as a local admin."""
        if self.auth:
            return signed_in_actor(self.project, getattr(request, "username", None) if request is not None else None)
        return Actor.local((picked or "").strip() or "local")


def error_text(exc: Exception, lang: str) -> str:
    """A user-facing message: our errors in the user's language, anything else as its first line."""
    if isinstance(exc, StudioError):
        return exc.message(lang)
    return t("common.unexpected_error", lang, detail=str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__)
