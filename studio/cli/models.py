"""CLI verbs: models."""

from __future__ import annotations

import sys

import click

from studio.cli.base import cli, emit, friendly, json_option

@cli.group(invoke_without_command=True)
@json_option
@click.pass_context
def models(click_ctx: click.Context, as_json: bool) -> None:
    """List models in models/ with their problems (`models check PATH`, `models default NAME`, `models delete NAME`)."""
    if click_ctx.invoked_subcommand is None:
        from dataclasses import asdict

        from studio.i18n import t
        from studio.models.registry import scan

        infos = scan()
        if as_json:
            emit([asdict(i) for i in infos], True, "")
            return
        for info in infos:
            mark = "*" if info.is_default else " "
            click.echo(f"{mark} {info.name:<32} {info.kind:<9} {info.size_mb:>8.1f} MB  "
                       f"{'ok' if info.ok else 'PROBLEM'}  {', '.join(info.loads_with)}")
            for problem in info.problems:
                click.echo(f"    {problem.severity}: {t('models.problem_' + problem.code, 'en', **problem.params)}")


@models.command(name="check")
@click.argument("path")
@json_option
@friendly
def models_check(path: str, as_json: bool) -> None:
    """Validate a model folder's layout and load it with the library that fits (exit 1 on an error)."""
    from dataclasses import asdict

    from studio.i18n import t
    from studio.models.registry import check, resolve

    info = check(resolve(path))
    if as_json:
        emit(asdict(info), True, "")
    else:
        click.echo(f"{info.path}: {info.kind}, {info.size_mb:.1f} MB, loads with: {', '.join(info.loads_with) or '-'}")
        for problem in info.problems:
            click.echo(f"  {problem.severity}: {t('models.problem_' + problem.code, 'en', **problem.params)}")
    if not info.ok:
        sys.exit(1)


@models.command(name="default")
@click.argument("name")
@friendly
def models_default(name: str) -> None:
    """Make NAME the default model (used by pooling, mining and the demo views)."""
    from studio.models.registry import set_default

    set_default(name)
    click.echo(f"default model: {name}")


@models.command(name="delete")
@click.argument("name")
@click.confirmation_option(prompt="Delete this model folder?")
@friendly
def models_delete(name: str) -> None:
    """Delete models/NAME."""
    from studio.models.registry import delete

    delete(name)
    click.echo(f"deleted {name}")
