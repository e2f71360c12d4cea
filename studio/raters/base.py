"""What a model rater kind is: a name, its labels and help in both languages, what it needs, how it scores a
(query, document) pair and how a score becomes a label 0/1/2.

A model rater rates pairs blind, like a third person, but its labels live apart from the two human slots
(``judgments``, :mod:`studio.store.judgments`): they never count as a rating and never become gold. One kind per
module of :mod:`studio.raters`, listed once in its registry (:data:`studio.raters.KINDS`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Pair:
    """A pair a rater judges: the pair's id, the project's external keys, the texts a model reads (the document as
    :func:`studio.records.document_text` forms it) and its gold label (None: no gold label)."""

    pair_id: int
    query_key: str
    doc_key: str
    query: str
    document: str
    gold: int | None = None


@dataclass(frozen=True)
class Judgment:
    """One blind judgment: the label (None: the answer could not be read as one, never guessed), the raw score,
    an LLM's raw answer, and whether the model is confident the pair is irrelevant (what triage may act on)."""

    pair_id: int
    label: int | None
    score: float | None
    answer: str | None = None
    sure_irrelevant: bool = False


@dataclass
class Inputs:
    """What a rater reads: the pairs to judge, the gold pairs to calibrate on (kinds that calibrate), the model or
    endpoint (`spec`, already resolved), the LLM's model id and key, the seed and a progress callback."""

    pairs: Sequence[Pair]
    gold: Sequence[Pair] = ()
    spec: str = ""
    llm_model: str | None = None
    api_key: str | None = None
    seed: int = 42
    progress: Progress | None = None
    on_batch: Callable[[list[Judgment]], None] | None = None  # saves judgments while a slow run goes on (LLM)


@dataclass
class Verdicts:
    """A rater's judgments of `Inputs.pairs`, the settings to store with it (thresholds, the prompt …) and how its
    labels on gold pairs were made (``kappa_on``: ``cross-fitted`` — thresholds fitted on the other half of the gold
    queries; ``blind`` — nothing was fitted on gold)."""

    judgments: list[Judgment]
    settings: dict
    kappa_on: str
    skipped: int = 0  # pairs judged before under the same settings and not asked again (an LLM resuming)


class ModelRater:
    """One kind of model rater. Subclasses set the class attributes and implement :meth:`judge`.

    Attributes:
        name: the registry name (CLI option ``--<name>``, ``model_raters.kind``, the rater's name prefix).
        needs: what it reads: ``"embedder"`` (a dense model), ``"cross-encoder"``, ``"endpoint"`` (an
            OpenAI-compatible chat URL), ``"gold"`` (gold labels to calibrate its thresholds on: the action reads
            them only for a kind that needs them).
        model_use: how :func:`studio.models.registry.require` checks the model it loads (``"embedder"``,
            ``"reranker"``), None when it loads none (an endpoint: the spec is a URL).
        role: the least role that may run it (it writes the project's judgments).

    How a score becomes a label is each kind's :meth:`judge` (and its module docstring).
    """

    name: ClassVar[str]
    needs: ClassVar[frozenset[str]] = frozenset()
    model_use: ClassVar[str | None] = None
    role: ClassVar[str] = "admin"

    @property
    def label_key(self) -> str:
        """The i18n key of its name in ③'s model-rater panel (both catalogues have it)."""
        return f"judge.kind_{self.name}"

    @property
    def help_key(self) -> str:
        """The i18n key of its one-paragraph help (CLI and docs)."""
        return f"judge.help_{self.name}"

    def rater_name(self, spec: str, llm_model: str | None = None) -> str:
        """The stored rater's name for `spec` (the model's name as given, or the endpoint)."""
        return f"{self.name}:{spec}"

    def prepare(self, inputs: Inputs) -> Inputs:
        """`inputs` with what the run needs resolved before anything is stored (an LLM's model id)."""
        return inputs

    def resumes(self, previous: dict, inputs: Inputs) -> bool:
        """Whether pairs judged before under the stored `previous` settings are kept rather than judged again
        (worth it where a judgment costs a request)."""
        return False

    def judge(self, inputs: Inputs) -> Verdicts:
        """Judge `inputs.pairs`."""
        raise NotImplementedError(f"rater kind {self.name!r} has no judge()")

    def sure_irrelevant(self, score: float | None, label: int, settings: dict) -> bool:
        """Whether a stored judgment (score, label) under `settings` is a confident "irrelevant" (triage)."""
        return False

    def __repr__(self) -> str:
        return f"<rater kind {self.name}>"
