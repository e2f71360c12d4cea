"""What int8 costs a recipe (`studio recipe export --int8-check`): its speed-up and its nDCG@10 change.

The recipe runs twice over the same held-out labelled queries (an evaluation set, :class:`studio.evaluation.runner.
EvalSet`) on the CPU: in fp32, and with its models' Linear layers dynamically quantised to int8 (torch's
``quantize_dynamic``: weights stored as int8, activations quantised per batch). Each run embeds and indexes the
evaluation set's corpus and searches every query, as a deployment would; loading the models is left out of the
clock. The speed-up is fp32 seconds over int8 seconds (the faster of two runs each on a corpus of at most
:data:`REPEAT_UP_TO` documents, one run each above). int8 is advertised only when it is faster and nDCG@10 drops by
no more than :data:`MAX_DROP`; `studio recipe serve --int8` refuses a recipe whose drop was larger.
"""

from __future__ import annotations

import time
from pathlib import Path

from studio.errors import StudioError
from studio.evaluation.metrics import evaluate
from studio.recipe_runtime import Runtime

MAX_DROP = 0.01       # the nDCG@10 drop above which int8 is not advertised (and not served)
REPEAT_UP_TO = 2000   # documents up to which each variant is timed twice (the faster kept)
METHOD = "torch dynamic int8 (Linear layers)"


def has_models(recipe: dict) -> bool:
    """Whether `recipe` runs a model int8 could quantise (a dense stage or a reranker)."""
    return bool(recipe.get("reranker")) or any(s["kind"] == "dense" for s in recipe["first_stage"])


def int8_check(recipe: dict, evalset, folder: str | Path = ".") -> dict:
    """The int8 entry of `recipe` measured on `evalset`: ``{"speedup", "ndcg_delta", "queries", "advertised",
    ...}`` (see the module docstring).

    Raises:
        StudioError: ``int8_no_model`` when the recipe runs no model (BM25 alone).
    """
    import torch

    if not has_models(recipe):
        raise StudioError("int8_no_model", spec=recipe["spec"])
    documents = [{"id": key, "text": text} for key, text in evalset.corpus.items()]
    runtimes = {"fp32": Runtime(recipe, Path(folder), fingerprint="", device="cpu"),
                "int8": Runtime(recipe, Path(folder), fingerprint="", int8=True, device="cpu")}
    for runtime in runtimes.values():  # load (and quantise) before the clock
        if runtime.dense_model:
            runtime.embed(["warm up"])
        if runtime.reranker_model:
            runtime.rerank("warm up", ["warm up"])
    seconds: dict[str, float] = {}
    ndcg: dict[str, float] = {}
    for _ in range(2 if len(documents) <= REPEAT_UP_TO else 1):
        for name, runtime in runtimes.items():
            t0 = time.perf_counter()
            index = runtime.index(documents)
            run = {qid: {hit["id"]: hit["score"] for hit in index.search(query, 10)}
                   for qid, query in evalset.queries.items()}
            took = time.perf_counter() - t0
            seconds[name] = min(took, seconds.get(name, took))
            ndcg[name] = evaluate(evalset.qrels, run, ks=(10,), metrics=("ndcg",))["ndcg@10"]
    speedup = seconds["fp32"] / max(seconds["int8"], 1e-9)
    delta = ndcg["int8"] - ndcg["fp32"]
    return {"speedup": round(speedup, 3), "ndcg_delta": round(delta, 4), "queries": len(evalset.queries),
            "advertised": bool(delta >= -MAX_DROP and speedup > 1.0), "max_drop": MAX_DROP,
            "ndcg_fp32": round(ndcg["fp32"], 4), "ndcg_int8": round(ndcg["int8"], 4),
            "fp32_s": round(seconds["fp32"], 3), "int8_s": round(seconds["int8"], 3),
            "documents": len(documents), "evalset": evalset.name, "method": METHOD,
            "torch": torch.__version__, "threads": torch.get_num_threads()}
