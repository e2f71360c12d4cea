"""The kinds of stage a system is built from — the only list of them and the only place their names are spelled.

A system (:mod:`studio.retrieval.systems`) is one or two first stages, fused, and optionally a reranker after ``>``.
Each kind of stage is one entry of :data:`FIRST_STAGES` or :data:`RERANKERS`: how a spec spells it
(:meth:`StageKind.parse`), what it needs (``needs``), how it is checked and where its model or file is
(:meth:`StageKind.locate`), how it ranks one query (⑨ Compare, ``studio search``: :meth:`StageKind.search`) and a
whole evaluation set (⑧, ``studio eval``: :meth:`StageKind.retrieve`), and whether a recipe can deploy it
(``exportable``). The spec parser, ⑨'s pickers (:func:`studio.retrieval.systems.choices`, read through
``studio.actions.search.system_choices``) and the docs read them.

The kinds, in the order the parser asks them, each with its example, whether ⑨ searches it one query at a time
and whether a recipe deploys it:

- ``run`` — ``run:prod.trec``: a TREC run file's rankings, computed elsewhere (runs/); ⑨ yes, recipe no.
- ``bm25`` — ``bm25``: bm25s with the studio's tokenizer over each document's text; ⑨ yes, recipe yes.
- ``m3`` — ``bge-m3:sparse``: a BGE-M3 scoring mode other than dense (:mod:`studio.retrieval.m3`); ⑨ only
  ``sparse``, recipe yes.
- ``dense`` — ``medical-v1``: an embedder's cosine (a name in models/, ``default``, a folder or a hub id;
  ``NAME:dense`` too), the catch-all; ⑨ yes, recipe yes.
- ``cross-encoder`` — ``medical-v1>rr-v1``: a cross-encoder rescoring the first stage's top N; ⑨ yes, recipe yes.

Adding a kind (one entry + one test):

1. Here: a :class:`StageKind` subclass (``name``, ``spelled``, ``needs``, ``example``, ``exportable``,
   :meth:`~StageKind.parse`, :meth:`~StageKind.owns`, :meth:`~StageKind.locate`, :meth:`~StageKind.search`,
   :meth:`~StageKind.retrieve`) and its instance in :data:`FIRST_STAGES` before :class:`Dense`, the catch-all that
   takes any other text as a model.
2. tests/test_systems.py: a test that parses its ``example`` and ranks with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from studio.errors import StudioError
from studio.ingest.trec import load_run
from studio.models.registry import require, resolve
from studio.retrieval import exact, m3
from studio.retrieval.search import Hit, approximate, search, search_bm25, search_run, search_sparse

Run = dict[str, dict[str, float]]
DENSE_MODE = "dense"  # a model's mode when the spec names none: cosine of its embeddings
M3_SEARCHABLE = ("sparse",)  # BGE-M3 modes ⑨ can search one query at a time (see studio.retrieval.system_search)


@dataclass(frozen=True)
class Stage:
    """One first stage as a spec names it: ``bm25``, a model (as the user named it) with a scoring mode, or a run
    file (``model`` is then ``run:FILE``). Its kind is the first of :data:`FIRST_STAGES` that owns it."""

    model: str
    mode: str = DENSE_MODE

    @property
    def kind(self) -> StageKind:
        """The registry entry of this stage (:func:`kind_of`)."""
        return kind_of(self)

    @property
    def is_bm25(self) -> bool:
        return isinstance(self.kind, Bm25)

    @property
    def is_run(self) -> bool:
        """Whether the stage reads a TREC run file's precomputed rankings instead of searching."""
        return isinstance(self.kind, RunFile)

    @property
    def run_name(self) -> str | None:
        """The run file as the spec names it (``prod.trec`` for ``run:prod.trec``); None for another stage."""
        return self.model[len(RunFile.prefix):] if self.is_run else None

    def __str__(self) -> str:
        return self.kind.spell(self)


class StageKind:
    """One kind of stage. Subclasses set the class attributes and implement the methods their place calls.

    Attributes:
        name: how the docs, the tests and error messages call the kind.
        place: ``"first"`` (a first stage, fusable) or ``"reranker"`` (after ``>``).
        needs: what it reads: ``"embedder"`` or ``"reranker"`` (a model of that use, checked by
            :func:`studio.models.registry.require`), ``"run_file"`` (a file in runs/), or None (the corpus only).
        example: a spec of this kind, as the docs show it.
        spelled: what a spec writes for this kind — a keyword (``bm25``), a prefix (``run:``) or suffixes
            (``:sparse``); empty for a kind named by its model. Nothing outside this module spells them
            (tests/test_registries.py).
        exportable: whether a recipe can deploy it (a run file's rankings cannot answer a new query).
        precomputed: whether it reads rankings computed elsewhere (no search time of its own).
    """

    name: ClassVar[str]
    place: ClassVar[str] = "first"
    needs: ClassVar[str | None] = None
    example: ClassVar[str]
    spelled: ClassVar[tuple[str, ...]] = ()
    exportable: ClassVar[bool] = True
    precomputed: ClassVar[bool] = False

    def parse(self, text: str, spec: str) -> Stage | None:
        """The stage `text` (one part of `spec`, stripped) names when it is of this kind, else None.

        Raises:
            StudioError: when `text` is of this kind but malformed (its code names the problem).
        """
        raise NotImplementedError(f"stage kind {self.name!r} has no parse()")

    def owns(self, stage: Stage) -> bool:
        """Whether `stage` (as :meth:`parse` made it) is of this kind."""
        raise NotImplementedError(f"stage kind {self.name!r} has no owns()")

    def spell(self, stage: Stage) -> str:
        """The canonical text of `stage` in a spec."""
        return stage.model

    def locate(self, stage: Stage, *, strict: bool) -> str | None:
        """What a search of `stage` reads (a model's folder or hub id, a run file's path), checked before anything
        runs; None when it reads the corpus only. `strict` also checks a model for its place
        (:func:`studio.models.registry.require`; else it is only resolved)."""
        return None

    def check_searchable(self, stage: Stage, spec: str) -> None:
        """Raise when ⑨ cannot search `stage` one query at a time (StudioError ``mode_not_searchable``)."""

    def search(self, stage: Stage, path: str, query: str, keys: list[str], texts: list[str], n: int,
               query_keys: Sequence[str] = ()) -> tuple[list[Hit], float, int]:
        """The top `n` documents of the corpus (`keys`, `texts`) for one `query`, the milliseconds it took and how
        many of its candidates the corpus lacks (a run file's); `query_keys`: the stored queries with its text."""
        raise NotImplementedError(f"stage kind {self.name!r} has no search()")

    def retrieve(self, stage: Stage, path: str, queries: Mapping[str, str], corpus: Mapping[str, str], k: int, *,
                 key: Callable[[str], str] = str) -> tuple[Run, dict[str, float]]:
        """The top `k` documents of `corpus` (id → text) for every query (id → text) and the timings, as an
        evaluation runs it; `key` maps a query id to the project's key (what a run file's rankings are keyed by)."""
        raise NotImplementedError(f"stage kind {self.name!r} has no retrieve()")

    def approximate(self, stage: Stage, path: str, keys: list[str], texts: list[str]):
        """How :meth:`search` searched this corpus when not exactly (:class:`studio.retrieval.ann.Quality`: the
        approximate index and its measured recall@10), or None for an exact search."""
        return None

    def __repr__(self) -> str:
        return f"<stage kind {self.name}>"


def _split_mode(text: str) -> tuple[str, str]:
    """``NAME:MODE`` as (NAME, MODE) when MODE is a BGE-M3 mode; else (text, dense): ``C:\\models\\x`` or a hub id
    has no mode suffix."""
    model, _, mode = text.rpartition(":")
    if not model or mode not in m3.MODES:
        return text, DENSE_MODE
    return model, mode


class RunFile(StageKind):
    """``run:FILE``: a TREC run file's rankings (studio.ingest.trec) — a file in runs/ (the CLI also takes a path),
    keyed by the project's query and document ids. Fusable and rerankable, never deployable; its name cannot hold
    ``+``, ``@`` or ``>``, and a mode is refused (its scores are given)."""

    name = "run"
    prefix: ClassVar[str] = "run:"
    spelled = (prefix,)
    needs = "run_file"
    example = "run:prod.trec"
    exportable = False
    precomputed = True

    def parse(self, text: str, spec: str) -> Stage | None:
        if text[:len(self.prefix)].lower() != self.prefix:
            return None
        name = text[len(self.prefix):].strip()
        if not name:
            raise StudioError("system_empty")
        _, _, mode = name.rpartition(":")
        if mode in m3.MODES and name != mode:
            raise StudioError("system_run_mode", spec=spec, mode=mode)
        return Stage(self.prefix + name)

    def owns(self, stage: Stage) -> bool:
        return stage.model.startswith(self.prefix)

    def spec_of(self, file: str) -> str:
        """The stage that reads the run file `file` (a name in runs/ or a path)."""
        return self.prefix + file

    def locate(self, stage: Stage, *, strict: bool) -> str:
        return str(load_run(stage.run_name).path)

    def search(self, stage: Stage, path: str, query: str, keys: list[str], texts: list[str], n: int,
               query_keys: Sequence[str] = ()) -> tuple[list[Hit], float, int]:
        hits, skipped = search_run(path, query_keys, keys, n)
        return hits, 0.0, skipped

    def retrieve(self, stage: Stage, path: str, queries: Mapping[str, str], corpus: Mapping[str, str], k: int, *,
                 key: Callable[[str], str] = str) -> tuple[Run, dict[str, float]]:
        return exact.run_file_rankings(load_run(Path(path)), queries, k, key=key), {"ms_per_query": 0.0}


class Bm25(StageKind):
    """``bm25``: bm25s with the studio's tokenizer over each document's text (studio.retrieval.bm25); any case; a
    mode other than dense is refused."""

    name = "bm25"
    spelled = (name,)
    example = "bm25"

    def parse(self, text: str, spec: str) -> Stage | None:
        model, mode = _split_mode(text)
        if model.lower() != self.name:
            return None
        if mode != DENSE_MODE:
            raise StudioError("system_bad_mode", spec=spec, mode=mode)
        return Stage(self.name)

    def owns(self, stage: Stage) -> bool:
        return stage.model.lower() == self.name

    def spell(self, stage: Stage) -> str:
        return self.name

    def search(self, stage: Stage, path: str, query: str, keys: list[str], texts: list[str], n: int,
               query_keys: Sequence[str] = ()) -> tuple[list[Hit], float, int]:
        return (*search_bm25(query, keys, texts, n), 0)

    def retrieve(self, stage: Stage, path: str, queries: Mapping[str, str], corpus: Mapping[str, str], k: int, *,
                 key: Callable[[str], str] = str) -> tuple[Run, dict[str, float]]:
        return exact.bm25_run(queries, corpus, k)


class ModelKind(StageKind):
    """A kind that runs a model of the models folder (or a folder, or a hub id)."""

    def locate(self, stage: Stage, *, strict: bool) -> str:
        path = require(stage.model, self.needs) if strict else resolve(stage.model)
        m3.check_mode(path, stage.mode, stage.model)
        return path


class M3Mode(ModelKind):
    """``NAME:MODE``: a BGE-M3 model scored by one of its other modes (``sparse``, ``colbert``, ``weighted``;
    studio.retrieval.m3), exact over the corpus. ⑨ searches only :data:`M3_SEARCHABLE` (token vectors of a whole
    corpus do not fit in memory one query at a time)."""

    name = "m3"
    spelled = tuple(f":{mode}" for mode in m3.MODES if mode != DENSE_MODE)
    needs = "embedder"
    example = "bge-m3:sparse"

    def parse(self, text: str, spec: str) -> Stage | None:
        model, mode = _split_mode(text)
        return Stage(model, mode) if mode != DENSE_MODE else None

    def owns(self, stage: Stage) -> bool:
        return stage.mode != DENSE_MODE

    def spell(self, stage: Stage) -> str:
        return f"{stage.model}:{stage.mode}"

    def check_searchable(self, stage: Stage, spec: str) -> None:
        if stage.mode not in M3_SEARCHABLE:
            raise StudioError("mode_not_searchable", spec=spec, model=stage.model, mode=stage.mode)

    def search(self, stage: Stage, path: str, query: str, keys: list[str], texts: list[str], n: int,
               query_keys: Sequence[str] = ()) -> tuple[list[Hit], float, int]:
        return (*search_sparse(path, query, keys, texts, n), 0)

    def retrieve(self, stage: Stage, path: str, queries: Mapping[str, str], corpus: Mapping[str, str], k: int, *,
                 key: Callable[[str], str] = str) -> tuple[Run, dict[str, float]]:
        return exact.m3_run(queries, corpus, path, stage.mode, k)


class Dense(ModelKind):
    """A dense model (``NAME`` or ``NAME:dense``): cosine over its cached corpus embeddings. The catch-all: any
    text no other kind takes is a model's name, folder or hub id."""

    name = "dense"
    needs = "embedder"
    example = "medical-v1"

    def parse(self, text: str, spec: str) -> Stage | None:
        return Stage(_split_mode(text)[0])

    def owns(self, stage: Stage) -> bool:
        return True

    def search(self, stage: Stage, path: str, query: str, keys: list[str], texts: list[str], n: int,
               query_keys: Sequence[str] = ()) -> tuple[list[Hit], float, int]:
        return (*search(path, query, keys, texts, n), 0)

    def retrieve(self, stage: Stage, path: str, queries: Mapping[str, str], corpus: Mapping[str, str], k: int, *,
                 key: Callable[[str], str] = str) -> tuple[Run, dict[str, float]]:
        return exact.dense_run(queries, corpus, path, k)

    def approximate(self, stage: Stage, path: str, keys: list[str], texts: list[str]):
        return approximate(path, keys, texts)


class CrossEncoder(ModelKind):
    """``>NAME``: a cross-encoder (FlagReranker) rescoring the first stage's top N (studio.retrieval.rerank); a
    name in models/, a folder or a hub id."""

    name = "cross-encoder"
    place = "reranker"
    needs = "reranker"
    example = "medical-v1>rr-v1"

    def parse(self, text: str, spec: str) -> Stage | None:
        return Stage(text)

    def owns(self, stage: Stage) -> bool:
        return True

    def locate_model(self, name: str, *, strict: bool) -> str:
        """The reranker `name` resolved (`strict`: checked to be a cross-encoder)."""
        return require(name, self.needs) if strict else resolve(name)

    def locate(self, stage: Stage, *, strict: bool) -> str:
        return self.locate_model(stage.model, strict=strict)


# The registry: first stages in the order the parser asks them (Dense, the catch-all, last), then the rerankers.
FIRST_STAGES: tuple[StageKind, ...] = (RunFile(), Bm25(), M3Mode(), Dense())
RERANKERS: tuple[StageKind, ...] = (CrossEncoder(),)
KINDS: dict[str, StageKind] = {kind.name: kind for kind in (*FIRST_STAGES, *RERANKERS)}
BM25: Bm25 = KINDS[Bm25.name]
RUN_FILE: RunFile = KINDS[RunFile.name]
DENSE: Dense = KINDS[Dense.name]
RERANKER: CrossEncoder = KINDS[CrossEncoder.name]


def parse_stage(text: str, spec: str) -> Stage:
    """The first stage `text` names: the first kind of :data:`FIRST_STAGES` that takes it."""
    for kind in FIRST_STAGES:
        stage = kind.parse(text, spec)
        if stage is not None:
            return stage
    raise AssertionError("the catch-all kind takes every text")  # pragma: no cover


def kind_of(stage: Stage) -> StageKind:
    """The first of :data:`FIRST_STAGES` that owns `stage`."""
    return next(kind for kind in FIRST_STAGES if kind.owns(stage))
