"""Produce runs to evaluate: exact retrieval over the whole corpus (cosine, or a BGE-M3 scoring mode), optionally
reranked by a cross-encoder."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from studio.dataset.naming import validation_twin
from studio.errors import StudioError
from studio.ingest.beir import read_beir
from studio.records import document_text
from studio.retrieval import exact
from studio.retrieval.bm25_store import ProjectCorpus
from studio.retrieval.rerank import load_reranker
from studio.training.train_file import file_queries


@dataclass
class EvalSet:
    """What to evaluate on: queries, the whole corpus, and graded relevance (0/1/2) per query."""

    name: str
    queries: dict[str, str]
    corpus: dict[str, str]
    qrels: dict[str, dict[str, int]]


@dataclass
class RunResult:
    """A ranked list per query, with what it cost.

    `group` is the position of the model the run came from in an evaluation, `stage` ``"first"`` for the
    retriever alone and ``"reranked"`` once a cross-encoder has rescored it; the report pairs runs by them.
    `info` describes a system's run (studio.evaluation.systems: fusion, latency).
    """

    model: str
    run: dict[str, dict[str, float]]
    timings: dict[str, float] = field(default_factory=dict)
    group: int = 0
    stage: str = "first"
    info: dict = field(default_factory=dict)


def from_beir(directory: str | Path, split: str = "test", exclude_queries: set[str] | None = None,
              name: str | None = None) -> EvalSet:
    """A BEIR folder's split: graded labels keep their grades (capped at 2), as `studio import beir` does.

    `exclude_queries`: query texts to leave out (a training file's, see :func:`training_queries`).

    Raises:
        StudioError: ``no_eval_queries`` when every labelled query is excluded.
    """
    batch = read_beir(directory, split=split)
    corpus = {d.key: document_text(d.title, d.text) for d in batch.extra_documents}
    queries = {q.key: q.text for q in batch.extra_queries}
    qrels: dict[str, dict[str, int]] = {}
    for rec in batch.pairs:
        corpus[rec.document.key] = document_text(rec.document.title, rec.document.text)
        queries[rec.query.key] = rec.query.text
        qrels.setdefault(rec.query.key, {})[rec.document.key] = rec.reference_label
    if exclude_queries:
        qrels = {q: labels for q, labels in qrels.items() if queries[q] not in exclude_queries}
        if not qrels:
            raise StudioError("no_eval_queries")
    return EvalSet(name or f"{Path(directory).name}/{split}", {q: queries[q] for q in qrels}, corpus, qrels)


def from_gold(gold, exclude_queries: set[str] | None = None, name: str = "db",
              db_path: str | Path | None = None) -> EvalSet:
    """The database's gold labels, without the queries a model was trained on (pass them in `exclude_queries`).

    `db_path`: the database the labels were read from; BM25 then searches its saved index (one per corpus version,
    :mod:`studio.retrieval.bm25_store`) instead of building one per evaluation."""
    keep = {q: text for q, text in gold.queries.items() if text not in (exclude_queries or set())}
    qrels = {q: dict(gold.labels[q]) for q in keep if any(v > 0 for v in gold.labels[q].values())}
    if not qrels:
        raise StudioError("no_eval_queries")
    corpus = ProjectCorpus(gold.corpus, db_path) if db_path is not None else dict(gold.corpus)
    return EvalSet(name, {q: keep[q] for q in qrels}, corpus, qrels)


def held_out_files(train_file: str | Path) -> list[Path]:
    """A training file and, when there is one, its validation twin (``X.valid.jsonl`` beside ``X.jsonl``): a
    fine-tune learned from both (its job picks the twin up), so an evaluation leaves both out."""
    path = Path(train_file)
    twin = validation_twin(path)
    return [path] if twin is None else [path, twin]


def training_queries(train_file: str | Path) -> set[str]:
    """Query texts of a FlagEmbedding training file and of its validation twin (:func:`held_out_files`), to hold
    them out of an evaluation.

    Raises:
        StudioError: ``train_file_missing`` when there is no such file.
    """
    if not Path(train_file).is_file():
        raise StudioError("train_file_missing", path=str(train_file))
    return set().union(*map(file_queries, held_out_files(train_file)))


def retrieve(evalset: EvalSet, model: str, k: int = 100) -> RunResult:
    """Top-`k` documents per query by exact cosine similarity over cached corpus embeddings
    (:func:`studio.retrieval.exact.dense_run`)."""
    return RunResult(str(model), *exact.dense_run(evalset.queries, evalset.corpus, model, k))


def retrieve_m3(evalset: EvalSet, model: str, mode: str, k: int = 100,
                weights: tuple[float, float, float] | None = None) -> RunResult:
    """Top-`k` documents per query by a BGE-M3 scoring mode, exact over the whole corpus (see studio.retrieval.m3).

    Raises:
        StudioError: ``not_m3`` when `model` is not a BGE-M3 folder, ``bad_mode``, ``model_missing``.
    """
    return RunResult(str(model), *exact.m3_run(evalset.queries, evalset.corpus, model, mode, k, weights))


def rerank(evalset: EvalSet, first: RunResult, reranker: str, top: int = 100, batch_size: int = 32) -> RunResult:
    """Rescore each query's first `top` documents with a cross-encoder (FlagReranker, cached in-process).

    The documents past `top` keep their first-stage order below every reranked one (scores ``min - 1``,
    ``min - 2``, ...), so metrics at cut-offs beyond `top` still see them, as in a real two-stage system.
    """
    model = load_reranker(reranker)
    t0 = time.perf_counter()
    run = {}
    for qid, ranked in first.run.items():
        order = sorted(ranked, key=lambda d: (-ranked[d], d))
        docs, rest = order[:top], order[top:]
        scores = model.compute_score([[evalset.queries[qid], evalset.corpus[d]] for d in docs],
                                     batch_size=batch_size) if docs else []
        scores = [scores] if isinstance(scores, (int, float)) else scores
        run[qid] = {d: float(s) for d, s in zip(docs, scores)}
        floor = min(run[qid].values(), default=0.0)
        run[qid].update({d: floor - i for i, d in enumerate(rest, start=1)})
    seconds = time.perf_counter() - t0
    timings = {**first.timings, "rerank_s": round(seconds, 3),
               "queries_per_s": round(len(run) / max(seconds, 1e-9), 1)}
    return RunResult(f"{first.model} → {reranker}", run, timings, group=first.group, stage="reranked")


def write_trec(result: RunResult, path: str | Path, tag: str) -> Path:
    """TREC run format, one line per (query, document): ``qid Q0 docid rank score tag``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for qid in sorted(result.run):
            ranked = sorted(result.run[qid].items(), key=lambda item: (-item[1], item[0]))
            f.writelines(f"{qid} Q0 {doc} {rank} {score:.6f} {tag}\n"
                         for rank, (doc, score) in enumerate(ranked, start=1))
    return path
