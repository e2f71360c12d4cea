"""Who rates pairs, and the only list of the model-rater kinds' names (:data:`KINDS`).

Raters of two sorts rate the project's pairs:

* **People** are accounts (``annotators``, :mod:`studio.store.users`, with a role). Their labels are *ratings*
  (:mod:`studio.store.ratings`, at most two per pair), from which agreement, gold and training data come; their
  answers to control pairs are kept apart (:mod:`studio.store.controls`); how each person does is the annotator
  report (:mod:`studio.raters.report`).
* **Model raters** rate pairs blind like a third person, but their labels are *judgments*
  (:mod:`studio.store.judgments`): never one of a pair's two ratings, never gold, never training data. Each is a
  row of ``model_raters`` of one *kind* from this registry — ``model`` (a dense embedder's cosine score),
  ``reranker`` (a cross-encoder's score), both mapped to 0/1/2 with thresholds calibrated on the gold pairs
  (:mod:`studio.raters.scored`), and ``llm`` (an OpenAI-compatible chat endpoint asked with an UMBRELA-style
  prompt, :mod:`studio.raters.llm`). Their uses: κ against gold and against each person, second looks at pairs
  two people agreed on, triage of the queue (:mod:`studio.actions.judge`).

The UI (③'s model-rater panel), the CLI (``studio judge --<kind> …``), the actions and the docs read
:data:`KINDS`; nothing else spells a kind's name.

Adding a kind (one module + one registry entry + one test):

1. ``studio/raters/<name>.py``: a :class:`~studio.raters.base.ModelRater` subclass with ``name``, ``needs`` and
   ``judge(inputs) -> Verdicts`` (and ``sure_irrelevant`` if triage may use it); add its label
   ``judge.kind_<name>`` and help ``judge.help_<name>`` to both catalogues (studio/locales/*.json).
2. Here: its instance in :data:`KINDS`.
3. tests/test_judge.py: a test that judges the demo project's gold pairs with it.
"""

from __future__ import annotations

from studio.errors import StudioError
from studio.raters.base import Inputs, Judgment, ModelRater, Pair, Verdicts
from studio.raters.llm import LLM
from studio.raters.model import Embedder
from studio.raters.reranker import Reranker

__all__ = ["KINDS", "Inputs", "Judgment", "ModelRater", "Pair", "Verdicts", "get", "names"]

KINDS: dict[str, ModelRater] = {k.name: k for k in (Embedder(), Reranker(), LLM())}


def names() -> tuple[str, ...]:
    """The kinds' names in registry order."""
    return tuple(KINDS)


def get(name: str) -> ModelRater:
    """The kind called `name`; StudioError ``bad_rater_kind`` naming the choices otherwise."""
    try:
        return KINDS[name]
    except KeyError:
        raise StudioError("bad_rater_kind", name=name, choices=", ".join(KINDS)) from None

