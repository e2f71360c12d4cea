"""One string catalogue per language (`studio/locales/<lang>.json`), shared by the UI, the CLI and errors.

The UI hands the same dictionaries to `gr.I18n`, so static labels are translated in the browser; text the
server builds (messages, generated Markdown, chart titles) goes through :func:`t`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

LOCALES_DIR = Path(__file__).parent / "locales"
LANGUAGES: tuple[str, ...] = ("en", "zh-CN")
DEFAULT_LANGUAGE = "en"
LANGUAGE_NAMES = {"en": "English", "zh-CN": "简体中文"}


def catalogue(lang: str) -> dict[str, str]:
    """All strings of one language, keyed by dotted names such as ``"annotate.submit"``; a language the studio does
    not have (a page may send anything) is normalised (:func:`normalize_language`), never read as a file name."""
    return _catalogue(lang if lang in LANGUAGES else normalize_language(lang))


@lru_cache(maxsize=None)
def _catalogue(lang: str) -> dict[str, str]:
    with open(LOCALES_DIR / f"{lang}.json", encoding="utf-8") as f:
        return json.load(f)


def normalize_language(value: str | None) -> str:
    """Map a browser locale or Accept-Language header (``zh``, ``zh-Hans-CN``, ``en-US,en;q=0.9``) to ours."""
    if not value:
        return DEFAULT_LANGUAGE
    first = value.split(",")[0].split(";")[0].strip().lower().replace("_", "-")
    if first.startswith("zh"):
        return "zh-CN"
    return DEFAULT_LANGUAGE


def t(key: str, lang: str | None = DEFAULT_LANGUAGE, /, **params: object) -> str:
    """Translate `key` into `lang`, falling back to English, then to the key itself.

    Args:
        key: catalogue key, e.g. ``"error.missing_field"``.
        lang: a language code or a browser locale; normalised with :func:`normalize_language`.
        **params: values for ``{name}`` placeholders in the string.
    """
    lang = lang if lang in LANGUAGES else normalize_language(lang)
    text = catalogue(lang).get(key)
    if text is None:
        text = catalogue(DEFAULT_LANGUAGE).get(key, key)
    return text.format(**params) if params else text
