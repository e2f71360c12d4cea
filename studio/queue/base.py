"""What a queue strategy is: a name, its labels and help in both languages, what it needs, and ``order()``.

A strategy orders the project's untouched pairs (the ids it returns are served first, in that order; pairs with one
rating always come before them, store/queue.py). One strategy per module of :mod:`studio.queue`, listed once in its
registry (:data:`studio.queue.STRATEGIES`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from studio import records

Progress = Callable[[float, str], None]

DEPTH = 100  # ranks beyond this count as "not retrieved" (DEPTH + 1)
TOP = 10     # "disagree": pairs some system puts in its top 10


@dataclass
class Order:
    """Untouched pair ids in serving order, and what the strategy used (models, threshold) for the audit log."""

    ids: list[int]
    details: dict = field(default_factory=dict)


@dataclass
class Inputs:
    """What a strategy may read: the untouched pairs (id, query_id, document_id), the project's documents (id,
    title, text) and queries (id, text), the dense models (the first scores ``uncertain``; each is a system for
    ``systems``/``disagree``), the gold labels (query id, document id, label), the seed and a progress callback."""

    pairs: Sequence[dict]
    documents: Sequence[dict] = ()
    queries: Sequence[dict] = ()
    models: Sequence[str] = ()
    gold: Sequence[tuple[int, int, int]] = ()
    seed: int = 42
    progress: Progress | None = None
    db_path: Path | None = None  # the project's file: dense ranks read its stored vectors (documents: all of it)


class Strategy:
    """One queue strategy. Subclasses set the class attributes and implement :meth:`order`.

    Attributes:
        name: the registry name (CLI argument, stored setting, audit entry).
        needs: what it reads besides the pairs: ``"model"`` (a dense model), ``"gold"`` (the gold labels),
            ``"embedded"`` (ranks with the embedded model too when ★ is another one).
        role: the least role that may apply it.
        adds_pairs: True when it adds pairs to the project instead of ordering the ones there are (its action is
            :func:`studio.actions.queue.check_negatives`; :meth:`order` is not called).
        orders_all: False when the pairs imported after it was applied are in its order already (imported order),
            or it leaves the rest in imported order on purpose; True makes the queue's make-up count them.
    """

    name: ClassVar[str]
    needs: ClassVar[frozenset[str]] = frozenset()
    role: ClassVar[str] = "admin"
    adds_pairs: ClassVar[bool] = False
    orders_all: ClassVar[bool] = True

    @property
    def label_key(self) -> str:
        """The i18n key of its name in ①'s radio (both catalogues have it)."""
        return f"import.strategy_{self.name}"

    @property
    def help_key(self) -> str:
        """The i18n key of its one-paragraph help (CLI and docs)."""
        return f"queue.help_{self.name}"

    def order(self, inputs: Inputs) -> Order:
        """The serving order of `inputs.pairs`."""
        raise NotImplementedError(f"strategy {self.name!r} has no order()")

    def __repr__(self) -> str:
        return f"<strategy {self.name}>"


def document_text(doc: dict) -> str:
    """A document row's text as every model sees it (:func:`studio.records.document_text`)."""
    return records.document_text(doc["title"], doc["text"])
