"""CLI verbs: queue (its make-up), queue strategy."""

from __future__ import annotations

import click

from studio.actions import queue
from studio.cli.base import Context, _Bar, cli, emit, friendly, json_option
from studio.i18n import t


def _makeup_text(m: dict) -> str:
    lines = [f"strategy: {m['strategy']}",
             f"{m['queued']} pairs queued: {m['double_rated']} double-rated, {m['half_taken']} with one slot taken "
             f"(served first), {m['untouched']} untouched, {m['reserved']} reserved now"]
    if m["untouched_unordered"]:
        lines.append(f"{m['untouched_unordered']} untouched pairs came after the strategy was applied and wait in "
                     f"imported order: run `studio queue strategy {m['strategy']}` again")
    lines.append("by source: " + ", ".join(f"{k} {v}" for k, v in m["by_source"].items()))
    checked = m.get("check_negatives")
    if checked:
        lines.append(f"check the negatives: {checked['candidates']} mined negatives of {checked['queries']} queries "
                     f"closest to their positives are served first ({checked['added']} new pairs, "
                     f"{checked['ordered']} not rated yet; model {checked['model']})")
    return "\n".join(lines)


@cli.group(name="queue", invoke_without_command=True)
@json_option
@click.pass_context
@friendly
def queue_group(click_ctx: click.Context, as_json: bool) -> None:
    """The annotation queue: its strategy and make-up (`queue strategy NAME` changes the order).

    \b
    Pairs with one rating are always served first, so pairs get completed; the strategy orders the rest.
    """
    if click_ctx.invoked_subcommand is None:
        ctx: Context = click_ctx.obj
        m = queue.makeup(ctx.project, ctx.actor, existing=True)
        emit(m, as_json, _makeup_text(m))


def _strategies_epilog() -> str:
    """Every strategy's one-line help, from the registry (studio/queue/) and the English catalogue."""
    return "\b\nStrategies:\n" + "\n".join(f"  {t(s.help_key, 'en')}" for s in queue.STRATEGIES.values()) + (
        f"\n\n\b\nExample:\n  studio queue strategy {queue.DEFAULT_STRATEGY}")


@queue_group.command(name="strategy", epilog=_strategies_epilog())
@click.argument("name", type=click.Choice(queue.names()))
@click.option("--model", default=None, help="Dense model for systems/uncertain/negatives (default: the ★ model).")
@click.option("--seed", default=42, show_default=True, help="Seed of the random order.")
@click.option("--per-query", default=2, show_default=True, help="negatives: mined negatives to check per query.")
@json_option
@click.pass_obj
@friendly
def queue_strategy(ctx: Context, name: str, model: str | None, seed: int, per_query: int, as_json: bool) -> None:
    """Order the untouched pairs by strategy NAME (the list below: studio/queue/ is the only list of them).

    A strategy that adds pairs ("check the negatives") queues, for each query with a relevant gold label, the
    --per-query hard negatives the export would mine (hybrid, ranks 10-100) that score closest to the query's
    positives, served first. Rated relevant, one becomes a positive; rated irrelevant, a confirmed negative; the
    export's manifest counts both.
    """
    with _Bar("ordering") as bar:
        if name in queue.ADDS_PAIRS:
            m = queue.check_negatives(ctx.project, ctx.actor, per_query=per_query, model=model, progress=bar,
                                      existing=True)
        else:
            m = queue.set_strategy(ctx.project, ctx.actor, name, model=model, seed=seed, progress=bar,
                                   existing=True)
    emit(m, as_json, _makeup_text(m))
