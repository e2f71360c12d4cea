"""The project's annotation guidelines: everyone on the team reads them (② opens them with `g`), an admin writes them
(① or ``studio guidelines set FILE``), one Markdown text per language, with one gold example of each level."""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.actions.base import Actor, Project, action
from studio.i18n import LANGUAGES
from studio.store import guidelines as store_guidelines

MAX_BYTES = store_guidelines.MAX_BYTES


@dataclass(frozen=True)
class Guidelines:
    """The written texts by language, and the examples (one gold pair per level, 2 then 1 then 0)."""

    texts: dict[str, str] = field(default_factory=dict)
    examples: list[dict] = field(default_factory=list)

    def text_for(self, lang: str) -> tuple[str | None, str | None]:
        """(text, its language) for a reader of `lang`: their language, else the other one written, else (None,
        None) when nobody wrote guidelines yet."""
        for candidate in (lang, *LANGUAGES):
            if candidate in self.texts:
                return self.texts[candidate], candidate
        return None, None


@action("annotator", cli="guidelines show")
def read(project: Project, actor: Actor, *, existing: bool = False) -> Guidelines:
    """The guidelines in every language written, and one gold example of each level."""
    with project.db(existing=existing) as db:
        return Guidelines(store_guidelines.get_texts(db), store_guidelines.examples(db))


@action("admin", cli="guidelines set")
def set_text(project: Project, actor: Actor, lang: str, text: str | bytes, *, file: str | None = None,
             existing: bool = False) -> str:
    """Write the guidelines of `lang` (Markdown, UTF-8, at most MAX_BYTES; `file` names the source in errors),
    replacing the earlier text; audited with the text before and after. Returns the text as stored."""
    with project.db(existing=existing) as db:
        return store_guidelines.set_text(db, lang, text, actor=actor.name, file=file)


@action("admin", cli="guidelines clear")
def clear(project: Project, actor: Actor, lang: str, *, existing: bool = False) -> bool:
    """Remove the guidelines of `lang` (audited); False when there were none."""
    with project.db(existing=existing) as db:
        return store_guidelines.clear(db, lang, actor=actor.name)
