"""Systems: what a RAG deployment retrieves with — a first stage (BM25, a dense model, a BGE-M3 mode, or a fusion
of two of them) and an optional cross-encoder over its top N. One short spec names a system, the same in the CLI,
the UI and a deploy recipe:

=========================  ==========================================================================
``bm25``                   bm25s with the studio's tokenizer, over title + text (studio.retrieval.bm25)
``medical-v1``             a dense model: a name in models/, ``default`` (★), a folder or a hub id
``bge-m3:sparse``          a BGE-M3 model scored by one of its modes (dense, sparse, colbert, weighted)
``medical-v1+bm25``        a fusion of two first stages (studio.retrieval.fusion; method and weight tuned)
``medical-v1+bm25@0.7``    … with a fixed min-max weighted sum: 0.7 × the first + 0.3 × the second
``medical-v1+bm25@rrf``    … with reciprocal-rank fusion
``medical-v1>rr-v1``       a cross-encoder rescoring the first stage's top N
``medical-v1+bm25>rr-v1``  both
``run:prod.trec``          a TREC run file's rankings (a production system's, computed elsewhere): a file in
                           runs/ (the CLI also takes a path); fusable (``run:prod.trec+bm25``) and rerankable
                           (``run:prod.trec>rr-v1``), never deployable as a recipe (studio.ingest.trec); its
                           name cannot hold ``+``, ``@`` or ``>``
=========================  ==========================================================================

Each kind of stage (``bm25``, a dense model, a BGE-M3 mode, ``run:FILE``, the cross-encoder after ``>``) is an
entry of the registry :mod:`studio.retrieval.stages`, which spells its name, parses and checks it and says how it
ranks; this module owns the grammar that combines them (``+``, ``@``, ``>``) and the depths' defaults. Evaluation
(studio.evaluation.systems) tunes an unpinned fusion on labelled queries; studio.retrieval.fusion computes it
exactly as ranx does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from studio.errors import StudioError
from studio.retrieval import m3
from studio.retrieval.stages import BM25 as BM25_KIND
from studio.retrieval.stages import RUN_FILE, ModelKind, Stage, parse_stage

__all__ = ["BM25", "FIRST_STAGE_DEPTH", "FUSIONS", "MODES", "RERANK_TOP", "RUN", "Stage", "System", "choices",
           "file_stem", "fused", "parse"]

BM25 = BM25_KIND.name  # the spec of BM25 alone
RUN = RUN_FILE.prefix  # a stage read from a TREC run file: run:FILE
# The defaults of a system's depths, once for the CLI, ⑧ Evaluate, ⑨ Compare and the recipes.
FIRST_STAGE_DEPTH = 100  # candidates each first stage retrieves (what an evaluation ranks and a recipe ships)
# First-stage candidates a reranker rescores. 100, as BEIR reranks BM25's top 100 and as ⑧'s evaluations and the
# exported recipes measured: ⑨ then ranks as ⑧ measured (20 in ⑧ and 30 in ⑨ ranked differently from `studio eval`).
RERANK_TOP = 100
MODES = m3.MODES  # a model's scoring modes (``NAME:MODE``; dense unless said)
FUSIONS = ("rrf", "weighted")
FUSE = "+"  # joins two first stages


@dataclass(frozen=True)
class System:
    """A parsed spec (:func:`parse`): one or two first stages, how two are fused when the spec pins it (``fusion``
    and ``weight``; None = tuned) and an optional reranker."""

    stages: tuple[Stage, ...]
    reranker: str | None = None
    fusion: str | None = None
    weight: float | None = None

    @property
    def spec(self) -> str:
        """The canonical spec: what reports, run files and recipes call this system."""
        text = FUSE.join(map(str, self.stages))
        if self.fusion == "rrf":
            text += "@rrf"
        elif self.fusion == "weighted":
            text += f"@{self.weight:g}"
        return text + (f">{self.reranker}" if self.reranker else "")

    @property
    def first_stage(self) -> System:
        """The same system without its reranker."""
        return replace(self, reranker=None)

    @property
    def is_bm25(self) -> bool:
        return len(self.stages) == 1 and self.stages[0].is_bm25 and not self.reranker

    @property
    def models(self) -> list[str]:
        """The models it runs, as named (dense stages, then the reranker); run files are not models."""
        return [s.model for s in self.stages if isinstance(s.kind, ModelKind)] + ([self.reranker] if self.reranker else [])

    @property
    def run_files(self) -> list[str]:
        """The run files its stages read, as named (``prod.trec`` for ``run:prod.trec``)."""
        return [s.run_name for s in self.stages if s.is_run]

    @property
    def exportable(self) -> bool:
        """Whether a recipe can deploy it: every stage's kind can (a run file's rankings cannot answer a new
        query)."""
        return all(s.kind.exportable for s in self.stages)

    def __str__(self) -> str:
        return self.spec


def parse(text: str) -> System:
    """A system from its spec (see the module docstring).

    Raises:
        StudioError: ``system_empty`` (also ``run:`` without a file), ``system_too_many`` (more than two fused
            stages or rerankers), ``system_bad_fusion`` (what follows ``@`` is neither ``rrf`` nor a weight in
            [0, 1], or there is nothing to fuse), ``system_bad_mode`` (a mode on bm25), ``system_run_mode`` (a
            mode on a run file: its scores are given).
    """
    spec = str(text or "").strip()
    if not spec:
        raise StudioError("system_empty")
    first, *rerankers = [part.strip() for part in spec.split(">")]
    if len(rerankers) > 1:
        raise StudioError("system_too_many", spec=spec)
    reranker = rerankers[0] if rerankers else None
    if not first or reranker == "":
        raise StudioError("system_empty")
    fusion = weight = None
    if "@" in first:
        first, pin = (p.strip() for p in first.rsplit("@", 1))
        fusion, weight = _pin(pin, spec)
    parts = [p.strip() for p in first.split(FUSE)]
    if len(parts) > 2:
        raise StudioError("system_too_many", spec=spec)
    if not all(parts):
        raise StudioError("system_empty")
    if fusion and len(parts) < 2:
        raise StudioError("system_bad_fusion", spec=spec)
    return System(tuple(parse_stage(p, spec) for p in parts), reranker, fusion, weight)


def _pin(pin: str, spec: str) -> tuple[str, float | None]:
    if pin.lower() == "rrf":
        return "rrf", None
    try:
        weight = float(pin)
    except ValueError:
        raise StudioError("system_bad_fusion", spec=spec) from None
    if not 0 <= weight <= 1:
        raise StudioError("system_bad_fusion", spec=spec)
    return "weighted", weight


def fused(*specs: str) -> str:
    """The spec that fuses first stages (``medical-v1+bm25``: tuned in an evaluation, reciprocal rank for one query)."""
    return FUSE.join(specs)


def choices(embedders: Sequence[str], runs: Sequence[str] = ()) -> list[str]:
    """The systems ⑨'s pickers offer: BM25, each embedder, then each fused with BM25, then each run file of runs/
    (`runs`: names inside it); anything else can be typed."""
    return [BM25, *embedders, *(fused(name, BM25) for name in embedders), *(RUN_FILE.spec_of(n) for n in runs)]


def file_stem(spec: str) -> str:
    """A file name for a system's run or recipe: its spec with ``>`` as ``~``, a path model by its folder name,
    and anything else a file system may refuse as ``_``."""
    system = parse(spec)
    named = replace(system, stages=tuple(replace(s, model=(RUN if s.is_run else "") + Path(s.run_name or s.model).name)
                                         if "/" in s.model or "\\" in s.model else s for s in system.stages),
                    reranker=Path(system.reranker).name if system.reranker and "/" in system.reranker
                    else system.reranker)
    return re.sub(r"[^\w.+@~:-]", "_", named.spec.replace(">", "~")).replace(":", "_")
