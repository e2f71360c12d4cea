"""What every CLI verb shares: the click group, the project context, output helpers and a progress bar."""

from __future__ import annotations

import getpass
import json
import os
import sys
import unicodedata
from functools import wraps
from pathlib import Path

import click

from studio.actions import Actor, Project
from studio.actions import evaluate as evaluation
from studio.config import DEFAULT_DB
from studio.errors import StudioError

PRIVATE_UMASK = 0o077  # studio.private.UMASK (the CLI may not import it: presentation imports actions and config)


def cli_actor_name() -> str:
    """Who the CLI audits as: ``cli:<OS user>`` (``cli:alice``), so the audit log tells which login on this machine
    did it; plain ``cli`` when the OS cannot say (no user name in the environment or the password database)."""
    try:
        user = getpass.getuser().strip()
    except Exception:  # no LOGNAME/USER and a uid without a passwd entry (some containers)
        user = ""
    return f"cli:{user}" if user else "cli"


class Context:
    """The project a verb works on, and who acts: the CLI on this machine acts as a local admin, audited as
    ``cli:<OS user>``."""

    def __init__(self, db_path: Path):
        self.db_path = db_path
        self.project = Project(db_path)
        self.actor = Actor.local(cli_actor_name())

    def require_db(self) -> None:
        """Refuse a database that is not there (a mistyped --db), naming the verb, before anything is created."""
        if not Path(self.db_path).is_file():
            raise click.ClickException(no_database_message(self.db_path))


def no_database_message(db_path: Path) -> str:
    verb = " ".join(click.get_current_context().command_path.split()[1:])
    return f"no database at {db_path} (the --db option goes before the verb: studio --db FILE {verb})"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """'1 pair', '2 pairs'."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def parse_cutoffs(ctx, param, value: str) -> tuple[int, ...]:
    """--k 1,5,10 → (1, 5, 10) (:func:`studio.evaluation.metrics.parse_cutoffs`); a bad value is a usage error."""
    try:
        return evaluation.parse_cutoffs(value)
    except StudioError as exc:
        raise click.BadParameter(exc.message("en")) from None


def friendly(fn):
    """Turn the studio's own errors into a one-line message and exit code 1, never a traceback."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StudioError as exc:
            if exc.code == "no_database":  # say which verb, as the user typed it
                raise click.ClickException(no_database_message(exc.params["path"])) from exc
            raise click.ClickException(exc.message("en")) from exc

    return wrapper


def pad(text: str, width: int) -> str:
    """Left-justify for a terminal, where CJK characters take two columns."""
    shown = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - shown)


def emit(data, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2) if as_json else text)


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_DB,
              show_default=True, envvar="STUDIO_DB", help="SQLite database file (created if missing).")
@click.pass_context
def cli(ctx: click.Context, db_path: Path) -> None:
    """Relevance Studio: collect, annotate and agree on query/document relevance labels."""
    # Everything the studio writes is this account's only (0600 files, 0700 folders): the database, exports,
    # recipes, jobs, models, backups, and what the app and its training workers write (they inherit the umask).
    # Put back when the verb ends, for a caller that runs the group in-process (tests, scripts).
    previous = os.umask(PRIVATE_UMASK)
    ctx.call_on_close(lambda: os.umask(previous))
    ctx.obj = Context(db_path)


class _Bar:
    """Adapts the library's progress(fraction, stage) callback to a click progress bar on stderr (a terminal only:
    piped or logged, a bar leaves only its stage names behind)."""

    def __init__(self, label: str):
        self.bar = click.progressbar(length=100, label=label, file=sys.stderr, show_eta=False) \
            if sys.stderr.isatty() else None
        self.done = 0

    def __call__(self, fraction: float, stage: str) -> None:
        if self.bar is None:
            return
        self.bar.label = stage
        step = int(fraction * 100) - self.done
        if step > 0:
            self.bar.update(step)
            self.done += step

    def __enter__(self):
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc) if self.bar is not None else None
