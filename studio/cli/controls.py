"""CLI verbs: control pairs (controls add / rate / qualify / status / clear)."""

from __future__ import annotations

import click

from studio.actions import controls
from studio.cli.base import Context, cli, emit, friendly, json_option, plural


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def status_text(s: dict) -> str:
    """The controls' status in a few lines (the --json output has the same facts)."""
    labels = ", ".join(f"{label}: {n}" for label, n in s["by_label"].items())
    origins = ", ".join(f"{origin} {n}" for origin, n in s["by_origin"].items())
    lines = [f"{plural(s['controls'], 'control pair')}" + (f" (expected label {labels}; {origins})"
                                                           if s["controls"] else "")]
    rate = f"{s['rate']:g} of the pairs served" if s["rate"] > 0 else "off (rate 0)"
    lines.append(f"serving: {rate}")
    if s["rate"] > 0 and not s["controls"]:
        lines.append("no control pairs yet: add some with `studio controls add --from-gold`")
    if s["qualify_first"]:
        lines.append(f"qualification: a new person's first {plural(s['qualify_first'], 'pair')} are controls, "
                     f"pass mark {s['pass_mark']:g}")
    else:
        lines.append("qualification: off")
    lines.append(f"answers: {s['answers']} by {plural(s['people'], 'person', 'people')}, {s['correct']} correct "
                 f"({_percent(s['accuracy'])}); the annotator report flags accuracy under {s['min_accuracy']:g}")
    for person in s["qualification"]:
        lines.append(f"  {person['name']}: {person['status']} ({person['correct']}/{person['answered']} correct)")
    return "\n".join(lines)


@cli.group(name="controls", invoke_without_command=True)
@json_option
@click.pass_context
@friendly
def controls_group(click_ctx: click.Context, as_json: bool) -> None:
    """Control pairs: gold pairs served like any pair, whose answers measure each rater (status without a verb).

    \b
    Answers to controls are stored apart from ratings: never one of a pair's two ratings, never in agreement,
    gold or training data. A person cannot tell a control from a pair.
    Example:
      studio controls add --from-gold --n 50
      studio controls rate 0.2
      studio controls qualify --first 10 --pass-mark 0.8
      studio controls status --json
    """
    if click_ctx.invoked_subcommand is None:
        ctx: Context = click_ctx.obj
        s = controls.status(ctx.project, ctx.actor, existing=True)
        emit(s, as_json, status_text(s))


@controls_group.command(name="add")
@click.option("--from-gold", "from_gold", is_flag=True, required=True,
              help="Take them from the gold pairs (the only source): the expected label is the gold label now.")
@click.option("--n", "n", type=click.IntRange(min=1), default=None,
              help="How many gold pairs (default: all); adjudicated first, then agreed, then reference labels.")
@click.option("--seed", default=0, show_default=True, help="Seed of the choice within each kind of gold label.")
@json_option
@click.pass_obj
@friendly
def controls_add(ctx: Context, from_gold: bool, n: int | None, seed: int, as_json: bool) -> None:
    """Turn gold pairs into control pairs; the same --n and --seed again add nothing.

    \b
    Example:
      studio controls add --from-gold --n 50
    """
    r = controls.add_from_gold(ctx.project, ctx.actor, n=n, seed=seed, existing=True)
    emit(r, as_json, f"{plural(r['added'], 'control pair')} added, {r['existing']} already controls "
                     f"(of {plural(r['selected'], 'gold pair')} chosen)\n" + status_text(r["status"]))


@controls_group.command(name="rate")
@click.argument("rate", type=float)
@click.option("--min-accuracy", type=float, default=None,
              help="Control accuracy (0..1) under which the annotator report flags a person (default 0.7).")
@json_option
@click.pass_obj
@friendly
def controls_rate(ctx: Context, rate: float, min_accuracy: float | None, as_json: bool) -> None:
    """Serve control pairs as RATE of the pairs served (0 to 0.5; 0 turns them off).

    \b
    Example:
      studio controls rate 0.2 --min-accuracy 0.7
    """
    s = controls.set_rate(ctx.project, ctx.actor, rate, existing=True)
    if min_accuracy is not None:
        s = controls.set_min_accuracy(ctx.project, ctx.actor, min_accuracy, existing=True)
    emit(s, as_json, status_text(s))


@controls_group.command(name="qualify")
@click.option("--first", "first", type=int, required=True,
              help=f"A new person's first N pairs are controls (0 turns the qualification off; at most "
                   f"{controls.MAX_QUALIFY_FIRST}).")
@click.option("--pass-mark", type=float, default=0.8, show_default=True,
              help="Share of those answered right to pass (0..1).")
@json_option
@click.pass_obj
@friendly
def controls_qualify(ctx: Context, first: int, pass_mark: float, as_json: bool) -> None:
    """Qualify new people on control pairs first; failing is shown to admins (`controls status`), never blocks.

    \b
    Example:
      studio controls qualify --first 10 --pass-mark 0.8
    """
    s = controls.set_qualification(ctx.project, ctx.actor, first, pass_mark, existing=True)
    emit(s, as_json, status_text(s))


@controls_group.command(name="status")
@json_option
@click.pass_obj
@friendly
def controls_status(ctx: Context, as_json: bool) -> None:
    """Controls by expected label, the rate, the qualification (each person's result) and the answers so far."""
    s = controls.status(ctx.project, ctx.actor, existing=True)
    emit(s, as_json, status_text(s))


@controls_group.command(name="clear")
@json_option
@click.pass_obj
@friendly
def controls_clear(ctx: Context, as_json: bool) -> None:
    """Stop using every control pair (they become plain gold pairs); the answers given so far are kept."""
    r = controls.clear(ctx.project, ctx.actor, existing=True)
    emit(r, as_json, f"{plural(r['removed'], 'control pair')} removed, {r['answers_kept']} answers kept")
