"""Evaluating systems (studio.retrieval.systems specs): runs for each system over an evaluation set, the first
stages shared, and each fusion's method and weight chosen on labelled queries that are neither evaluated nor trained
on (:func:`choose_fusion`).

A ``run:FILE`` stage reads a TREC run file's rankings (studio.ingest.trec) instead of searching: its query and
document ids are the project's keys, its scores are fused as given, and a reranker rescores its top N by the corpus
texts. Its gaps are reported, never dropped in silence (:func:`run_file_gaps`): documents the corpus lacks stay in
the ranking (unjudgeable, they count as not relevant, as trec_eval and ranx count them), evaluated queries it has no
ranking for score 0, and its queries outside the evaluation are ignored and counted. It costs no search time here:
a system of run files alone has no latency (``ms_per_query`` None) and ``info["precomputed"]`` names such stages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from studio.evaluation import runner
from studio.evaluation.heldout import learned
from studio.evaluation.metrics import evaluate, primary_metric
from studio.ingest.trec import TrecRun, load_run
from studio.retrieval import exact
from studio.retrieval.fusion import Run, fuse_rrf, fuse_weighted
from studio.retrieval.stages import RERANKER, RUN_FILE
from studio.retrieval.systems import BM25, Stage, System, file_stem, parse  # noqa: F401  (re-exported)
from studio.retrieval.systems import FIRST_STAGE_DEPTH, RERANK_TOP
from studio.training.train_file import fingerprint

WEIGHT_GRID = tuple(i / 10 for i in range(11))  # ranx's optimize_fusion default step
TUNE_PREFIX = "\x1ftune:"  # tuning queries' ids inside the component runs, so they never meet evaluated ones
EXAMPLES = 3  # examples of each kind of run-file gap in a system's info


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
            run, timings = stage.kind.retrieve(stage, path, queries, self.evalset.corpus, self.depth,
                                               key=_project_key)
            result = runner.RunResult(path or key, run, timings)
            if not stage.kind.precomputed:
                spent = sum(timings.get(t, 0.0) for t in ("query_encode_s", "search_s", "encode_and_score_s"))
                result.timings["ms_per_query"] = round(1000 * spent / max(len(queries), 1), 2)
            self.runs[key] = result
        return self.runs[key]


def retrieve_bm25(evalset: runner.EvalSet, k: int = FIRST_STAGE_DEPTH) -> runner.RunResult:
    """Top-`k` documents per query by BM25 (bm25s, the studio's tokenizer) over the evaluation set's corpus."""
    return runner.RunResult(BM25, *exact.bm25_run(evalset.queries, evalset.corpus, k))


def from_run_file(trec: TrecRun, queries: Iterable[str], depth: int = FIRST_STAGE_DEPTH) -> runner.RunResult:
    """A run file's top-`depth` documents for each of `queries` (ids; a tuning query's id carries
    :data:`TUNE_PREFIX` before the project's key), scores as given; a query the file has no ranking for has none
    here. Precomputed: ``ms_per_query`` 0."""
    run = exact.run_file_rankings(trec, queries, depth, key=_project_key)
    return runner.RunResult(RUN_FILE.spec_of(trec.name), run, {"ms_per_query": 0.0})


def _project_key(qid: str) -> str:
    """A query's key in the project: a tuning query's id without :data:`TUNE_PREFIX`."""
    return qid[len(TUNE_PREFIX):] if qid.startswith(TUNE_PREFIX) else qid


def run_file_gaps(trec: TrecRun, evaluated: Iterable[str], corpus: Mapping[str, str],
                  tuning: Iterable[str] = ()) -> dict:
    """What a run file lacks or holds beyond an evaluation (its ids are the project's keys), as a system's
    ``info["run_file"]``:

    * ``unknown_documents``: distinct documents in the rankings of the `evaluated` queries that `corpus` lacks
      (kept in the ranking: no label can reach them, so they count as not relevant);
    * ``missing_queries``: `evaluated` queries the file has no ranking for (they score 0);
    * ``unknown_queries``: the file's queries that are neither evaluated nor `tuning` queries (ignored);

    with ``path``, ``file``, ``lines`` (data lines read), ``queries`` (in the file), ``evaluated`` and
    ``examples`` (up to :data:`EXAMPLES` of each kind: ``{"kind", "query"[, "document"]}``).
    """
    evaluated = list(dict.fromkeys(evaluated))
    known = set(evaluated) | set(tuning)
    missing = [q for q in evaluated if q not in trec.run]
    unknown_queries = sorted(q for q in trec.run if q not in known)
    unknown_docs: dict[str, str] = {}  # document -> the first evaluated query ranking it
    for q in evaluated:
        for doc, _ in trec.ranking(q):
            if doc not in corpus:
                unknown_docs.setdefault(doc, q)
    examples = ([{"kind": "unknown_document", "query": q, "document": d}
                 for d, q in list(unknown_docs.items())[:EXAMPLES]]
                + [{"kind": "missing_query", "query": q} for q in missing[:EXAMPLES]]
                + [{"kind": "unknown_query", "query": q} for q in unknown_queries[:EXAMPLES]])
    return {"path": str(trec.path), "file": trec.name, "lines": trec.lines, "queries": len(trec.run),
            "evaluated": len(evaluated), "unknown_documents": len(unknown_docs),
            "unknown_queries": len(unknown_queries), "missing_queries": len(missing), "examples": examples}


def run_file_warnings(results: Sequence[runner.RunResult]) -> list[dict]:
    """A report warning (kind ``run_file_gaps``) per run file with documents the corpus lacks or evaluated queries
    it has no ranking for, naming the first system that reads it."""
    out, seen = [], set()
    for result in results:
        for gaps in (result.info or {}).get("run_files", []):
            if gaps["path"] in seen or not (gaps["unknown_documents"] or gaps["missing_queries"]):
                continue
            seen.add(gaps["path"])
            out.append({"kind": "run_file_gaps", "model": result.model, "file": gaps["file"],
                        "unknown_documents": gaps["unknown_documents"], "missing_queries": gaps["missing_queries"],
                        "queries": gaps["evaluated"], "examples": gaps["examples"], "significant": False})
    return out


def _rerank(evalset: runner.EvalSet, first: runner.RunResult, reranker: str, top: int) -> runner.RunResult:
    """:func:`runner.rerank` over the documents the corpus has: a run file's documents without a text cannot be
    rescored, so they follow every rescored document, in their first-stage order."""
    unknown = {q: [d for d in ranked if d not in evalset.corpus] for q, ranked in first.run.items()}
    if not any(unknown.values()):
        return runner.rerank(evalset, first, reranker, top=top)
    known = replace(first, run={q: {d: s for d, s in ranked.items() if d in evalset.corpus}
                                for q, ranked in first.run.items()})
    result = runner.rerank(evalset, known, reranker, top=top)
    for q, docs in unknown.items():
        if docs:
            ranked = result.run.setdefault(q, {})
            floor = min(ranked.values(), default=0.0)
            ordered = sorted(docs, key=lambda d: (-first.run[q][d], d))
            ranked.update({d: floor - i for i, d in enumerate(ordered, start=1)})
    return result


def _only(run: Run, prefix: bool) -> Run:
    return {(q[len(TUNE_PREFIX):] if prefix else q): r for q, r in run.items() if q.startswith(TUNE_PREFIX) == prefix}


def tuning_qrels(system: System, evaluated: Iterable[str], tune: runner.EvalSet | None) -> dict[str, dict[str, int]]:
    """The tuning set's labels without the queries a fine-tune in `system` was trained on (the fingerprints its
    studio_model.json recorded, or its training file; :func:`studio.evaluation.heldout.learned`) and without any
    `evaluated` query text: a fine-tune scores its own training queries too well, so a weight tuned on them would
    over-trust it. Its validation queries may tune (never a gradient step)."""
    if tune is None:
        return {}
    seen = set(evaluated)
    trained = frozenset().union(*(learned(model).train for model in system.models))
    return {q: labels for q, labels in tune.qrels.items()
            if tune.queries.get(q) not in seen and fingerprint(tune.queries.get(q, "")) not in trained
            and any(v > 0 for v in labels.values())}


def check(systems: Sequence[System]) -> dict[str, str]:
    """Each model of `systems` resolved to a path, and each run file found and parsed, before anything runs (a
    typo or a malformed line fails in a second, not after the first system's corpus encoding). A run file is keyed
    by its stage (``run:NAME``).

    A model is checked for its place (:func:`studio.models.registry.require`): an unknown name is refused with the
    names in models/, a reranker as a first stage and an embedder as a reranker are refused, in the studio's words.

    Raises:
        StudioError: ``model_unknown``, ``model_is_reranker``, ``model_not_reranker``, ``not_m3``, ``bad_mode``,
            ``run_file_missing``, a run file's InputError.
    """
    paths: dict[str, str] = {}
    for system in systems:
        for stage in system.stages:
            path = stage.kind.locate(stage, strict=True)
            if path is not None:
                paths[stage.model] = path
        if system.reranker:
            paths[system.reranker] = RERANKER.locate_model(system.reranker, strict=True)
    return paths


def run_systems(evalset: runner.EvalSet, systems: Sequence[System], *, tune: runner.EvalSet | None = None,
                depth: int = FIRST_STAGE_DEPTH, rerank_top: int = RERANK_TOP,
                progress: Callable[[float, str], None] | None = None) -> list[runner.RunResult]:
    """One run per system over `evalset` (a first stage computed once is shared by every system using it), each
    named by its spec with ``info``: its fusion (:class:`Fusion`), reranker depth and search latency per query
    (query encoding, search, fusion and reranking; corpus encoding excluded). A system with run-file stages also
    has ``run_file`` (:func:`run_file_gaps` of its first run file), ``run_files`` (all of them) and
    ``precomputed`` (those stages, which take no time here; a system of them alone has ``ms_per_query`` None in
    its info and no rate in its timings)."""
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
                qrels = tuning_qrels(system, evalset.queries.values(), tune)
                fusion = choose_fusion(*(_only(p.run, prefix=True) for p in parts), qrels,
                                       tune.name if tune is not None else None)
            t0 = time.perf_counter()
            run = fusion.apply(*(_only(p.run, prefix=False) for p in parts), depth=depth)
            ms += 1000 * (time.perf_counter() - t0) / max(len(evalset.queries), 1)
        timings = {k: v for p in parts for k, v in p.timings.items()
                   if k.endswith("_s") and k not in ("search_s", "queries_per_s")}
        result = runner.RunResult(system.first_stage.spec, run, timings, group=i)
        if system.reranker:
            progress and progress((i + 0.5) / max(len(systems), 1), system.spec)
            result = _rerank(evalset, result, paths[system.reranker], top=rerank_top)
            ms += 1000 * result.timings["rerank_s"] / max(len(evalset.queries), 1)
        result.model, result.group, result.stage = system.spec, i, "first"
        precomputed = [str(s) for s in system.stages if s.kind.precomputed]
        timed = len(precomputed) < len(system.stages) or bool(system.reranker)
        # The whole system's rate (its stages, fusion and reranker), not one stage's; none for rankings read
        result.timings.pop("ms_per_query", None)
        if timed:
            result.timings["ms_per_query"] = round(ms, 2)
            result.timings["queries_per_s"] = round(1000 / max(ms, 1e-9), 1)
        result.info = {"spec": system.spec, "stages": [str(s) for s in system.stages], "models": system.models,
                       "fusion": fusion.as_dict() if fusion else None, "reranker": system.reranker,
                       "rerank_top": rerank_top if system.reranker else None,
                       "ms_per_query": round(ms, 2) if timed else None}
        if precomputed:
            tuning = list(tune.queries) if tune is not None else []
            gaps = [run_file_gaps(load_run(Path(paths[s.model])), evalset.queries, evalset.corpus, tuning)
                    for s in system.stages if s.is_run]
            result.info.update(run_file=gaps[0], run_files=gaps, precomputed=precomputed)
        results.append(result)
    return results


def fusion_for(system: System, tune: runner.EvalSet | None, *, depth: int = FIRST_STAGE_DEPTH,
               evaluated: Sequence[str] = ()) -> Fusion | None:
    """How `system` fuses its two first stages: as pinned by its spec, else chosen on `tune`'s labelled queries
    (without those a fine-tune in it was trained on and the `evaluated` query texts), else RRF untuned; None for a
    system with one first stage. Runs only the first stages, only on the tuning queries (a recipe's export)."""
    if len(system.stages) < 2:
        return None
    if system.fusion:
        return Fusion(system.fusion, system.weight, "pinned")
    qrels = tuning_qrels(system, evaluated, tune)
    if not qrels:
        return Fusion("rrf", None, "untuned")
    paths = check([system.first_stage])
    pool = runner.EvalSet(tune.name, {q: tune.queries[q] for q in qrels}, tune.corpus, {})
    components = _Components(pool, None, depth)
    a, b = (components.run(stage, paths.get(stage.model, "")).run for stage in system.stages)
    return choose_fusion(a, b, qrels, tune.name)
