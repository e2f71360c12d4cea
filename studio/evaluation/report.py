"""Evaluate several models on one evaluation set: metrics, timings, error buckets and comparisons.

Each model gives one run from its retriever (dense cosine, or a BGE-M3 scoring mode) and, with a reranker, a
second run: the same retriever followed by the cross-encoder. The comparisons are

* kind ``"model"``: every other model against the first, stage by stage (B vs A; B → R vs A → R);
* kind ``"reranker"``: each model's reranked run against its own first stage (A → R vs A), which is the
  reranker's effect alone.

A comparison whose headline metric (:func:`headline`, nDCG@10 by default) goes down is marked ``worse`` and
listed in the report's ``warnings`` whether or not the drop is significant, so a reranker (or a fine-tuned
model) that makes ranking worse is never hidden behind the improvements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from studio.evaluation import runner
from studio.evaluation.compare import TIE_TOLERANCE, Comparison, compare_models, min_queries_for_significance
from studio.evaluation.errors import analyse, changes
from studio.evaluation.metrics import DEFAULT_KS, evaluate, per_query, primary_metric
from studio.i18n import t


def evaluate_models(evalset: runner.EvalSet, models: Sequence[str], ks: Sequence[int] = DEFAULT_KS, *,
                    mode: str = "dense", weights: Sequence[float] | None = None, reranker: str | None = None,
                    rerank_top: int = 100, include_first_stage: bool = True, run_out: Path | None = None,
                    progress: Callable[[float, str], None] | None = None) -> tuple[dict, list[Comparison]]:
    """Run every model (optionally followed by `reranker`) and compare the runs (see the module docstring).

    Args:
        evalset: queries, corpus and graded labels.
        models: names for the registry's `resolve` ("default", a name in models/, a folder, a hub id); the
            first is the baseline.
        ks: metric cut-offs.
        mode: ``dense`` (cosine, any embedder) or a BGE-M3 mode, ``sparse``, ``colbert``, ``weighted``
            (see :mod:`studio.retrieval.m3`); applies to every model.
        weights: dense, sparse and colbert weights for ``weighted`` (default ``[0.4, 0.2, 0.4]``).
        reranker: a cross-encoder that rescores each model's top `rerank_top` documents.
        include_first_stage: with a reranker, also report each model without it (the default), so the
            report shows "dense" next to "dense → reranker".
        run_out: write a TREC run file per run into this folder.
        progress: called with (fraction done, what runs now).

    Returns:
        A JSON-ready report and the comparisons (in the report's order).

    Raises:
        StudioError: ``not_m3`` (a mode other than dense on a model that is not BGE-M3, checked before
            anything runs), ``bad_mode``, ``model_missing``.
    """
    from studio.models.registry import resolve
    from studio.retrieval.m3 import DEFAULT_WEIGHTS, check_mode

    paths = [resolve(name) for name in models]
    for name, path in zip(models, paths):
        check_mode(path, mode, name)
    reranker_path = resolve(reranker) if reranker else None
    weights = tuple(weights or DEFAULT_WEIGHTS)
    depth = max(max(ks), rerank_top if reranker else 0, 100)
    steps = max(len(models) * (2 if reranker else 1), 1)
    results: list[runner.RunResult] = []
    done = 0
    for i, (name, path) in enumerate(zip(models, paths)):
        label = name if mode == "dense" else f"{name} [{mode}]"
        progress and progress(done / steps, label)
        if mode == "dense":
            first = runner.retrieve(evalset, path, k=depth)
        else:
            first = runner.retrieve_m3(evalset, path, mode, k=depth, weights=weights)
        first.model, first.group = label, i
        done += 1
        stages = [first] if not reranker or include_first_stage else []
        if reranker:
            progress and progress(done / steps, f"{label} → {reranker}")
            second = runner.rerank(evalset, first, reranker_path, top=rerank_top)
            second.model = f"{label} → {reranker}"
            stages.append(second)
            done += 1
        for result in stages:
            if run_out:
                tag = _run_tag(name, mode, reranker if result.stage == "reranked" and include_first_stage else None)
                runner.write_trec(result, Path(run_out) / f"{tag}.trec", tag=tag)
            results.append(result)
    progress and progress(0.95, "compare")
    settings = {"mode": mode, "weights": list(weights) if mode == "weighted" else None, "reranker": reranker,
                "rerank_top": rerank_top if reranker else None}
    return build_report(evalset, results, ks, settings=settings)


def _run_tag(name: str, mode: str, reranker: str | None) -> str:
    tag = Path(name).name + ("" if mode == "dense" else f".{mode}")
    return tag + (f"+{Path(reranker).name}" if reranker else "")


def comparison_plan(results: Sequence[runner.RunResult]) -> list[tuple[str, int, int]]:
    """Which runs to compare: ``(kind, baseline index, other index)``, model comparisons first.

    kind ``model``: each run against the run of the same stage of the first model (group) that has that
    stage; kind ``reranker``: a group's reranked run against its first-stage run.
    """
    index = {(r.group, r.stage): i for i, r in enumerate(results)}
    groups = list(dict.fromkeys(r.group for r in results))
    plan = []
    for group in groups[1:]:
        for stage in ("first", "reranked"):
            base = next((index[(g, stage)] for g in groups if (g, stage) in index), None)
            if (group, stage) in index and base is not None and base != index[(group, stage)]:
                plan.append(("model", base, index[(group, stage)]))
    for group in groups:
        if (group, "first") in index and (group, "reranked") in index:
            plan.append(("reranker", index[(group, "first")], index[(group, "reranked")]))
    return plan


def headline(rows: Sequence[dict]) -> dict:
    """The row a comparison is summed up by: the primary metric (ndcg@10), else nDCG at the largest cut-off."""
    for row in rows:
        if row["metric"] == primary_metric:
            return row
    ndcg = [row for row in rows if row["metric"].startswith("ndcg@")]
    return max(ndcg, key=lambda row: int(row["metric"].split("@")[1])) if ndcg else rows[0]


def build_report(evalset: runner.EvalSet, results: Sequence[runner.RunResult], ks: Sequence[int] = DEFAULT_KS, *,
                 settings: dict | None = None) -> tuple[dict, list[Comparison]]:
    """The report over finished runs: metrics, error buckets, per-query values and :func:`comparison_plan`.

    Every model entry carries ``per_query`` (each query's primary metric and error bucket) and its ten
    ``worst`` queries with their text; every comparison its ``kind``, ``headline`` row and ``worse`` flag;
    ``warnings`` lists the worse comparisons (see the module docstring).
    """
    errors = [analyse(evalset.qrels, r.run) for r in results]
    plan = comparison_plan(results)
    comparisons = [compare_models(evalset.qrels, results[a].run, results[b].run, ks) for _, a, b in plan]
    name, k = primary_metric.split("@")
    models = []
    for result, err in zip(results, errors):
        primary = per_query(evalset.qrels, result.run, (int(k),), (name,))[primary_metric]
        worst = [{**row, "query": evalset.queries.get(row["query_id"], "")} for row in err.worst]
        models.append({"model": result.model, "group": result.group, "stage": result.stage,
                       "metrics": evaluate(evalset.qrels, result.run, ks), "timings": result.timings,
                       "errors": err.counts, "worst": worst,
                       "per_query": {q: {primary_metric: primary[q], "bucket": err.by_query.get(q)}
                                     for q in evalset.qrels}})
    entries = []
    for (kind, a, b), comparison in zip(plan, comparisons):
        entry = {"kind": kind, "baseline": results[a].model, "model": results[b].model, "baseline_run": a,
                 "model_run": b, **comparison.as_dict(), "changes": changes(errors[a], errors[b])}
        entry["headline"] = headline(entry["rows"])
        entry["worse"] = entry["headline"]["delta"] <= -TIE_TOLERANCE
        entries.append(entry)
    warnings = [{"kind": f"{e['kind']}_worse", "model": e["model"], "baseline": e["baseline"],
                 "metric": e["headline"]["metric"], "a": e["headline"]["a"], "b": e["headline"]["b"],
                 "delta": e["headline"]["delta"], "p_holm": e["headline"]["p_holm"],
                 "significant": e["headline"]["significant"]} for e in entries if e["worse"]]
    warnings += training_overlap(evalset, results)
    report = {"evalset": evalset.name, "queries": len(evalset.qrels), "documents": len(evalset.corpus),
              "primary_metric": primary_metric, **(settings or {}), "models": models, "comparisons": entries,
              "warnings": warnings}
    return report, comparisons


def training_overlap(evalset: runner.EvalSet, results: Sequence[runner.RunResult]) -> list[dict]:
    """A warning per studio-trained model that learned from some of the evaluation's queries (its training or
    validation file, named in its ``studio_model.json``, or the training file's ``.valid.jsonl`` twin holds their
    texts; the warning counts and names both): its scores there flatter it.

    Typical on the project's own gold labels, which the training file was exported from; the fix is to leave that
    file's queries out (``--exclude-train`` / ⑧'s "leave out" field) or to evaluate on a held-out BEIR split.
    """
    from studio.models.registry import trained_on

    texts = {evalset.queries.get(q, "") for q in evalset.qrels}
    out = []
    for model in dict.fromkeys(r.model for r in results):
        files = list(dict.fromkeys(str(p) for f in trained_on(model) for p in runner.held_out_files(f)))
        try:
            seen = set().union(*(runner.training_queries(f) for f in files))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a training file that is not FlagEmbedding JSONL any more: nothing to compare
        overlap = len(texts & seen)
        if overlap:
            out.append({"kind": "trained_on_eval", "model": model, "overlap": overlap, "queries": len(evalset.qrels),
                        "file": files[0], "files": files, "significant": True})
    return out


def file_names(paths: Sequence[str | Path], lang: str) -> str:
    """"train.jsonl", or "train.jsonl and train.valid.jsonl" for a training file and its validation twin."""
    names = [Path(p).name for p in paths]
    return names[0] if len(names) == 1 else t("evaluate.file_pair", lang, first=names[0], second=names[1])


def warning_lines(report: dict, lang: str) -> list[str]:
    """One sentence per warning in `lang`, e.g. "⚠ Reranker lowers ndcg@10 by 0.030: ... (p = 0.0100, ...)"."""
    lines = []
    for w in report.get("warnings", []):
        if w["kind"] == "trained_on_eval":
            key = "evaluate.warn_trained_on_eval" + ("_one" if w["queries"] == 1 else "")
            lines.append(t(key, lang, model=w["model"], overlap=w["overlap"],
                           queries=w["queries"], file=file_names(w.get("files") or [w["file"]], lang)))
            continue
        verdict = t("evaluate.verdict_significant" if w["significant"] else "evaluate.verdict_not_significant", lang)
        key = "evaluate.warn_reranker_worse" if w["kind"] == "reranker_worse" else "evaluate.warn_model_worse"
        lines.append(t(key, lang, model=w["model"], baseline=w["baseline"], metric=w["metric"],
                       drop=f"{-w['delta']:.3f}", before=f"{w['a']:.3f}", after=f"{w['b']:.3f}",
                       p=f"{w['p_holm']:.4f}", verdict=verdict))
    return lines


def significance_line(report: dict, lang: str) -> str | None:
    """"n of total metric changes are significant", or None without comparisons."""
    if not report["comparisons"]:
        return None
    significant = sum(r["significant"] for c in report["comparisons"] for r in c["rows"])
    key = "evaluate.significant" + ("_one" if significant == 1 else "")  # "1 of 16 changes is significant"
    return t(key, lang, n=significant, total=sum(len(c["rows"]) for c in report["comparisons"]))


def sample_size_line(report: dict, lang: str) -> str | None:
    """A warning when the evaluation set has too few queries for any change to be significant, else None."""
    if not report["comparisons"]:
        return None
    comparison = report["comparisons"][0]
    needed = min_queries_for_significance(len(comparison["rows"]), comparison.get("alpha", 0.05))
    if report["queries"] >= needed:
        return None
    key = "evaluate.too_few_queries" + ("_one" if report["queries"] == 1 else "")
    return t(key, lang, queries=report["queries"], needed=needed,
             total=len(comparison["rows"]))
