"""CLI verbs: judge (a model as a third rater), judge list, judge second-look, judge triage."""

from __future__ import annotations

import click

from studio.actions import judge as actions
from studio.cli.base import Context, _Bar, cli, emit, friendly, json_option
from studio.i18n import t


def _kind_options(fn):
    """One option per rater kind of the registry (studio/raters/): ``--<kind> NAME`` (``URL`` for an endpoint)."""
    for kind in reversed(list(actions.KINDS.values())):
        metavar = "NAME" if kind.model_use else "URL"
        fn = click.option(f"--{kind.name}", f"kind_{kind.name}", metavar=metavar, default=None,
                          help=t(kind.help_key, "en"))(fn)
    return fn


def _run_text(result: dict) -> str:
    lines = actions.summary_lines(result, "en")
    for u in result["unparsable"][:10]:
        lines.append(f"  unreadable answer for {u['query_id']} / {u['doc_id']}: {u['answer'][:120]!r}")
    return "\n".join(lines)


@cli.group(name="judge", invoke_without_command=True,
           epilog="\b\nExample:\n  studio judge --model default --json\n  studio judge --reranker bge-reranker-ft "
                  "--pairs queue\n  STUDIO_LLM_KEY=... studio judge --llm http://127.0.0.1:8080 --llm-model gemma-3"
                  "\n  studio judge second-look --rater model:all-MiniLM-L6-v2")
@_kind_options
@click.option("--llm-model", default=None, help="The model id the endpoint serves (default: the first it lists). "
                                                "The API key, if any, comes from $STUDIO_LLM_KEY.")
@click.option("--pairs", type=click.Choice(actions.PAIRS), default=actions.PAIRS[0], show_default=True,
              help="gold: the pairs with a gold label (kappa against gold is measured on them); queue: queued "
                   "pairs without one (for second looks and triage).")
@click.option("--limit", type=click.IntRange(1), default=None, help="Judge only the first N pairs (by pair id).")
@click.option("--seed", default=42, show_default=True, help="Seed of the split of the gold queries into halves.")
@json_option
@click.pass_context
@friendly
def judge_group(click_ctx: click.Context, llm_model: str | None, pairs: str, limit: int | None, seed: int,
                as_json: bool, **kinds: str | None) -> None:
    """Rate pairs blind with a model as a third rater, stored apart from the two people's ratings (never gold).

    Give exactly one of the rater options. A dense model or reranker maps its score to 0/1/2 with thresholds
    calibrated on the gold pairs; each gold pair is labelled with thresholds fitted on the other half of the gold
    queries, so kappa against gold is measured on held-out labels. An LLM is asked an UMBRELA-style prompt (0-3:
    0 -> 0, 1 -> 1, 2 and 3 -> 2); an answer without a readable score is counted and kept, never guessed.

    --json prints {"rater", "kappa_vs_gold", "kappa_pairs", "kappa_on", "judgments": [{"query_id", "doc_id",
    "label", "score"}, ...], ...} with the project's query and document ids.
    """
    if click_ctx.invoked_subcommand is not None:
        return
    chosen = {name.removeprefix("kind_"): spec for name, spec in kinds.items() if spec is not None}
    if len(chosen) != 1:
        options = ", ".join(f"--{k}" for k in actions.KINDS)
        raise click.UsageError(f"give exactly one of {options}")
    (kind, spec), = chosen.items()
    ctx: Context = click_ctx.obj
    with _Bar("judging") as bar:
        result = actions.judge(ctx.project, ctx.actor, kind, spec, pairs=pairs, limit=limit, llm_model=llm_model,
                               seed=seed, progress=bar, existing=True)
    emit(result, as_json, _run_text(result))


@judge_group.command(name="list")
@json_option
@click.pass_obj
@friendly
def judge_list(ctx: Context, as_json: bool) -> None:
    """The model raters: what each judged, kappa against gold and against each person, open second looks and
    triage."""
    found = actions.list_raters(ctx.project, ctx.actor, existing=True)
    lines = []
    for r in found:
        k = "-" if r["kappa_vs_gold"] is None else f"{r['kappa_vs_gold']:.3f}"
        people = ", ".join(f"{who} {'-' if v['kappa'] is None else format(v['kappa'], '.3f')} ({v['pairs']})"
                           for who, v in r["kappa_vs_people"].items())
        lines.append(f"{r['rater']}: {r['judged']} judged, kappa vs gold {k} on {r['kappa_pairs']} pairs "
                     f"({r['kappa_on']}); vs people: {people or '-'}; second looks open {r['second_looks']}; "
                     f"triage: {r['triage_back']} at the back ({r['triage_waiting']} untouched), "
                     f"{r['triage_audit']} audit")
    emit({"raters": found}, as_json, "\n".join(lines) or "no model raters yet: studio judge --model default")


@judge_group.command(name="second-look")
@click.option("--rater", required=True, help="The rater's name, as `studio judge list` shows it.")
@click.option("--undo", is_flag=True, help="Close this rater's open second looks.")
@json_option
@click.pass_obj
@friendly
def judge_second_look(ctx: Context, rater: str, undo: bool, as_json: bool) -> None:
    """Send to the adjudication page every pair two people agreed on that the rater labels two levels away (0
    against 2): an expert takes a second look there; their decision is the gold label.

    \b
    Example:
        studio judge second-look --rater model:all-MiniLM-L6-v2
    """
    done = actions.second_look(ctx.project, ctx.actor, rater, undo=undo, existing=True)
    text = (f"{done['removed']} second looks closed" if undo
            else f"{done['added']} new second looks; {done['open']} open for {rater}")
    emit(done, as_json, text)


@judge_group.command(name="triage")
@click.option("--rater", required=True, help="The rater's name, as `studio judge list` shows it.")
@click.option("--audit", type=click.FloatRange(0, 1, max_open=True), default=actions.AUDIT_SHARE, show_default=True,
              help="Share of the confidently irrelevant pairs still served to people (a random, seeded sample).")
@click.option("--seed", default=42, show_default=True, help="Seed of the audit sample.")
@click.option("--undo", is_flag=True, help="Take this rater's triage back (those pairs return to imported order).")
@json_option
@click.pass_obj
@friendly
def judge_triage(ctx: Context, rater: str, audit: float, seed: int, undo: bool, as_json: bool) -> None:
    """Let untouched queued pairs the rater confidently rates irrelevant wait at the back of the queue; a random
    audit share is still served. Choosing a queue strategy later keeps them at the back; --undo takes it back.

    \b
    Example:
        studio judge --model default --pairs queue
        studio judge triage --rater model:all-MiniLM-L6-v2 --audit 0.1
    """
    done = actions.triage(ctx.project, ctx.actor, rater, audit=audit, seed=seed, undo=undo, existing=True)
    head = f"{done['removed']} triaged pairs taken back; " if undo else \
        f"{done['back']} pairs sent to the back, {done['audit']} kept as the audit sample; "
    emit(done, as_json, head + f"now {done['triage_back']} at the back ({done['triage_waiting']} untouched), "
                              f"{done['triage_audit']} audit")
