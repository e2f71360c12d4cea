"""CLI verbs: guidelines set / show / clear (the project's annotation guidelines, one Markdown text per language)."""

from __future__ import annotations

from pathlib import Path

import click

from studio.actions import guidelines as act
from studio.cli.base import Context, cli, emit, friendly, json_option
from studio.errors import InputError
from studio.i18n import LANGUAGE_NAMES, LANGUAGES, t

LANG_CHOICE = click.Choice(list(LANGUAGES))


@cli.group()
def guidelines() -> None:
    """The annotation guidelines annotators open in ② with `g` (Markdown, English and Chinese)."""


@guidelines.command(name="set")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--lang", type=LANG_CHOICE, default="en", show_default=True, help="The language FILE is written in.")
@click.pass_obj
@friendly
def guidelines_set(ctx: Context, file: Path, lang: str) -> None:
    """Set the guidelines of one language from a Markdown FILE (UTF-8, at most 64 KiB); replaces the earlier text.

    \b
    Example:
        studio guidelines set guidelines.md
        studio guidelines set guidelines.zh.md --lang zh-CN
    """
    ctx.require_db()
    size = file.stat().st_size
    if size > act.MAX_BYTES:  # said before a large file is read into memory (the action checks again)
        raise InputError("guidelines_too_large", file=str(file), size=size, limit=act.MAX_BYTES)
    text = act.set_text(ctx.project, ctx.actor, lang, file.read_bytes(), file=str(file), existing=True)
    click.echo(f"guidelines ({LANGUAGE_NAMES[lang]}) set from {file}: {len(text)} characters")


@guidelines.command(name="show")
@click.option("--lang", type=LANG_CHOICE, default=None,
              help="Only this language (falling back to the other one when only that is written).")
@json_option
@click.pass_obj
@friendly
def guidelines_show(ctx: Context, lang: str | None, as_json: bool) -> None:
    """Print the guidelines (every language written, or --lang) and one gold example of each level.

    \b
    Example:
        studio guidelines show --lang zh-CN
        studio guidelines show --json
    """
    found = act.read(ctx.project, ctx.actor, existing=True)
    if as_json:
        data = {"texts": found.texts, "examples": found.examples}
        if lang is not None:
            text, shown = found.text_for(lang)
            data.update({"lang": shown, "text": text})
        emit(data, True, "")
        return
    langs = [lang] if lang else [x for x in LANGUAGES if x in found.texts] or ["en"]
    parts = []
    for want in langs:
        text, shown = found.text_for(want)
        if text is None:  # nothing written: the built-in description of the levels, and how to write them
            parts += [t("annotate.guide", want), t("guidelines.none_cli", want)]
            continue
        if shown != want:
            click.echo(t("guidelines.fallback", want, shown=LANGUAGE_NAMES[shown]), err=True)
        parts.append(text if lang else f"# {LANGUAGE_NAMES[shown]}\n\n{text}")
    out = lang or "en"
    if found.examples:
        lines = [t("guidelines.examples_title", out)]
        for ex in found.examples:
            title, level = (f"{ex['title']} — " if ex["title"] else ""), ex["label"]
            lines += [f"\n{level} · {t(f'rating.{level}', out)}  ({ex['query_id']} / {ex['doc_id']})",
                      f"  {t('card.query', out)}: {ex['query']}", f"  {t('card.document', out)}: {title}{ex['excerpt']}"]
        parts.append("\n".join(lines))
    click.echo("\n\n".join(parts))


@guidelines.command(name="clear")
@click.option("--lang", type=LANG_CHOICE, default="en", show_default=True)
@click.pass_obj
@friendly
def guidelines_clear(ctx: Context, lang: str) -> None:
    """Remove the guidelines of one language (② then shows the other language, or the built-in scale)."""
    ctx.require_db()
    removed = act.clear(ctx.project, ctx.actor, lang, existing=True)
    click.echo(f"guidelines ({LANGUAGE_NAMES[lang]}) {'cleared' if removed else 'were not set'}")
