"""CLI verbs: annotators, demo, serve."""

from __future__ import annotations


import click

from studio.cli.base import Context, cli, emit, friendly, json_option, pad

@cli.group(invoke_without_command=True)
@json_option
@click.pass_context
def annotators(click_ctx: click.Context, as_json: bool) -> None:
    """List annotators, or add one / change a role (`annotators add NAME --role expert`)."""
    if click_ctx.invoked_subcommand is None:
        from studio.store.annotators import list_annotators

        rows = list_annotators(click_ctx.obj.open(existing=True))
        emit(rows, as_json, "\n".join(f"{pad(r['name'], 30)} {r['role']:<10} {r['ratings']} ratings" for r in rows)
             or "no annotators yet")


@annotators.command(name="add")
@click.argument("name")
@click.option("--role", type=click.Choice(["annotator", "expert", "admin"]),
              help="Role of a new person (default: annotator), or the new role of an existing one (unchanged "
                   "without --role).")
@click.pass_obj
@friendly
def annotators_add(ctx: Context, name: str, role: str | None) -> None:
    """Add an annotator, or change the role of an existing one."""
    from studio.store.annotators import ensure_annotator, find_annotator, set_role

    db = ctx.open()
    existing = find_annotator(db, name)
    if existing is None:
        row = ensure_annotator(db, name, role or "annotator")
    elif role is None or role == existing["role"]:
        row = existing
        click.echo(f"{row['name']} is already on the team", err=True)
    else:
        row = set_role(db, name, role)
    click.echo(f"{row['name']}: {row['role']}")


@cli.command()
@click.pass_obj
@friendly
def demo(ctx: Context) -> None:
    """Load the bundled bilingual medical demo project into an empty database."""
    from studio.demo import load_demo

    s = load_demo(ctx.open())
    click.echo(f"demo loaded into {ctx.db_path}: {s.pairs} pairs, {s.documents} documents, "
               f"{s.queries} queries, {s.ratings} ratings")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=7860, show_default=True)
@click.option("--share", is_flag=True, help="Gradio share link (requires --auth).")
@click.option("--auth", help="user:password[,user:password...] for logging in.")
@click.pass_obj
def serve(ctx: Context, host: str, port: int, share: bool, auth: str | None) -> None:
    """Start the web app (the same as `python studio.py`)."""
    from studio.ui.app import launch

    launch(db_path=ctx.db_path, host=host, port=port, share=share, auth=auth)
