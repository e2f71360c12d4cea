"""Encoding progress: who hears it, and how it reads — ``1,234 / 20,000 · ETA 3 min`` in the page's language.

A corpus is encoded several layers below the page or the CLI: ⑨'s first query
(:func:`studio.retrieval.search.index_for` → :func:`studio.retrieval.vector_store.project_vectors`), a pool, an
evaluation (:func:`studio.retrieval.exact.dense_run`), encoding ahead. Rather than every layer passing a callback,
the caller sets a listener for the block it runs (:func:`reporting`, a context variable: it follows the call, not the
thread next door), and the code that encodes reports (encoded, to encode) to :func:`listener`. The page wraps
``gr.Progress``, the CLI a click bar, both with :func:`eta_text` (:func:`describing` does the wrapping).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from studio.i18n import t

Progress = Callable[[int, int], None]  # (encoded, to encode)
Report = Callable[[float, str], None]  # (fraction done, text): gr.Progress, a click bar's adapter

_listener: ContextVar[Progress | None] = ContextVar("studio_encoding_progress", default=None)


@contextmanager
def reporting(progress: Progress | None) -> Iterator[None]:
    """Corpus encodings inside this block report (encoded, to encode) to `progress` (None: to nobody)."""
    token = _listener.set(progress)
    try:
        yield
    finally:
        _listener.reset(token)


def listener() -> Progress | None:
    """Who hears encoding progress here (:func:`reporting`), or None."""
    return _listener.get()


def eta_seconds(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left at the rate so far; None before the first documents are done (no rate yet)."""
    if done <= 0 or elapsed <= 0:
        return None
    return max(total - done, 0) * elapsed / done


def duration_text(seconds: float, lang: str) -> str:
    """``45 s``, ``3 min``, ``1 h 5 min`` (``45 秒``, ``3 分钟``, ``1 小时 5 分钟``): seconds under a minute,
    whole minutes after (rounded up: a bar never promises less than it takes)."""
    if seconds < 60:
        return t("eta.seconds", lang, n=max(1, math.ceil(seconds)))
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return t("eta.minutes", lang, n=minutes)
    return t("eta.hours", lang, h=minutes // 60, m=minutes % 60)


def eta_text(done: int, total: int, elapsed: float, lang: str) -> str:
    """``1,234 / 20,000 · ETA 3 min`` (before a rate is known: ``0 / 20,000 · estimating``; at the end:
    ``20,000 / 20,000 · took 4 min``) in `lang`."""
    counts = f"{done:,} / {total:,}"
    if total and done >= total:
        return t("eta.took", lang, counts=counts, took=duration_text(elapsed, lang))
    left = eta_seconds(done, total, elapsed)
    if left is None:
        return t("eta.estimating", lang, counts=counts)
    return t("eta.left", lang, counts=counts, eta=duration_text(left, lang))


class Eta:
    """An (encoded, to encode) listener that hands `report` the fraction done and :func:`eta_text`. The clock
    restarts when an encoding starts again from 0 or its total changes (an evaluation encodes one corpus per model).
    """

    def __init__(self, report: Report, lang: str, *, clock: Callable[[], float] = time.monotonic):
        self.report, self.lang, self.clock = report, lang, clock
        self.started: float | None = None
        self.total: int | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.started is None or done == 0 or total != self.total:
            self.started, self.total = self.clock(), total
        self.report(done / total if total else 1.0, self.text(done, total))

    def text(self, done: int, total: int) -> str:
        """The current line, :func:`eta_text`."""
        return eta_text(done, total, self.clock() - (self.started or self.clock()), self.lang)


def describing(report: Report | None, lang: str) -> Progress | None:
    """An :class:`Eta` over `report` (a page's ``gr.Progress`` takes (fraction, desc)); None for None."""
    return None if report is None else Eta(report, lang)
