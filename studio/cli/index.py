"""CLI verb: index (encode the corpus ahead), and the encoding bar that ``pool`` and ``eval`` show too."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from studio.actions import index as actions
from studio.cli.base import Context, cli, emit, friendly, json_option, plural

STEPS = 100  # the bar's resolution
LOG_EVERY = 0.1  # piped or logged: one line per tenth of the corpus


class EncodeBar:
    """Shows a corpus encoding's (fraction, ETA text) on stderr: a click bar on a terminal (done / total and the ETA
    beside it), one line per :data:`LOG_EVERY` of the corpus otherwise. A new encoding (the fraction going back to
    0, an evaluation's next model) starts a new bar."""

    def __init__(self, label: str = "encoding"):
        self.label = label
        self.tty = sys.stderr.isatty()
        self.bar = None
        self.shown = 0
        self.logged = -1.0

    def __call__(self, fraction: float, text: str) -> None:
        step = int(fraction * STEPS)
        if self.bar is not None and step < self.shown:
            self.close()
        if not self.tty:
            if fraction >= 1 or fraction - self.logged >= LOG_EVERY or fraction < self.logged:
                click.echo(f"{self.label}: {text}", err=True)
                self.logged = fraction
            return
        if self.bar is None:
            self.bar = click.progressbar(length=STEPS, label=self.label, file=sys.stderr, show_eta=False,
                                         item_show_func=lambda item: item)
            self.bar.__enter__()
            self.shown = 0
        self.bar.update(max(step - self.shown, 0), current_item=text)
        self.shown = max(step, self.shown)
        if fraction >= 1:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@contextmanager
def encoding_bar(label: str = "encoding") -> Iterator[None]:
    """Every corpus encoding inside the block shows an :class:`EncodeBar` with done / total and an ETA."""
    bar = EncodeBar(label)
    try:
        with actions.encoding_progress(actions.eta_listener(bar, "en")):
            yield
    finally:
        bar.close()


@cli.command(name="index")
@click.option("--model", "model", default="default", show_default=True,
              help="What to build: an embedder (a name in models/, 'default' for the ★ model, a path or a hub id) "
                   "whose vectors of every document are stored, or 'bm25' for the saved BM25 index.")
@json_option
@click.pass_obj
@friendly
def index(ctx: Context, model: str, as_json: bool) -> None:
    """Encode the project's corpus ahead, so the first query of ⑨ (and pool, eval) need not wait for it; only new
    or changed documents are encoded again. Shows done / total and an ETA on stderr.

    \b
    Example:
        studio index --model default
        studio --db project.db index --model medical-v1
        studio index --model bm25
    """
    ctx.require_db()
    with encoding_bar(f"encoding with {model}"):
        done = actions.encode_ahead(ctx.project, ctx.actor, model, keep=False)
    if done.encoded is None:
        text = f"{done.model}: index of {plural(done.documents, 'document')} ready in {done.seconds:.1f} s"
    else:
        text = (f"{done.model}: {plural(done.documents, 'document')}, {done.encoded} encoded now, {done.reused} "
                f"reused, {done.seconds:.1f} s")
    emit({"model": done.model, "documents": done.documents, "encoded": done.encoded, "reused": done.reused,
          "seconds": done.seconds}, as_json, text)
