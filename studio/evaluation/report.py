"""Evaluate several models on one evaluation set: metrics, timings, error buckets, and each model vs the first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from studio.evaluation import runner
from studio.evaluation.compare import Comparison, compare_models
from studio.evaluation.errors import analyse, changes
from studio.evaluation.metrics import DEFAULT_KS, evaluate


def evaluate_models(evalset: runner.EvalSet, models: Sequence[str], ks: Sequence[int] = DEFAULT_KS, *,
                    reranker: str | None = None, rerank_top: int = 100, run_out: Path | None = None,
                    progress: Callable[[float, str], None] | None = None) -> tuple[dict, list[Comparison]]:
    """Run every model (optionally followed by `reranker`) and compare each with the first.

    Returns a JSON-ready report and the comparisons (for charts). Model names go through the registry's
    `resolve`, so "default", a name in models/, a folder or a hub id all work.
    """
    from studio.models.registry import resolve

    results, errors = [], []
    depth = max(max(ks), rerank_top if reranker else 0, 100)
    for i, name in enumerate(models):
        progress and progress(i / max(len(models), 1), name)
        result = runner.retrieve(evalset, resolve(name), k=depth)
        if reranker:
            result = runner.rerank(evalset, result, resolve(reranker), top=rerank_top)
        result.model = name + (f" → {reranker}" if reranker else "")
        if run_out:
            runner.write_trec(result, Path(run_out) / f"{Path(name).name}.trec", tag=Path(name).name)
        results.append(result)
        errors.append(analyse(evalset.qrels, result.run))
    progress and progress(0.95, "compare")
    comparisons = [compare_models(evalset.qrels, results[0].run, other.run, ks) for other in results[1:]]
    report = {
        "evalset": evalset.name, "queries": len(evalset.qrels), "documents": len(evalset.corpus),
        "models": [{"model": r.model, "metrics": evaluate(evalset.qrels, r.run, ks), "timings": r.timings,
                    "errors": e.counts, "worst": e.worst} for r, e in zip(results, errors)],
        "comparisons": [{"baseline": results[0].model, "model": other.model, **c.as_dict(),
                         "changes": changes(errors[0], err)}
                        for other, c, err in zip(results[1:], comparisons, errors[1:])],
    }
    return report, comparisons
