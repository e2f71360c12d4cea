"""CLI verbs: the team (annotators, users), the demo project and the web app (serve)."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import click

from studio.actions import team
from studio.actions.collect import load_demo
from studio.cli.base import Context, cli, emit, friendly, json_option, pad, plural
from studio.errors import StudioError
from studio.i18n import t

ROLE_CHOICE = click.Choice(["annotator", "expert", "admin"])


def _team_lines(people: list[team.Person]) -> str:
    return "\n".join(
        f"{pad(p.name, 30)} {p.role:<10} {plural(p.ratings, 'rating'):<12} "
        f"{'removed' if p.removed else 'can sign in' if p.can_sign_in else 'no password'}" for p in people)


@cli.group(invoke_without_command=True)
@json_option
@click.pass_context
@friendly
def annotators(click_ctx: click.Context, as_json: bool) -> None:
    """List the team, or add a person / change a role (`annotators add NAME --role expert`)."""
    if click_ctx.invoked_subcommand is None:
        ctx: Context = click_ctx.obj
        people = [p for p in team.team(ctx.project, ctx.actor, existing=True) if not p.removed]
        emit([asdict(p) for p in people], as_json, _team_lines(people) or "no annotators yet")


@annotators.command(name="add")
@click.argument("name")
@click.option("--role", type=ROLE_CHOICE, help="Role of a new person (default: annotator), or the new role of an "
                                               "existing one (unchanged without --role).")
@click.pass_obj
@friendly
def annotators_add(ctx: Context, name: str, role: str | None) -> None:
    """Add a person to the team, or change the role of someone already on it."""
    row, changed = team.add_person(ctx.project, ctx.actor, name, role)
    if not changed:
        click.echo(f"{row['name']} is already on the team", err=True)
    click.echo(f"{row['name']}: {row['role']}")


def _password(password_file: Path | None, name: str) -> str:
    """The password from `password_file` (first line), or typed twice at a hidden prompt."""
    if password_file is not None:
        lines = password_file.read_text(encoding="utf-8").splitlines()
        return lines[0] if lines else ""
    return click.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True)


password_file_option = click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                                    help="Read the password from the first line of this file (no prompt).")


@cli.group(invoke_without_command=True)
@json_option
@click.pass_context
@friendly
def users(click_ctx: click.Context, as_json: bool) -> None:
    """Accounts for signing in to the app (`python studio.py --auth`): list, add, passwd, remove.

    \b
    Passwords are stored as salted scrypt hashes, never in plain text.
    Example:
        studio users add alice --role annotator
        studio users add dr-wang --role expert --password-file pw.txt
        python studio.py --auth
    """
    if click_ctx.invoked_subcommand is None:
        ctx: Context = click_ctx.obj
        people = team.team(ctx.project, ctx.actor, existing=True)
        emit([asdict(p) for p in people], as_json, _team_lines(people) or "no accounts yet")


@users.command(name="add")
@click.argument("name")
@click.option("--role", type=ROLE_CHOICE, help="Role (a new person: default annotator; an existing one keeps "
                                               "theirs without --role).")
@password_file_option
@click.pass_obj
@friendly
def users_add(ctx: Context, name: str, role: str | None, password_file: Path | None) -> None:
    """Give NAME an account (adding them to the team if new); the password is prompted."""
    row = team.add_account(ctx.project, ctx.actor, name, _password(password_file, name), role)
    click.echo(f"{row['name']}: {row['role']}, can sign in")


@users.command(name="passwd")
@click.argument("name")
@password_file_option
@click.pass_obj
@friendly
def users_passwd(ctx: Context, name: str, password_file: Path | None) -> None:
    """Set a new password for NAME."""
    row = team.set_password(ctx.project, ctx.actor, name, _password(password_file, name))
    click.echo(f"{row['name']}: password changed")


@users.command(name="remove")
@click.argument("name")
@click.pass_obj
@friendly
def users_remove(ctx: Context, name: str) -> None:
    """Take NAME off the team: they can no longer sign in; their ratings and decisions stay."""
    row = team.remove_account(ctx.project, ctx.actor, name)
    click.echo(f"{row['name']}: removed (ratings kept)")


@cli.command()
@click.pass_obj
@friendly
def demo(ctx: Context) -> None:
    """Load the bundled bilingual medical demo project into an empty database."""
    s = load_demo(ctx.project, ctx.actor)
    click.echo(f"demo loaded into {ctx.db_path}: {s.pairs} pairs, {s.documents} documents, "
               f"{s.queries} queries, {s.ratings} ratings")


def _auth_spec(auth: str | None, auth_file: Path | None, environment: str | None) -> str | None:
    """What `launch(auth=...)` takes: None (no sign-in), ``@accounts``, or name:password pairs to add first.

    ``--auth-file FILE`` (one pair per line) implies ``--auth``; ``--auth`` alone reads pairs from ``STUDIO_AUTH``
    when it is set; pairs on the command line still work but warn (``ps`` and shell history show them).
    """
    listed = auth not in (None, ACCOUNTS_FLAG)
    if auth_file is not None:
        if listed:
            raise StudioError("auth_sources")
        if auth_file.stat().st_mode & 0o077:
            click.echo(t("serve.auth_file_readable", path=str(auth_file)), err=True)
        text = auth_file.read_text(encoding="utf-8")
        if not any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
            raise StudioError("auth_file_empty", path=str(auth_file))
        return text if "\n" in text else text + "\n"
    if listed:
        click.echo(t("serve.auth_on_command_line"), err=True)
        return auth
    if auth == ACCOUNTS_FLAG and (environment or "").strip():
        return environment if "\n" in environment else environment.strip()
    return auth


ACCOUNTS_FLAG = "@accounts"  # `--auth` given without a list (studio.ui.app.ACCOUNTS)
DEFAULT_UPLOAD_MB = 200  # with sign-in; the studio on one's own machine keeps Gradio's "no limit"


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to serve on; anything but a loopback address needs --auth.")
@click.option("--port", default=7860, show_default=True)
@click.option("--share", is_flag=True, help="Gradio share link (requires --auth).")
@click.option("--auth", is_flag=False, flag_value=ACCOUNTS_FLAG, default=None,
              help="Sign-in with the team's accounts (`studio users add`); with STUDIO_AUTH set, its name:password "
                   "pairs are added first. --auth user:password[,user:password…] still works (new names join as "
                   "annotators, passwords at least 8 characters) but shows the passwords to `ps` and shell history.")
@click.option("--auth-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Sign-in, adding the name:password pairs of this file first (one per line; keep it chmod 600).")
@click.option("--allow-origin", "allow_origins", multiple=True, metavar="URL",
              help="Accept requests from this site too: the public address of a reverse proxy "
                   "(https://studio.example.org). Repeatable. Other sites' requests are refused.")
@click.option("--signin-cooldown", type=click.FloatRange(min=0, min_open=True), default=5, show_default=True,
              metavar="MIN", help="After 10 failed sign-ins in 15 minutes (per account, per address), refuse "
                                  "sign-ins for this many minutes.")
@click.option("--session-hours", type=click.FloatRange(min=0, min_open=True), default=12, show_default=True,
              metavar="H", help="A session unused for this long ends; the person signs in again.")
@click.option("--max-upload-mb", type=click.FloatRange(min=0, min_open=True), default=None, metavar="MB",
              help="Largest file that may be uploaded (default: 200 with sign-in, no limit without).")
@click.option("--backup-every", type=click.FloatRange(min=0, min_open=True), default=None, metavar="HOURS",
              help="Back the database up every HOURS into backups/ (verified, 0600), while people rate.")
@click.option("--backup-keep", type=click.IntRange(min=1), default=7, show_default=True, metavar="N",
              help="With --backup-every: keep the newest N backups, delete older ones.")
@click.pass_obj
def serve(ctx: Context, host: str, port: int, share: bool, auth: str | None, auth_file: Path | None,
          allow_origins: tuple[str, ...], signin_cooldown: float, session_hours: float, max_upload_mb: float | None,
          backup_every: float | None, backup_keep: int) -> None:
    """Start the web app (the same as `python studio.py`).

    \b
    Example (a team on the network, behind a TLS reverse proxy):
        studio users add alice --role admin
        studio serve --host 0.0.0.0 --auth --allow-origin https://studio.example.org
    """
    from studio.ui.app import launch  # imports gradio: 2.5 s on every `studio` verb otherwise
    from studio.ui.web import WebSettings  # imports starlette: 36 ms

    try:
        spec = _auth_spec(auth, auth_file, os.environ.get("STUDIO_AUTH"))
        web = WebSettings(allow_origins=allow_origins, signin_cooldown_s=signin_cooldown * 60,
                          session_idle_s=session_hours * 3600,
                          max_upload_mb=max_upload_mb or (DEFAULT_UPLOAD_MB if spec else None))
        launch(db_path=ctx.db_path, host=host, port=port, share=share, auth=spec, web=web,
               backup_every=backup_every, backup_keep=backup_keep)
    except StudioError as exc:
        raise click.ClickException(exc.message("en")) from exc
