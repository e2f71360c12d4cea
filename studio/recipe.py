"""Recipes: what was measured, written down so that it can be deployed without the studio.

A recipe is one JSON file, ``OUT/recipe.json``, that names everything a search needs to rank documents the way the
evaluation did (a system spec of :mod:`studio.retrieval.systems`, made concrete):

- ``first_stage``: BM25 and/or dense models, each model by its absolute folder (a hub id as given);
- ``fusion``: how two first stages combine (:mod:`studio.retrieval.fusion`: reciprocal rank with k = 60, or a
  weighted sum of min-max-normalised scores; ``weights`` multiply each stage's normalised score, ``[1, 1]`` for
  RRF), with how the weight was chosen;
- ``bm25``: bm25s's parameters and the studio's tokenizer (:mod:`studio.retrieval.tokenize`) as regular
  expressions and a stopword list — enough to rebuild :func:`~studio.retrieval.tokenize.tokenize` exactly;
- ``reranker``: a cross-encoder folder, how many candidates it rescores and its pair length;
- ``threshold``: the score above which a result counts as relevant, calibrated on the project's gold labels
  (:mod:`studio.evaluation.calibration`), or null with ``threshold_note`` saying why (``threshold_reason``: the
  same as a catalogue key and its parameters);
- ``measured``: the metrics the evaluation measured for this system, when known;
- ``document_text``: how a document's text is formed from its fields (the studio's: title and text stripped, the
  title on the first line; :data:`studio.recipe_runtime.DOCUMENT_TEXT`);
- ``int8``: what dynamic int8 quantisation costs it (speed-up, nDCG@10 change, whether it is advertised), when
  ``--int8-check`` measured it (:mod:`studio.serving.int8`).

Beside recipe.json goes ``recipe_runtime.py`` (a copy of :mod:`studio.recipe_runtime`, no studio import):
``load_recipe(folder).search(query, documents)`` ranks as the studio does. README.md ("Deploying what you measured:
recipes") shows it; tests/test_recipe.py runs that snippet and checks it ranks as the studio's own search.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from studio import recipe_runtime
from studio.i18n import t
from studio.models.registry import resolve
from studio.retrieval import tokenize as tok
from studio.retrieval.flag import DEFAULT_RERANK_LENGTH, trained_length
from studio.retrieval.fusion import RRF_K
from studio.retrieval.systems import FIRST_STAGE_DEPTH, RERANK_TOP, System, parse

FORMAT = "relevance-studio-recipe"
VERSION = 1
FILE_NAME = "recipe.json"
RUNTIME_FILE = "recipe_runtime.py"  # the runtime copied beside it
DEFAULT_DEPTH = FIRST_STAGE_DEPTH  # candidates per first stage, as ⑧'s evaluation retrieves
# Where a threshold applies: the final ranking's own scores (a single dense stage's cosine, or the reranker's raw
# score), or — for a fused first stage without a reranker — the dense component's cosine (fused scores are
# normalised per query, so no fixed number separates relevant from irrelevant on them).
APPLIES_TO = ("final", "dense_stage")


@dataclass(frozen=True)
class Recipe:
    """A recipe as written to ``recipe.json`` (:meth:`as_dict`); read one back with :meth:`load`."""

    spec: str
    first_stage: list[dict]
    fusion: dict | None
    bm25: dict | None
    reranker: dict | None
    depth: int = DEFAULT_DEPTH
    threshold: dict | None = None
    threshold_note: str | None = None
    threshold_reason: dict | None = None  # the note as a catalogue key and its params, to word it in any language
    measured: dict | None = None
    document_text: dict | None = None  # how a document's text is formed (None in older recipes: the studio's)
    int8: dict | None = None  # what int8 costs, when measured
    format: str = FORMAT
    version: int = VERSION

    def as_dict(self) -> dict:
        """JSON-ready, format and version first."""
        data = asdict(self)
        head = {"format": data.pop("format"), "version": data.pop("version")}
        return {**head, **data}

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        """The recipe in `path` (a recipe.json, or the folder holding one).

        Raises:
            ValueError: the file is not a recipe of a version this studio reads.
        """
        path = Path(path)
        path = path / FILE_NAME if path.is_dir() else path
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ValueError(f"{path} is not a {FORMAT} version {VERSION} file")
        return cls(**data)


@dataclass(frozen=True)
class Target:
    """What a recipe's threshold is calibrated on: `model` (as named) scored as `kind` (``dense`` cosine or
    ``reranker``), applying to `applies_to` (:data:`APPLIES_TO`); `model` None when nothing can be calibrated, and
    `note` says why (or, for a fused first stage, what the threshold means)."""

    model: str | None
    kind: str | None = None
    applies_to: str | None = None
    note: str | None = None  # a catalogue key
    params: dict = field(default_factory=dict)


def calibration_target(system: System | str) -> Target:
    """The scorer whose threshold a deployment of `system` can use: the reranker when there is one; else a single
    dense stage; else, for a fused first stage, its (first) dense component, whose cosine is comparable across
    queries while the fused score is not. BM25 scores and BGE-M3's other modes have no calibrated threshold."""
    system = parse(system) if isinstance(system, str) else system
    if system.reranker:
        return Target(system.reranker, "reranker", "final")
    dense = [s for s in system.stages if not s.is_bm25 and s.mode == "dense"]
    if len(system.stages) == 1:
        stage = system.stages[0]
        if stage.is_bm25:
            return Target(None, note="recipe.threshold_bm25")
        if not dense:
            return Target(None, note="recipe.threshold_mode", params={"mode": stage.mode})
        return Target(stage.model, "dense", "final")
    if not dense:
        return Target(None, note="recipe.threshold_no_dense")
    return Target(dense[0].model, "dense", "dense_stage", "recipe.threshold_fused", {"model": dense[0].model})


def model_path(name: str) -> str:
    """A model as a recipe names it: its absolute folder (a name in models/, ``default``, a folder), or a hub id as
    given (:func:`studio.models.registry.resolve`)."""
    path = resolve(name)
    return os.path.abspath(path) if Path(path).exists() else path


def bm25_settings() -> dict:
    """bm25s's settings as :class:`studio.retrieval.bm25.BM25Index` uses them (the library's defaults) and the
    tokenizer as data: lower-case the text, find `pattern`'s matches; a match of `cjk` characters becomes its
    overlapping `cjk_ngram`-grams (a single character stays whole); any other match is kept unless it is a stopword
    or shorter than `min_length` (digits are kept at any length). An empty document or query is the one token
    ``"\\x00"`` (bm25s would drop an empty document and shift the positions)."""
    import bm25s

    defaults = bm25s.BM25()
    return {"library": "bm25s", "version": getattr(bm25s, "__version__", None), "k1": defaults.k1, "b": defaults.b,
            "method": defaults.method, "delta": defaults.delta, "idf_method": defaults.idf_method,
            "empty_token": "\x00",
            "tokenizer": {"lowercase": True, "pattern": tok._TOKEN.pattern, "cjk": tok._IS_CJK.pattern,
                          "cjk_ngram": 2, "stopwords": sorted(tok._STOPWORDS), "min_length": 2,
                          "keep_digits": True}}


def reranker_settings(name: str, top_n: int) -> dict:
    """A reranker's folder, how many first-stage candidates it rescores and the pair length it cuts to (what the
    studio's FlagReranker uses: a studio-trained reranker's training length, else 512); its score is the raw logit,
    as calibrated."""
    path = model_path(name)
    return {"model": path, "name": name, "top_n": int(top_n),
            "max_length": trained_length(path) or DEFAULT_RERANK_LENGTH, "score": "logit"}


def fusion_settings(system: System, fusion: Any, depth: int) -> dict | None:
    """The recipe's fusion entry: the spec's pinned fusion, else `fusion` (a
    :class:`~studio.evaluation.systems.Fusion` or its ``as_dict()``), else reciprocal rank, untuned; None for a single
    first stage."""
    if len(system.stages) < 2:
        return None
    if system.fusion:
        chosen = {"method": system.fusion, "weight": system.weight, "chosen_by": "pinned"}
    elif fusion is None:
        chosen = {"method": "rrf", "weight": None, "chosen_by": "untuned"}
    else:
        chosen = dict(fusion.as_dict() if hasattr(fusion, "as_dict") else fusion)
    method = chosen.get("method")
    if method not in ("rrf", "weighted") or (method == "weighted" and chosen.get("weight") is None):
        raise ValueError(f"not a fusion: {chosen!r}")
    weighted = method == "weighted"
    weight = float(chosen["weight"]) if weighted else None
    # What each stage's normalised score is multiplied by before the two are added: RRF adds 1 / (k + rank) as is.
    weights = [weight, 1 - weight] if weighted else [1.0, 1.0]
    return {"method": method, "weight": weight, "weights": weights,
            "normalisation": "min-max" if weighted else "reciprocal-rank", "rrf_k": RRF_K, "depth": int(depth),
            "chosen_by": chosen.get("chosen_by"), "tune_queries": chosen.get("tune_queries", 0),
            "tune_set": chosen.get("tune_set"), "tune_score": chosen.get("tune_score")}


def measured_from(report: Mapping, spec: str) -> dict | None:
    """What an evaluation report measured for `spec` (its entry matched by canonical spec): the evaluation set, its
    query count, the metrics and the search latency; None when the report has no such entry."""
    want = parse(spec).spec
    for entry in report.get("models", ()):
        try:
            same = parse(entry["model"]).spec == want
        except Exception:  # noqa: BLE001  (an entry of a plain model evaluation, e.g. "a → reranker")
            same = False
        if same:
            held = report.get("held_out") or {}
            return {"evalset": report.get("evalset"), "queries": report.get("queries"),
                    # how many held-out queries measured it, and that none of them was trained or validated on
                    "held_out_queries": held.get("queries", report.get("queries")),
                    "left_out_trained": held.get("left_out", 0),
                    "trained_on_evaluated": held.get("trained_on_evaluated", 0),
                    "metrics": dict(entry.get("metrics", {})),
                    "ms_per_query": (entry.get("system") or {}).get("ms_per_query",
                                                                   entry.get("timings", {}).get("ms_per_query"))}
    return None


def report_entry(report: Mapping, spec: str) -> dict | None:
    """The ``system`` info (fusion, rerank_top) of `spec`'s entry in an evaluation report, or None."""
    want = parse(spec).spec
    for entry in report.get("models", ()):
        info = entry.get("system")
        if info and parse(info["spec"]).spec == want:
            return dict(info)
    return None


def build_recipe(spec: str | System, *, fusion: Any = None, calibration: Mapping | None = None,
                 rerank_top: int = RERANK_TOP, depth: int = DEFAULT_DEPTH,
                 threshold_note: str | tuple[str, Mapping] | None = None, measured: Mapping | None = None,
                 lang: str = "en") -> dict:
    """The recipe of `spec` (JSON-ready; see the module docstring).

    Args:
        fusion: how an unpinned fusion was chosen (a Fusion or its dict); None: reciprocal rank, untuned.
        calibration: :meth:`studio.evaluation.calibration.Calibration.as_dict` of :func:`calibration_target`'s
            model; None: no threshold, and `threshold_note` (a text, or a catalogue key and its params) or the
            target's own reason says why.
        rerank_top: how many first-stage candidates the reranker rescores; depth: candidates per first stage (at
            least `rerank_top` with a reranker).
        measured: what the evaluation measured (:func:`measured_from`).
        lang: the language of the notes.
    """
    system = parse(spec) if isinstance(spec, str) else spec
    depth = max(int(depth), int(rerank_top) if system.reranker else 0)
    stages = [{"kind": "bm25"} if s.is_bm25 else {"kind": "dense", "model": model_path(s.model), "name": s.model,
                                                   "mode": s.mode} for s in system.stages]
    target = calibration_target(system)
    threshold = reason = None
    if calibration is not None and target.model is not None:
        threshold = {**dict(calibration), "name": calibration.get("model"), "model": model_path(target.model),
                     "applies_to": target.applies_to,
                     "note": t(target.note, lang, **target.params) if target.note else None}
        threshold_note = None
    elif target.model is None:
        threshold_note = (target.note, target.params)
    if isinstance(threshold_note, tuple):
        reason = {"key": threshold_note[0], "params": dict(threshold_note[1])}
        threshold_note = t(reason["key"], lang, **reason["params"])
    recipe = Recipe(spec=system.spec, first_stage=stages, fusion=fusion_settings(system, fusion, depth),
                    bm25=bm25_settings() if any(s.is_bm25 for s in system.stages) else None,
                    reranker=reranker_settings(system.reranker, rerank_top) if system.reranker else None,
                    depth=depth, threshold=threshold, threshold_note=threshold_note, threshold_reason=reason,
                    measured=dict(measured) if measured else None,
                    document_text=dict(recipe_runtime.DOCUMENT_TEXT))
    return recipe.as_dict()


def write_recipe(recipe: Recipe | Mapping, out_dir: str | Path) -> Path:
    """Write `recipe` as ``out_dir/recipe.json`` and the runtime beside it as ``recipe_runtime.py`` (folders created,
    an older recipe there replaced); the recipe.json's path."""
    data = recipe.as_dict() if isinstance(recipe, Recipe) else dict(recipe)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    runtime = folder / RUNTIME_FILE
    shutil.copyfile(recipe_runtime.__file__, runtime.with_name(RUNTIME_FILE + ".tmp"))
    runtime.with_name(RUNTIME_FILE + ".tmp").replace(runtime)
    path = folder / FILE_NAME
    tmp = path.with_name(FILE_NAME + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
