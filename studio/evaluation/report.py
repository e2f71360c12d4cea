"""Evaluate several models on one evaluation set: metrics, timings, error buckets and comparisons.

Each model gives one run from its retriever (dense cosine, or a BGE-M3 scoring mode) and, with a reranker, a
second run: the same retriever followed by the cross-encoder. The comparisons are

* kind ``"model"``: every other model against the first, stage by stage (B vs A; B → R vs A → R);
* kind ``"reranker"``: each model's reranked run against its own first stage (A → R vs A), which is the
  reranker's effect alone.

A comparison whose headline metric (:func:`headline`, nDCG@10 by default) goes down is marked ``worse`` and
listed in the report's ``warnings`` whether or not the drop is significant, so a reranker (or a fine-tuned
model) that makes ranking worse is never hidden behind the improvements.

Unjudged documents count as irrelevant in the four IR metrics, so a system whose top 10 is poorly judged is scored
low for want of labels rather than for its ranking: each model entry's ``metrics`` adds ``judged@K`` and
``ndcg_condensed@K`` (:func:`studio.evaluation.metrics.coverage`), its ``unjudged`` counts the pairs to label, and
:func:`coverage_warnings` flags the systems whose nDCG@10 is likely an underestimate. A systems evaluation's
recommendation adds ``planner`` (:func:`studio.evaluation.power.plan`): how many queries would tell its lead apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from studio.evaluation import power, runner
from studio.evaluation import systems as sysmod
from studio.evaluation.compare import TIE_TOLERANCE, Comparison, compare_models, min_queries_for_significance
from studio.evaluation.errors import analyse, changes
from studio.evaluation.heldout import learned
from studio.evaluation.metrics import DEFAULT_KS, coverage, evaluate, per_query, primary_metric, unjudged_pairs
from studio.errors import StudioError
from studio.i18n import t
from studio.models.registry import resolve, trained_on
from studio.retrieval.m3 import DEFAULT_WEIGHTS, check_mode
from studio.retrieval.systems import FIRST_STAGE_DEPTH, RERANK_TOP, parse
from studio.training.train_file import fingerprint

COVERAGE_K = 10  # the cut-off whose judged share the coverage warning reads (nDCG@10's)
MIN_JUDGED = 0.9  # below this share of judged documents in the top 10, nDCG@10 is called an underestimate
MAX_JUDGED_GAP = 0.1  # ... or this far below the best-covered system's share


def evaluate_models(evalset: runner.EvalSet, models: Sequence[str], ks: Sequence[int] = DEFAULT_KS, *,
                    mode: str = "dense", weights: Sequence[float] | None = None, reranker: str | None = None,
                    rerank_top: int = RERANK_TOP, include_first_stage: bool = True, run_out: Path | None = None,
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
    paths = [resolve(name) for name in models]
    for name, path in zip(models, paths):
        check_mode(path, mode, name)
    reranker_path = resolve(reranker) if reranker else None
    weights = tuple(weights or DEFAULT_WEIGHTS)
    depth = max(max(ks), rerank_top if reranker else 0, FIRST_STAGE_DEPTH)
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


def evaluate_systems(evalset: runner.EvalSet, specs: Sequence[str], ks: Sequence[int] = DEFAULT_KS, *,
                     tune: runner.EvalSet | None = None, rerank_top: int = RERANK_TOP, run_out: Path | None = None,
                     progress: Callable[[float, str], None] | None = None,
                     keep_runs: dict | None = None) -> tuple[dict, list[Comparison]]:
    """Run every system (studio.evaluation.systems specs; the first is the baseline) and compare them: each
    against the first, each reranked system against its own first stage, and every system against BM25 when
    BM25 is one of them (:func:`systems_plan`). The report adds ``recommended`` (the spec of the best system on
    these queries) and ``recommendation`` (:func:`recommend`).

    Args:
        tune: labelled queries that tune each fusion's method and weight (never the evaluated ones; see
            studio.evaluation.systems.tuning_qrels); None: fusions are reciprocal-rank, untuned.
        run_out: write one TREC run per system into this folder, named after its spec.
        keep_runs: filled with each system's run (spec → query → document → score), for what the caller does next
            with them (⑧ sends their unjudged top documents to the queue without running the systems again).

    Raises:
        StudioError: a spec's errors (``system_*``), ``model_missing``, ``not_m3``.
    """
    parsed = list({s.spec: s for s in map(sysmod.parse, specs)}.values())
    if not parsed:
        raise StudioError("pick_models")
    depth = max(max(ks), rerank_top if any(s.reranker for s in parsed) else 0, FIRST_STAGE_DEPTH)
    results = sysmod.run_systems(evalset, parsed, tune=tune, depth=depth, rerank_top=rerank_top,
                                 progress=lambda f, what: progress and progress(0.9 * f, what))
    if keep_runs is not None:
        keep_runs.update({result.model: result.run for result in results})
    if run_out:
        for result in results:
            stem = sysmod.file_stem(result.model)
            runner.write_trec(result, Path(run_out) / f"{stem}.trec", tag=stem)
    progress and progress(0.92, "compare")
    settings = {"systems": [s.spec for s in parsed], "tune_set": tune.name if tune is not None else None,
                "rerank_top": rerank_top if any(s.reranker for s in parsed) else None}
    report, comparisons = build_report(evalset, results, ks, settings=settings, plan=systems_plan(parsed))
    report["warnings"] += sysmod.run_file_warnings(results)  # a run file's unknown documents, missing queries
    recommendation = recommend(evalset, results, ks)
    report["recommended"] = recommendation["spec"] if recommendation else None
    report["recommendation"] = recommendation
    return report, comparisons


def systems_plan(systems: Sequence) -> list[tuple[str, int, int]]:
    """Which system runs to compare, ``(kind, baseline index, other index)``: ``model`` (each against the first),
    ``reranker`` (a reranked system against the same first stage alone, when both are evaluated) and ``bm25``
    (every system against BM25 when BM25 is evaluated; against the first system that is BM25, kind ``bm25``)."""
    bm25 = next((i for i, s in enumerate(systems) if s.is_bm25), None)
    plan = [("bm25" if bm25 == 0 else "model", 0, i) for i in range(1, len(systems))]
    index = {s.spec: i for i, s in enumerate(systems)}
    plan += [("reranker", index[s.first_stage.spec], i) for i, s in enumerate(systems)
             if s.reranker and s.first_stage.spec in index]
    if bm25 not in (None, 0):
        plan += [("bm25", bm25, i) for i in range(len(systems)) if i != bm25]
    return plan


def recommend(evalset: runner.EvalSet, results: Sequence[runner.RunResult],
              ks: Sequence[int] = DEFAULT_KS) -> dict | None:
    """The system with the best mean :data:`primary_metric` on these queries (ties: the earlier one), its lead
    over the runner-up and whether that lead is significant (the runner-up as baseline, paired randomisation,
    Holm across the comparison's metrics), its search latency, and ``planner``: how many queries a paired t-test
    would need to confirm that lead, or a 0.02 one (:func:`studio.evaluation.power.plan` on the per-query
    differences of the two; None with one system)."""
    if not results:
        return None
    name, k = primary_metric.split("@")
    value = [evaluate(evalset.qrels, r.run, (int(k),), (name,))[primary_metric] for r in results]
    order = sorted(range(len(results)), key=lambda i: (-value[i], i))
    best = results[order[0]]
    out = {"spec": best.model, "metric": primary_metric, "value": value[order[0]],
           "ms_per_query": best.timings.get("ms_per_query"), "fusion": (best.info or {}).get("fusion"),
           "runner_up": None, "runner_up_value": None, "delta": None, "p_holm": None, "significant": False,
           "queries": len(evalset.qrels), "planner": None}
    if len(order) < 2:
        return out
    second = results[order[1]]
    comparison = compare_models(evalset.qrels, second.run, best.run, ks)
    row = headline([asdict(r) for r in comparison.rows])
    out.update(runner_up=second.model, runner_up_value=value[order[1]], delta=value[order[0]] - value[order[1]],
               p_holm=row["p_holm"], significant=bool(row["significant"]),
               planner=power.plan(list(comparison.per_query_delta.values())))
    return out


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
                 settings: dict | None = None,
                 plan: Sequence[tuple[str, int, int]] | None = None) -> tuple[dict, list[Comparison]]:
    """The report over finished runs: metrics, error buckets, per-query values and :func:`comparison_plan`.

    Every model entry carries ``per_query`` (each query's primary metric and error bucket) and its ten
    ``worst`` queries with their text; every comparison its ``kind``, ``headline`` row and ``worse`` flag;
    ``warnings`` lists the worse comparisons (see the module docstring), then :func:`coverage_warnings`.

    A model entry's ``metrics`` holds the four IR metrics at each cut-off, then ``ndcg_condensed@K`` and
    ``judged@K`` (:func:`studio.evaluation.metrics.coverage`; never compared or tested for significance), and its
    ``unjudged`` maps each cut-off, as a string, and always ``"10"``, to the number of distinct (query, document)
    pairs without a gold label in the top K over the evaluated queries: ``{"1": 12, "10": 340, ...}`` — what
    ``studio pool --system SPEC --depth K --unjudged`` would send to the annotation queue.
    """
    errors = [analyse(evalset.qrels, r.run) for r in results]
    plan = comparison_plan(results) if plan is None else list(plan)
    comparisons = [compare_models(evalset.qrels, results[a].run, results[b].run, ks) for _, a, b in plan]
    name, k = primary_metric.split("@")
    models = []
    for result, err in zip(results, errors):
        primary = per_query(evalset.qrels, result.run, (int(k),), (name,))[primary_metric]
        worst = [{**row, "query": evalset.queries.get(row["query_id"], "")} for row in err.worst]
        unjudged = {str(c): len(unjudged_pairs(evalset.qrels, result.run, c)) for c in sorted({*ks, COVERAGE_K})}
        models.append({"model": result.model, "group": result.group, "stage": result.stage,
                       "metrics": {**evaluate(evalset.qrels, result.run, ks),
                                   **coverage(evalset.qrels, result.run, ks)},
                       "unjudged": unjudged, "timings": result.timings,
                       "errors": err.counts, "worst": worst,
                       "per_query": {q: {primary_metric: primary[q], "bucket": err.by_query.get(q)}
                                     for q in evalset.qrels}, **({"system": result.info} if result.info else {})})
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
    warnings += coverage_warnings(evalset, results)
    warnings += training_overlap(evalset, results)
    report = {"evalset": evalset.name, "queries": len(evalset.qrels), "documents": len(evalset.corpus),
              "primary_metric": primary_metric, **(settings or {}), "models": models, "comparisons": entries,
              "warnings": warnings}
    return report, comparisons


def coverage_warnings(evalset: runner.EvalSet, results: Sequence[runner.RunResult]) -> list[dict]:
    """A ``low_judged`` warning per run whose judged@10 (:func:`studio.evaluation.metrics.judged_at_k`) is below
    :data:`MIN_JUDGED`, or more than :data:`MAX_JUDGED_GAP` below the best-covered run's: its nDCG@10 counts
    unjudged documents as misses, so it likely underestimates the system, and comparisons with better-judged
    systems favour them.

    Each warning gives the run's ``spec`` (the system spec to pool from), ``judged`` and the best-covered run's
    (``best_judged``, ``best_model``), ``unjudged`` (distinct unjudged (query, document) pairs in its top 10),
    ``ndcg`` and ``ndcg_condensed`` and ``k``. The two nDCG values are the pessimistic reading (unjudged =
    irrelevant, the "lower bound" TREC speaks of) and the optimistic one (unjudged left out); neither is a strict
    bound (a relevant unjudged document also raises the ideal DCG), but together they show how far the missing
    labels can move the score. Never ``significant``: it is no test result, only a caution. A run with no unjudged
    pair in its top 10 (its rankings are shorter than 10, every document judged) is exact and never warned about.
    """
    if not results:
        return []
    k = COVERAGE_K
    stats = []
    for result in results:
        found = {**coverage(evalset.qrels, result.run, (k,)), **evaluate(evalset.qrels, result.run, (k,), ("ndcg",))}
        stats.append((result, found))
    best_result, best = max(stats, key=lambda item: item[1][f"judged@{k}"])
    out = []
    for result, found in stats:
        judged = found[f"judged@{k}"]
        if judged >= MIN_JUDGED - 1e-9 and best[f"judged@{k}"] - judged <= MAX_JUDGED_GAP + 1e-9:  # means of k-ths
            continue
        unjudged = len(unjudged_pairs(evalset.qrels, result.run, k))
        if not unjudged:
            continue  # rankings shorter than k, every document judged: nDCG@k is exact, nothing to label
        out.append({"kind": "low_judged", "model": result.model, "spec": (result.info or {}).get("spec", result.model),
                    "k": k, "judged": judged, "best_judged": best[f"judged@{k}"], "best_model": best_result.model,
                    "unjudged": unjudged, "ndcg": found[f"ndcg@{k}"],
                    "ndcg_condensed": found[f"ndcg_condensed@{k}"], "queries": len(evalset.qrels),
                    "significant": False})
    return out


def training_overlap(evalset: runner.EvalSet, results: Sequence[runner.RunResult]) -> list[dict]:
    """A warning per studio-trained model that learned from some of the evaluation's queries (the query fingerprints
    its ``studio_model.json`` recorded, or its training and validation files — the training file's
    ``.valid.jsonl`` twin too; the warning names the files): its scores there flatter it.

    An evaluation leaves those queries out by default (:mod:`studio.evaluation.heldout`); this warns when they were
    scored anyway (``include_trained``), or when a model's record could not be read before.
    """
    texts = {fingerprint(evalset.queries.get(q, "")) for q in evalset.qrels}
    out = []
    named = [m for r in results for m in (r.info.get("models") if r.info else [r.model])]
    for model in dict.fromkeys(named):
        overlap = len(texts & learned(model).all)
        if overlap:
            files = list(dict.fromkeys(str(p) for f in trained_on(model) for p in runner.held_out_files(f)))
            files = files or ["studio_model.json"]  # the files are gone; the record of what it learned stays
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
        if w["kind"] == "low_judged":
            lines.append(coverage_line(w, lang))
            continue
        if w["kind"] == "run_file_gaps":
            lines.append(t("evaluate.warn_run_file_gaps", lang, model=w["model"], file=w["file"],
                           documents=w["unknown_documents"], missing=w["missing_queries"], queries=w["queries"]))
            continue
        verdict = t("evaluate.verdict_significant" if w["significant"] else "evaluate.verdict_not_significant", lang)
        key = {"reranker_worse": "evaluate.warn_reranker_worse",
               "bm25_worse": "evaluate.warn_loses_to_bm25"}.get(w["kind"], "evaluate.warn_model_worse")
        if w["kind"] == "bm25_worse" and _uses_bm25(w["model"]):
            key += "_fused"  # no "consider NAME+bm25" for a system that already fuses BM25
        lines.append(t(key, lang, model=w["model"], baseline=w["baseline"], metric=w["metric"],
                       drop=f"{-w['delta']:.3f}", before=f"{w['a']:.3f}", after=f"{w['b']:.3f}",
                       p=f"{w['p_holm']:.4f}", verdict=verdict))
    return lines


def coverage_line(w: dict, lang: str) -> str:
    """A ``low_judged`` warning in `lang`: the judged share (and the best-covered system's, when it is more than
    :data:`MAX_JUDGED_GAP` ahead), the unjudged pairs to label, both readings of nDCG@10 and the command that
    queues the pairs (the spec quoted: it may hold ``>`` or ``+``)."""
    key = "evaluate.warn_low_judged" + ("_behind" if w["best_judged"] - w["judged"] > MAX_JUDGED_GAP + 1e-9 else "")
    key += "_one" if w["unjudged"] == 1 else ""
    return t(key, lang, model=w["model"], k=w["k"], judged=f"{100 * w['judged']:.0f}",
             best=f"{100 * w['best_judged']:.0f}", best_model=w["best_model"], unjudged=f"{w['unjudged']:,}",
             ndcg=f"{w['ndcg']:.3f}", condensed=f"{w['ndcg_condensed']:.3f}",
             command=f'studio pool --system "{w["spec"]}" --depth {w["k"]} --unjudged')


def coverage_summary(report: dict, lang: str) -> str | None:
    """The ``low_judged`` warnings of several systems as one sentence (⑧ shows the per-system figures in its table):
    "⚠ Only 20–23 % of the top-10 documents of 5 systems (…) have a gold label: 43 unjudged documents in all …";
    the warning's own sentence for one system; None without any."""
    found = [w for w in report.get("warnings", []) if w["kind"] == "low_judged"]
    if len(found) < 2:
        return coverage_line(found[0], lang) if found else None
    shares = sorted(round(100 * w["judged"]) for w in found)
    span = f"{shares[0]}" if shares[0] == shares[-1] else f"{shares[0]}–{shares[-1]}"
    holes = (report.get("holes") or {}).get("pairs")
    return t("evaluate.warn_low_judged_many", lang, judged=span, n=len(found), k=found[0]["k"],
             systems=", ".join(w["model"] for w in found),
             unjudged=f"{holes if holes is not None else sum(w['unjudged'] for w in found):,}")


def _uses_bm25(spec: str) -> bool:
    try:
        return any(stage.is_bm25 for stage in parse(spec).stages)
    except Exception:  # a model's name in an older report, not a spec
        return False


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


def recommendation_line(report: dict, lang: str) -> str | None:
    """Which system is best on these queries, whether its lead over the runner-up is significant, its latency and
    how its fusion was chosen; None for a report without systems."""
    rec = report.get("recommendation")
    if not rec:
        return None
    parts = [t("evaluate.best_system", lang, spec=rec["spec"], metric=rec["metric"], value=f"{rec['value']:.3f}",
               queries=rec["queries"])]
    if rec["runner_up"] is not None:
        key = "evaluate.best_lead_significant" if rec["significant"] else "evaluate.best_lead_not_significant"
        parts.append(t(key, lang, runner_up=rec["runner_up"], value=f"{rec['runner_up_value']:.3f}",
                       delta=f"{rec['delta']:.3f}", p=f"{rec['p_holm']:.4f}"))
    if rec.get("ms_per_query") is not None:
        parts.append(t("evaluate.best_latency", lang, ms=f"{rec['ms_per_query']:.1f}"))
    fusion = fusion_line(rec.get("fusion"), rec["spec"], lang)
    return " ".join(parts + ([fusion] if fusion else []))


def planner_line(report: dict, lang: str) -> str | None:
    """How many queries the evaluation would need (the recommendation's ``planner``): "You have 60 queries; about
    140 would be needed to tell a 0.02 difference (80 % power, α = 0.05), and about 410 to confirm the observed
    0.013 one."; or why that cannot be told; None without a planner (one system, or a report without systems)."""
    plan = (report.get("recommendation") or {}).get("planner")
    if not plan:
        return None
    unknown = {"too_few_queries": "evaluate.planner_too_few_queries", "no_spread": "evaluate.planner_no_spread"}
    if plan["reason"] in unknown:
        return t(unknown[plan["reason"]], lang, queries=plan["queries"])
    target = plan[f"needed_{power.TARGET_DELTA:g}"]
    needed = plan["needed_observed"]
    if plan["reason"] == "no_difference":
        observed = t("evaluate.planner_observed_tie", lang)
    elif needed is None:
        observed = t("evaluate.planner_observed_beyond", lang, delta=f"{abs(plan['observed_delta']):.3f}",
                     n=f"{power.MAX_QUERIES:,}")
    else:
        observed = t("evaluate.planner_observed", lang, delta=f"{abs(plan['observed_delta']):.3f}", n=f"{needed:,}")
    return t("evaluate.planner", lang, queries=plan["queries"],
             needed=f"{target:,}" if target is not None else f"> {power.MAX_QUERIES:,}",
             target=f"{plan['target_delta']:g}", power=f"{100 * plan['power']:g}", alpha=f"{plan['alpha']:g}",
             observed=observed)


def fusion_line(fusion: dict | None, spec: str, lang: str) -> str | None:
    """How a fused system combines its two first stages, e.g. "Fusion: weighted sum, 0.7 × medical-v1 + 0.3 ×
    bm25, tuned on 57 queries of scifact/train"."""
    if not fusion:
        return None

    a, b = (str(s) for s in parse(spec).stages)
    if fusion["method"] == "rrf":
        how = t("evaluate.fusion_rrf", lang)
    else:
        w = fusion["weight"]
        how = t("evaluate.fusion_weighted", lang, a=a, b=b, wa=f"{w:g}", wb=f"{1 - w:g}")
    if fusion["chosen_by"] == "tuned":
        why = t("evaluate.fusion_tuned", lang, queries=fusion["tune_queries"], set=fusion["tune_set"] or "")
    else:
        why = t(f"evaluate.fusion_{fusion['chosen_by']}", lang)
    return t("evaluate.fusion_line", lang, how=how, why=why)
