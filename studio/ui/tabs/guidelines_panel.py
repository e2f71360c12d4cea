"""Guidelines: the admin's editor (a panel of ①: one Markdown text per language, a preview, save) and the view ②
opens with `g` (the text in the page's language, else the other one written, else the built-in rating scale; one gold
example of each level under it)."""

from __future__ import annotations

import html

import gradio as gr

from studio.actions import guidelines as act
from studio.errors import StudioError
from studio.i18n import LANGUAGE_NAMES, LANGUAGES, t
from studio.ui import render
from studio.ui.context import UIContext, error_text


def guidelines_markdown(found: act.Guidelines, lang: str, *, admin: bool) -> str:
    """The guidelines to show a reader of `lang`: theirs, else the other language's (said so above it), else the
    built-in description of the three levels — and, for an admin, how to write the project's own."""
    text, shown = found.text_for(lang)
    if text is None:
        parts = [t("guidelines.builtin_title", lang), t("annotate.guide", lang)]
        if admin:
            parts.append(t("guidelines.how_to_set", lang))
        return "\n\n".join(parts)
    if shown != lang:
        return f"*{t('guidelines.fallback', lang, shown=LANGUAGE_NAMES[shown])}*\n\n{text}"
    return text


def examples_html(examples: list[dict], lang: str) -> str:
    """One card per gold example (level 2, 1, 0): its label, the query and an excerpt of the document."""
    if not examples:
        return render.message(t("guidelines.no_examples", lang), "info")
    cards = []
    for ex in examples:
        head = (f'<div class="rs-label">{html.escape(t("guidelines.example_of", lang))} '
                f'{render.rating_badge(ex["label"], lang)}</div>')
        cards.append(f'<div class="rs-example">{head}'
                     f'{render.pair_card(ex["query"], ex["title"] or "", ex["excerpt"], lang)}</div>')
    return (f'<div class="rs-label">{html.escape(t("guidelines.examples_title", lang))}</div>'
            f'<div class="rs-examples">{"".join(cards)}</div>')


def view(ctx: UIContext, lang: str, request: gr.Request | None = None, picked: str | None = None) -> tuple[str, str]:
    """(guidelines Markdown, examples HTML) for whoever asks, in `lang`; an error in place of the text."""
    try:
        actor = ctx.actor(request, picked)
        found = act.read(ctx.project, actor)
    except StudioError as exc:
        return render.message(error_text(exc, lang), "error"), ""
    return guidelines_markdown(found, lang, admin=actor.can("admin")), examples_html(found.examples, lang)


def load(ctx: UIContext, lang: str, request: gr.Request | None = None) -> tuple:
    """The editor's content: (one text per language, one preview per language, examples, status)."""
    blank = [""] * len(LANGUAGES)
    try:
        actor = ctx.actor(request)
        if not actor.can("admin"):  # the editor is an admin's: others read the guidelines in ② (g)
            return (*blank, *blank, "", "")
        found = act.read(ctx.project, actor)
    except StudioError as exc:
        return (*blank, *blank, "", render.message(error_text(exc, lang), "error"))
    texts = [found.texts.get(x, "") for x in LANGUAGES]
    return (*texts, *texts, examples_html(found.examples, lang), "")


def save(ctx: UIContext, texts: list[str], lang: str, request: gr.Request | None = None) -> tuple:
    """Write each language whose text changed (an emptied box clears it); (texts, previews, examples, status) with
    one line per language saved, cleared or refused."""
    lines, kind = [], "ok"
    try:
        actor = ctx.actor(request)
        stored = act.read(ctx.project, actor).texts
        for code, text in zip(LANGUAGES, texts):
            name = LANGUAGE_NAMES[code]
            if (text or "").strip() == stored.get(code, "").strip():
                continue
            try:
                if (text or "").strip():
                    written = act.set_text(ctx.project, actor, code, text)
                    lines.append(t("guidelines.saved", lang, language=name, chars=len(written)))
                else:
                    act.clear(ctx.project, actor, code)
                    lines.append(t("guidelines.cleared", lang, language=name))
            except StudioError as exc:
                lines.append(f"{name}: {error_text(exc, lang)}")
                kind = "error"
    except StudioError as exc:
        lines, kind = [error_text(exc, lang)], "error"
    status = render.message(" · ".join(lines) or t("guidelines.unchanged", lang), kind if lines else "info")
    if kind == "error":  # keep what was typed: nothing is lost to a refused save
        return (*[gr.update()] * (2 * len(LANGUAGES)), gr.update(), status)
    return (*load(ctx, lang, request)[:-1], status)


def build(ctx: UIContext) -> dict:
    """The admin's guidelines editor (① → Guidelines): a Markdown box and a preview per language, save."""
    i18n = ctx.i18n
    gr.Markdown(i18n("guidelines.panel_intro"))
    boxes, previews = [], []
    labels = {"en": i18n("guidelines.text_en"), "zh-CN": i18n("guidelines.text_zh")}
    with gr.Row():
        for code in LANGUAGES:  # on_save takes them in this order
            with gr.Column():
                boxes.append(gr.Textbox(label=labels[code], lines=12, max_lines=30,
                                        elem_id=f"rs-guidelines-edit-{code}"))
                with gr.Accordion(i18n("guidelines.preview"), open=False):
                    previews.append(gr.Markdown(elem_id=f"rs-guidelines-preview-{code}"))
    with gr.Row(equal_height=True):
        save_btn = gr.Button(i18n("guidelines.save"), variant="primary", scale=0, min_width=160,
                             elem_id="rs-guidelines-save")
        status = gr.HTML(elem_id="rs-guidelines-status")
    examples = gr.HTML(elem_id="rs-guidelines-panel-examples")
    for box, preview in zip(boxes, previews):  # the preview follows the typing in the page, no server round trip
        box.change(None, [box], [preview], js="(text) => text", api_visibility="private")
    outputs = [*boxes, *previews, examples, status]

    def on_save(text_en: str, text_zh: str, lg: str, request: gr.Request):
        return save(ctx, [text_en, text_zh], lg, request)

    def on_load(lg: str, request: gr.Request):
        return load(ctx, lg, request)

    save_btn.click(on_save, [*boxes, ctx.lang], outputs, api_name="guidelines_save")
    return {"boxes": boxes, "previews": previews, "save": save_btn, "status": status, "examples": examples,
            "refresh": (on_load, [ctx.lang], outputs)}
