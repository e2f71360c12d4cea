"""CLI verb: `studio backup OUT.db`, a consistent copy of the database while the app runs."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from studio.actions import backup as backup_actions
from studio.cli.base import Context, cli, emit, friendly, json_option


@cli.command()
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace OUT if it exists (never the live database).")
@json_option
@click.pass_obj
@friendly
def backup(ctx: Context, out: Path, force: bool, as_json: bool) -> None:
    """Copy the database into OUT while people keep rating (SQLite's online backup), then check the copy.

    \b
    The copy holds everything committed when it started, passes `PRAGMA integrity_check` before it gets OUT's
    name, and is readable by this account only (0600): it holds the accounts' password hashes.
    To restore: stop the app, copy OUT over the database, delete its -wal and -shm files, start the app.
    Example:
        studio backup backups/annotations-$(date +%F).db
        python studio.py --auth --backup-every 24 --backup-keep 14
    """
    ctx.require_db()
    info = backup_actions.make_backup(ctx.project, ctx.actor, out, overwrite=force)
    emit({**asdict(info), "path": str(info.path)}, as_json,
         f"backup written to {info.path}: {info.ratings} ratings, {info.pairs} pairs, {info.annotators} people, "
         f"{info.bytes:,} bytes, integrity {info.integrity}")
