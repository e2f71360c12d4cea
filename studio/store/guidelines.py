"""The project's annotation guidelines (Markdown, one text per language, in ``settings``) and the examples shown
with them: one gold pair per level (2, 1, 0).

An example is read by every annotator, so it is never a pair that could still be served to rate (a control, an open
second look, or a pair still in the queue without two ratings): showing its label would give the answer away.
"""

from __future__ import annotations

from sqlite_utils import Database

from studio.errors import InputError, StudioError
from studio.i18n import LANGUAGES
from studio.store.audit import record
from studio.store.connection import immediate
from studio.store.queue import get_setting

KEY_PREFIX = "guidelines."
MAX_BYTES = 64 * 1024          # a guidelines text, UTF-8 encoded: several pages of Markdown
EXCERPT_CHARS = 400            # how much of an example's document is shown
LEVELS = (2, 1, 0)


def setting_key(lang: str) -> str:
    """The settings key of one language's text (``guidelines.en``); an unknown language is refused."""
    if lang not in LANGUAGES:
        raise StudioError("guidelines_language", lang=lang, languages=", ".join(LANGUAGES))
    return KEY_PREFIX + lang


def get_texts(db: Database) -> dict[str, str]:
    """The written guidelines by language (a language nobody wrote is absent)."""
    texts = {}
    for lang in LANGUAGES:
        text = get_setting(db, setting_key(lang))
        if text:
            texts[lang] = text
    return texts


def decode(data: str | bytes, *, file: str | None = None) -> str:
    """`data` as guidelines text: UTF-8, at most :data:`MAX_BYTES`, not empty, no NUL bytes (a binary file).

    Raises:
        InputError: naming `file` (when given) and what is wrong.
    """
    try:
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        if len(raw) > MAX_BYTES:
            raise InputError("guidelines_too_large", file=file, size=len(raw), limit=MAX_BYTES)
        text = raw.decode("utf-8")
    except UnicodeError as exc:  # bytes that are not UTF-8, or a str with lone surrogates
        raise InputError("guidelines_not_utf8", file=file, offset=exc.start) from None
    if "\x00" in text:
        raise InputError("guidelines_not_text", file=file)
    text = text.lstrip("\ufeff").strip()
    if not text:
        raise InputError("guidelines_empty", file=file)
    return text


def set_text(db: Database, lang: str, data: str | bytes, *, actor: str, file: str | None = None) -> str:
    """Store the guidelines of `lang` (replacing the earlier text), audited with the text before and after.

    Returns the text as stored (:func:`decode`: BOM and surrounding blank lines removed).
    """
    key = setting_key(lang)
    text = decode(data, file=file)
    with immediate(db):
        before = get_setting(db, key)
        db.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = "
                   "excluded.value", [key, text])
        record(db, actor=actor, action="guidelines.set", entity="settings", entity_id=None,
               before={"lang": lang, "text": before}, after={"lang": lang, "text": text})
    return text


def clear(db: Database, lang: str, *, actor: str) -> bool:
    """Remove the guidelines of `lang`; False (and no audit entry) when there were none."""
    key = setting_key(lang)
    with immediate(db):
        before = get_setting(db, key)
        if before is None:
            return False
        db.execute("DELETE FROM settings WHERE key = ?", [key])
        record(db, actor=actor, action="guidelines.clear", entity="settings", entity_id=None,
               before={"lang": lang, "text": before}, after={"lang": lang, "text": None})
    return True


# Gold pairs people decided (two ratings, or an expert's label) first, then labels that came with the data for pairs
# no longer in the queue; shorter documents first; the pair id breaks ties, so the choice is the same every time.
_EXAMPLES = """
    SELECT g.pair_id, g.label, g.origin, q.key AS query_id, q.text AS query, d.key AS doc_id, d.title,
           d.text AS document
    FROM gold g
    JOIN pairs p ON p.id = g.pair_id
    JOIN queries q ON q.id = g.query_id
    JOIN documents d ON d.id = g.document_id
    WHERE g.label = ?
      AND (g.origin IN ('adjudicated', 'agreed') OR p.in_queue = 0)
      AND g.pair_id NOT IN (SELECT pair_id FROM controls)
      AND g.pair_id NOT IN (SELECT pair_id FROM second_looks)
    ORDER BY CASE WHEN g.origin IN ('adjudicated', 'agreed') THEN 0 ELSE 1 END,
             length(d.title) + length(d.text), g.pair_id
    LIMIT 1
"""


def examples(db: Database) -> list[dict]:
    """One gold pair per level, 2, 1 then 0 (a level without a suitable gold pair is left out): pair id, label,
    origin, the external query and document ids, the query, the document's title and an excerpt of its text
    (:data:`EXCERPT_CHARS`, cut at a word when one ends near there; ``truncated`` says whether it was cut)."""
    found = []
    for level in LEVELS:
        rows = list(db.query(_EXAMPLES, [level]))
        if not rows:
            continue
        row = rows[0]
        text = row.pop("document")
        row["excerpt"], row["truncated"] = excerpt(text)
        found.append(row)
    return found


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> tuple[str, bool]:
    """The start of `text`, at most `limit` characters, cut after a space when there is one in the last fifth."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text, False
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit * 4 // 5 else cut).rstrip() + "…", True
