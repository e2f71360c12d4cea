"""HTML fragments the tabs show. Every piece of user text is escaped before it is marked up."""

from __future__ import annotations

import html

from studio.i18n import t
from studio.actions.search import highlight_terms

RATING_KEYS = {2: "rating.2", 1: "rating.1", 0: "rating.0"}


def highlight(text: str, query: str) -> str:
    """Escape `text` and wrap the query's terms in <mark>; never lets the text's own HTML through.

    Chinese terms are overlapping bigrams (糖尿, 尿病), so matches are merged into character spans first:
    a whole word is marked once rather than half of it.
    """
    lowered = text.lower()
    covered = [False] * len(text)
    for term in highlight_terms(query):
        start = lowered.find(term)
        while start != -1:
            covered[start:start + len(term)] = [True] * len(term)
            start = lowered.find(term, start + 1)
    out, i = [], 0
    while i < len(text):
        j = i
        while j < len(text) and covered[j] == covered[i]:
            j += 1
        piece = html.escape(text[i:j])
        out.append(f"<mark>{piece}</mark>" if covered[i] else piece)
        i = j
    return "".join(out)


def rating_badge(value: int | None, lang: str) -> str:
    if value is None:
        return ""
    return f'<span class="rs-badge rs-r{value}">{value} · {html.escape(t(RATING_KEYS[value], lang))}</span>'


def pair_card(query: str, title: str, document: str, lang: str, *, pair_id: int | None = None,
              extra: str = "") -> str:
    """Query on top, document below (scrolls when long), query terms highlighted."""
    head = f'<div class="rs-label">{html.escape(t("card.query", lang))}'
    if pair_id is not None:
        head += f' <span class="rs-pairid">#{pair_id}</span>'
    head += "</div>"
    title_html = f'<div class="rs-doc-title">{highlight(title, query)}</div>' if title else ""
    return (
        f'<div class="rs-card">{head}<div class="rs-query">{html.escape(query)}</div>'
        f'<div class="rs-label">{html.escape(t("card.document", lang))}</div>'
        f'<div class="rs-doc">{title_html}<div class="rs-doc-text">{highlight(document, query)}</div></div>'
        f"{extra}</div>"
    )


def empty_card(message: str) -> str:
    return f'<div class="rs-card rs-empty">{html.escape(message)}</div>'


def stat_tiles(items: list[tuple[str, str, str]]) -> str:
    """A row of big-number tiles: (label, value, css modifier)."""
    tiles = "".join(
        f'<div class="rs-tile {html.escape(mod)}"><div class="rs-tile-value">{html.escape(value)}</div>'
        f'<div class="rs-tile-label">{html.escape(label)}</div></div>'
        for label, value, mod in items
    )
    return f'<div class="rs-tiles">{tiles}</div>'


def message(text: str, kind: str = "ok") -> str:
    """A one-line status message (ok | info | warn | error)."""
    return f'<div class="rs-msg rs-{kind}">{html.escape(text)}</div>'
