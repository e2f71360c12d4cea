"""CLI verbs: models (list, check, default, delete)."""

from __future__ import annotations

import sys
from dataclasses import asdict

import click

from studio.actions import models as actions
from studio.cli.base import Context, cli, emit, friendly, json_option
from studio.i18n import t


def _problem_lines(info, indent: str) -> list[str]:
    return [f"{indent}{p.severity}: {t('models.problem_' + p.code, 'en', **p.params)}" for p in info.problems]


@cli.group(invoke_without_command=True)
@json_option
@click.pass_context
@friendly
def models(click_ctx: click.Context, as_json: bool) -> None:
    """List models in models/ with their problems; * marks the default (`models check NAME`, `models default NAME`,
    `models delete NAME`).

    \b
    'default' names the * model wherever a model is asked for; the embedded model is all-MiniLM-L6-v2.
    """
    if click_ctx.invoked_subcommand is not None:
        return

    ctx: Context = click_ctx.obj
    infos = actions.list_models(ctx.project, ctx.actor)
    if as_json:
        emit([asdict(i) for i in infos], True, "")
        return
    for info in infos:
        mark = "*" if info.is_default else " "
        click.echo(f"{mark} {info.name:<32} {info.kind:<9} {info.size_mb:>8.1f} MB  "
                   f"{'ok' if info.ok else 'PROBLEM'}  {', '.join(info.loads_with)}")
        for line in _problem_lines(info, "    "):
            click.echo(line)


@models.command(name="check")
@click.argument("path")
@json_option
@click.pass_obj
@friendly
def models_check(ctx: Context, path: str, as_json: bool) -> None:
    """Validate a model's layout (a name in models/, 'default' or a folder) and load it with the library that fits
    (exit 1 on an error)."""
    info = actions.check(ctx.project, ctx.actor, path)
    if as_json:
        emit(asdict(info), True, "")
    else:
        click.echo(f"{info.path}: {info.kind}, {info.size_mb:.1f} MB, loads with: {', '.join(info.loads_with) or '-'}")
        for line in _problem_lines(info, "  "):
            click.echo(line)
    if not info.ok:
        sys.exit(1)


@models.command(name="default")
@click.argument("name")
@click.pass_obj
@friendly
def models_default(ctx: Context, name: str) -> None:
    """Make NAME the default model (*), used wherever a model is not named: pooling, mining, the demo views.

    \b
    `studio models default all-MiniLM-L6-v2` makes the embedded model the default again.
    """
    click.echo(f"default model: {actions.set_default(ctx.project, ctx.actor, name)}")


@models.command(name="delete")
@click.argument("name")
@click.confirmation_option(prompt="Delete this model folder?")
@click.pass_obj
@friendly
def models_delete(ctx: Context, name: str) -> None:
    """Delete models/NAME."""
    actions.delete(ctx.project, ctx.actor, name)
    click.echo(f"deleted {name}")
