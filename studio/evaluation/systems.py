"""Systems: what a RAG deployment retrieves with — a first stage (BM25, a dense model, a BGE-M3 mode, or a fusion
of two of them) and an optional cross-encoder over its top N. One short spec names a system, the same in the CLI,
the UI and a deploy recipe:

=========================  ==========================================================================
``bm25``                   bm25s with the studio's tokenizer, over title + text (studio.retrieval.bm25)
``medical-v1``             a dense model: a name in models/, ``default`` (★), a folder or a hub id
``bge-m3:sparse``          a BGE-M3 model scored by one of its modes (dense, sparse, colbert, weighted)
``medical-v1+bm25``        a fusion of two first stages (method and weight tuned, see :func:`choose_fusion`)
``medical-v1+bm25@0.7``    … with a fixed min-max weighted sum: 0.7 × the first + 0.3 × the second
``medical-v1+bm25@rrf``    … with reciprocal-rank fusion
``medical-v1>rr-v1``       a cross-encoder rescoring the first stage's top N
``medical-v1+bm25>rr-v1``  both
=========================  ==========================================================================

Fusion is computed exactly as ranx's ``fuse`` computes ``rrf`` (k = 60) and ``wsum`` over ``min-max``-normalised
runs (tests/test_systems.py checks it against ranx).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from studio.errors import StudioError
from studio.evaluation import runner
from studio.evaluation.metrics import evaluate, primary_metric

Run = dict[str, dict[str, float]]

BM25 = "bm25"
MODES = ("dense", "sparse", "colbert", "weighted")
FUSIONS = ("rrf", "weighted")
RRF_K = 60  # Cormack et al. 2009, and ranx's default
WEIGHT_GRID = tuple(i / 10 for i in range(11))  # ranx's optimize_fusion default step
TUNE_PREFIX = "\x1ftune:"  # tuning queries' ids inside the component runs, so they never meet evaluated ones


@dataclass(frozen=True)
class Stage:
    """One first-stage retriever: ``bm25`` or a model (as the user named it) with a scoring mode."""

    model: str
    mode: str = "dense"

    @property
    def is_bm25(self) -> bool:
        return self.model.lower() == BM25

    def __str__(self) -> str:
        return BM25 if self.is_bm25 else self.model if self.mode == "dense" else f"{self.model}:{self.mode}"


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
        text = "+".join(map(str, self.stages))
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
        """The models it runs, as named (dense stages, then the reranker)."""
        return [s.model for s in self.stages if not s.is_bm25] + ([self.reranker] if self.reranker else [])

    def __str__(self) -> str:
        return self.spec


def parse(text: str) -> System:
    """A system from its spec (see the module docstring).

    Raises:
        StudioError: ``system_empty``, ``system_too_many`` (more than two fused stages or rerankers),
            ``system_bad_fusion`` (what follows ``@`` is neither ``rrf`` nor a weight in [0, 1], or there is
            nothing to fuse), ``system_bad_mode`` (a mode on bm25).
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
    parts = [p.strip() for p in first.split("+")]
    if len(parts) > 2:
        raise StudioError("system_too_many", spec=spec)
    if not all(parts):
        raise StudioError("system_empty")
    if fusion and len(parts) < 2:
        raise StudioError("system_bad_fusion", spec=spec)
    return System(tuple(_stage(p, spec) for p in parts), reranker, fusion, weight)


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


def _stage(text: str, spec: str) -> Stage:
    model, _, mode = text.rpartition(":")
    if not model or mode not in MODES:  # "C:\\models\\x" or a hub id: no mode suffix
        model, mode = text, "dense"
    if model.lower() == BM25:
        if mode != "dense":
            raise StudioError("system_bad_mode", spec=spec, mode=mode)
        return Stage(BM25)
    return Stage(model, mode)


def file_stem(spec: str) -> str:
    """A file name for a system's run or recipe: its spec with ``>`` as ``~``, a path model by its folder name,
    and anything else a file system may refuse as ``_``."""
    system = parse(spec)
    named = replace(system, stages=tuple(replace(s, model=Path(s.model).name) if "/" in s.model or "\\" in s.model
                                         else s for s in system.stages),
                    reranker=Path(system.reranker).name if system.reranker and "/" in system.reranker
                    else system.reranker)
    return re.sub(r"[^\w.+@~:-]", "_", named.spec.replace(">", "~")).replace(":", "_")


# ------------------------------------------------------------------------------------------------------ fusion

def min_max(ranked: Mapping[str, float]) -> dict[str, float]:
    """Scores mapped onto [0, 1] per query (ranx's ``min-max`` norm: a flat list gets 0 everywhere)."""
    if not ranked:
        return {}
    low, high = min(ranked.values()), max(ranked.values())
    span = max(high - low, 1e-9)
    return {doc: (score - low) / span for doc, score in ranked.items()}


def fuse_weighted(a: Run, b: Run, weight: float, depth: int | None = None) -> Run:
    """``weight × minmax(a) + (1 − weight) × minmax(b)`` per query; a document one run did not retrieve gets 0
    from it. Queries of either run; the best `depth` documents of each (all when None)."""
    out: Run = {}
    for qid in dict.fromkeys([*a, *b]):
        na, nb = min_max(a.get(qid, {})), min_max(b.get(qid, {}))
        fused = {d: weight * na.get(d, 0.0) + (1 - weight) * nb.get(d, 0.0) for d in dict.fromkeys([*na, *nb])}
        out[qid] = _top(fused, depth)
    return out


def fuse_rrf(a: Run, b: Run, k: int = RRF_K, depth: int | None = None) -> Run:
    """Reciprocal-rank fusion: ``Σ 1 / (k + rank)`` over the runs that retrieved a document (ranks from 1, ties
    by document id)."""
    out: Run = {}
    for qid in dict.fromkeys([*a, *b]):
        fused: dict[str, float] = {}
        for run in (a.get(qid, {}), b.get(qid, {})):
            for rank, doc in enumerate(sorted(run, key=lambda d: (-run[d], d)), start=1):
                fused[doc] = fused.get(doc, 0.0) + 1.0 / (k + rank)
        out[qid] = _top(fused, depth)
    return out


def _top(scores: dict[str, float], depth: int | None) -> dict[str, float]:
    if depth is None or len(scores) <= depth:
        return scores
    return dict(sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:depth])


@dataclass(frozen=True)
class Fusion:
    """How a system fuses its two first stages and why: ``chosen_by`` is ``pinned`` (the spec says), ``tuned`` (the
    best mean nDCG@10 over `tune_queries` labelled queries of `tune_set`, none of them evaluated or trained on) or
    ``untuned`` (no such queries: reciprocal-rank fusion, which has nothing to tune)."""

    method: str
    weight: float | None
    chosen_by: str
    tune_queries: int = 0
    tune_set: str | None = None
    tune_score: float | None = None

    def apply(self, a: Run, b: Run, depth: int | None = None) -> Run:
        if self.method == "rrf":
            return fuse_rrf(a, b, depth=depth)
        return fuse_weighted(a, b, float(self.weight), depth)

    def as_dict(self) -> dict:
        return {"method": self.method, "weight": self.weight, "chosen_by": self.chosen_by,
                "tune_queries": self.tune_queries, "tune_set": self.tune_set, "tune_score": self.tune_score}


def choose_fusion(a: Run, b: Run, qrels: Mapping[str, Mapping[str, int]], tune_set: str | None = None) -> Fusion:
    """The fusion with the best mean nDCG@10 on `qrels` (labelled tuning queries): reciprocal rank, or a weighted
    sum with a weight on :data:`WEIGHT_GRID`; ties go to RRF, then to the lower weight. Without a labelled query:
    RRF, untuned."""
    if not qrels:
        return Fusion("rrf", None, "untuned")
    name, k = primary_metric.split("@")

    def score(run: Run) -> float:
        return evaluate(qrels, run, (int(k),), (name,))[primary_metric]

    best = Fusion("rrf", None, "tuned", len(qrels), tune_set, score(fuse_rrf(a, b)))
    for weight in WEIGHT_GRID:
        value = score(fuse_weighted(a, b, weight))
        if value > best.tune_score + 1e-12:
            best = Fusion("weighted", weight, "tuned", len(qrels), tune_set, value)
    return replace(best, tune_score=round(best.tune_score, 4))


# ---------------------------------------------------------------------------------------------------- running

@dataclass
class _Components:
    """First-stage runs over the evaluated and the tuning queries, each retriever run once per evaluation."""

    evalset: runner.EvalSet
    tune: runner.EvalSet | None
    depth: int
    runs: dict[str, runner.RunResult] = field(default_factory=dict)

    def queries(self) -> dict[str, str]:
        tuning = {TUNE_PREFIX + q: text for q, text in (self.tune.queries.items() if self.tune else ())}
        return {**self.evalset.queries, **tuning}

    def run(self, stage: Stage, path: str) -> runner.RunResult:
        key = str(stage)
        if key not in self.runs:
            queries = self.queries()
            pool = runner.EvalSet(self.evalset.name, queries, self.evalset.corpus, {})
            if stage.is_bm25:
                result = retrieve_bm25(pool, self.depth)
            elif stage.mode == "dense":
                result = runner.retrieve(pool, path, k=self.depth)
            else:
                result = runner.retrieve_m3(pool, path, stage.mode, k=self.depth)
            spent = sum(result.timings.get(t, 0.0) for t in ("query_encode_s", "search_s", "encode_and_score_s"))
            result.timings["ms_per_query"] = round(1000 * spent / max(len(queries), 1), 2)
            self.runs[key] = result
        return self.runs[key]


def retrieve_bm25(evalset: runner.EvalSet, k: int = 100) -> runner.RunResult:
    """Top-`k` documents per query by BM25 (bm25s, the studio's tokenizer) over the evaluation set's corpus."""
    from studio.retrieval.bm25 import BM25Index

    doc_ids = list(evalset.corpus)
    t0 = time.perf_counter()
    index = BM25Index([evalset.corpus[d] for d in doc_ids])
    index_s = time.perf_counter() - t0
    qids = list(evalset.queries)
    t0 = time.perf_counter()
    hits = index.search_many([evalset.queries[q] for q in qids], k=k)
    search_s = time.perf_counter() - t0
    run = {q: {doc_ids[pos]: score for pos, score in ranked} for q, ranked in zip(qids, hits)}
    return runner.RunResult(BM25, run, {"index_s": round(index_s, 3), "search_s": round(search_s, 4),
                                        "queries_per_s": round(len(qids) / max(search_s, 1e-9), 1)})


def _only(run: Run, prefix: bool) -> Run:
    return {(q[len(TUNE_PREFIX):] if prefix else q): r for q, r in run.items() if q.startswith(TUNE_PREFIX) == prefix}


def tuning_qrels(system: System, evalset: runner.EvalSet, tune: runner.EvalSet | None) -> dict[str, dict[str, int]]:
    """The tuning set's labels without the queries a fine-tune in `system` was trained on (its studio_model.json
    names its training file) and without any query text that is evaluated: a fine-tune scores its own training
    queries too well, so a weight tuned on them would over-trust it."""
    from studio.models.registry import trained_on

    if tune is None:
        return {}
    seen = set(evalset.queries.values())
    for model in system.models:
        for path in trained_on(model, include_valid=False):
            seen |= _query_texts(path)
    return {q: labels for q, labels in tune.qrels.items()
            if tune.queries.get(q) not in seen and any(v > 0 for v in labels.values())}


def _query_texts(path: str | Path) -> set[str]:
    import json

    with open(path, encoding="utf-8") as f:
        return {json.loads(line)["query"] for line in f if line.strip()}


def check(systems: Sequence[System]) -> dict[str, str]:
    """Each model of `systems` resolved to a path, before anything runs (a typo fails in a second, not after the
    first system's corpus encoding).

    Raises:
        StudioError: ``model_missing``, ``not_m3``, ``bad_mode``.
    """
    from studio.models.registry import resolve
    from studio.retrieval.m3 import check_mode

    paths: dict[str, str] = {}
    for system in systems:
        for stage in system.stages:
            if not stage.is_bm25:
                paths[stage.model] = resolve(stage.model)
                check_mode(paths[stage.model], stage.mode, stage.model)
        if system.reranker:
            paths[system.reranker] = resolve(system.reranker)
    return paths


def run_systems(evalset: runner.EvalSet, systems: Sequence[System], *, tune: runner.EvalSet | None = None,
                depth: int = 100, rerank_top: int = 100,
                progress: Callable[[float, str], None] | None = None) -> list[runner.RunResult]:
    """One run per system over `evalset` (a first stage computed once is shared by every system using it), each
    named by its spec with ``info``: its fusion (:class:`Fusion`), reranker depth and search latency per query
    (query encoding, search, fusion and reranking; corpus encoding excluded)."""
    paths = check(systems)
    components = _Components(evalset, tune, depth)
    results = []
    for i, system in enumerate(systems):
        progress and progress(i / max(len(systems), 1), system.spec)
        parts = [components.run(stage, paths.get(stage.model, "")) for stage in system.stages]
        ms = sum(p.timings["ms_per_query"] for p in parts)
        fusion = None
        if len(parts) == 1:
            run = _only(parts[0].run, prefix=False)
        else:
            if system.fusion:
                fusion = Fusion(system.fusion, system.weight, "pinned")
            else:
                qrels = tuning_qrels(system, evalset, tune)
                fusion = choose_fusion(*(_only(p.run, prefix=True) for p in parts), qrels,
                                       tune.name if tune is not None else None)
            t0 = time.perf_counter()
            run = fusion.apply(*(_only(p.run, prefix=False) for p in parts), depth=depth)
            ms += 1000 * (time.perf_counter() - t0) / max(len(evalset.queries), 1)
        timings = {k: v for p in parts for k, v in p.timings.items() if k.endswith("_s") and k != "search_s"}
        result = runner.RunResult(system.first_stage.spec, run, timings, group=i)
        if system.reranker:
            progress and progress((i + 0.5) / max(len(systems), 1), system.spec)
            result = runner.rerank(evalset, result, paths[system.reranker], top=rerank_top)
            ms += 1000 * result.timings["rerank_s"] / max(len(evalset.queries), 1)
        result.model, result.group, result.stage = system.spec, i, "first"
        result.timings["ms_per_query"] = round(ms, 2)
        result.info = {"spec": system.spec, "stages": [str(s) for s in system.stages], "models": system.models,
                       "fusion": fusion.as_dict() if fusion else None, "reranker": system.reranker,
                       "rerank_top": rerank_top if system.reranker else None, "ms_per_query": round(ms, 2)}
        results.append(result)
    return results
