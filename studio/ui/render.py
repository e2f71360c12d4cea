"""HTML fragments the tabs show. Every piece of user text is escaped before it is marked up."""

from __future__ import annotations

import html
import json

import plotly.graph_objects as go

from studio.i18n import t
from studio.actions.search import highlight_terms

RATING_KEYS = {2: "rating.2", 1: "rating.1", 0: "rating.0"}


def highlight(text: str, query: str) -> str:
    """Escape `text` and wrap the query's terms in <mark>; never lets the text's own HTML through.

    Chinese terms are overlapping bigrams (糖尿, 尿病), so matches are merged into character spans first:
    a whole word is marked once rather than half of it. Matching is case-insensitive on the original text: each
    character is lower-cased on its own and a match marks the characters it came from, so a character whose lower
    case is longer (``İ`` → ``i̇``) does not shift the marks after it.
    """
    lowered, owner = _lowered(text)
    covered = [False] * len(text)
    for term in highlight_terms(query):
        start = lowered.find(term)
        while start != -1:
            for i in owner[start:start + len(term)]:
                covered[i] = True
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


def _lowered(text: str) -> tuple[str, list[int]]:
    """`text` lower-cased character by character, and for each lower-cased character the index it came from."""
    parts, owner = [], []
    for i, char in enumerate(text):
        low = char.lower()
        parts.append(low)
        owner.extend([i] * len(low))
    return "".join(parts), owner


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


def counted(key: str, count: int | None) -> str:
    """`key`, or its singular ``<key>_one`` when `count` is 1 ("1 query has", not "1 queries have"); both
    catalogues carry both keys (Chinese words have one form, so its two texts read alike)."""
    return f"{key}_one" if count == 1 else key


# Plotly's own English texts in a chart's toolbar (tooltips and screen-reader labels) → catalogue keys. Plotly
# translates them from a locale dictionary given in the figure's config; Gradio passes that config through.
PLOTLY_TEXTS = {
    "Zoom": "chart.zoom", "Pan": "chart.pan", "Box Select": "chart.box_select", "Lasso Select": "chart.lasso_select",
    "Zoom in": "chart.zoom_in", "Zoom out": "chart.zoom_out", "Autoscale": "chart.autoscale",
    "Reset axes": "chart.reset_axes", "Reset view": "chart.reset_view", "Reset views": "chart.reset_view",
    "Download plot as a PNG": "chart.download_png", "Download plot": "chart.download",
    "Toggle Spike Lines": "chart.spike_lines", "Show closest data on hover": "chart.hover_closest",
    "Compare data on hover": "chart.hover_compare", "Double-click to zoom back out": "chart.double_click",
}


def chart_config(lang: str) -> dict:
    """Plotly's config for a chart in `lang`: the toolbar's texts in that language, no Plotly logo."""
    dictionary = {english: t(key, lang) for english, key in PLOTLY_TEXTS.items()}
    return {"displaylogo": False, "locale": lang, "locales": {lang: {"dictionary": dictionary}}}


class LocalizedFigure(go.Figure):
    """A plotly figure that carries :func:`chart_config` in its JSON, which is what gr.Plot sends to the page."""

    def to_json(self, *args, **kwargs) -> str:
        data = json.loads(super().to_json(*args, **kwargs))
        data["config"] = chart_config(getattr(self, "_studio_lang", "en"))
        return json.dumps(data)


def chart(figure: go.Figure | None, lang: str) -> go.Figure | None:
    """`figure` with its toolbar in `lang` (a :class:`LocalizedFigure`); None stays None."""
    if figure is None:
        return None
    out = LocalizedFigure(figure)
    out._studio_lang = lang
    return out
