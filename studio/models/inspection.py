"""Model inspection: what a model folder holds, whether each library can load it, and where a studio-trained one
came from.

:func:`describe` inspects a folder's layout without building a model (it reads JSON files and the safetensors header
only), :func:`check` additionally loads it the way the studio will use it and runs one input through it, and
:func:`scan` describes every model the registry (:mod:`studio.models.registry`) lists. Problems are returned as
:class:`Problem` objects carrying a catalogue code and its parameters, so the UI and the CLI can word them in the
user's language. :func:`provenance` reads what a studio-trained model's ``studio_model.json`` records.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from safetensors import safe_open

from studio.models.registry import (EMBEDDED_NAME, ORIGIN_FILE, embedded_folder, get_default, is_model_folder,
                                    models_root, resolve)

KINDS = ("embedder", "m3", "reranker", "unknown")
LOADERS = ("sentence-transformers", "BGEM3FlagModel", "FlagReranker")

_WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "sentencepiece.bpe.model", "tokenizer.model", "spiece.model",
                    "vocab.json")
# sentence-transformers reads the Transformer module's settings from the first of these that exists.
_ST_CONFIG_FILES = ("sentence_bert_config.json", "sentence_roberta_config.json", "sentence_distilbert_config.json",
                    "sentence_camembert_config.json", "sentence_albert_config.json",
                    "sentence_xlm-roberta_config.json", "sentence_xlnet_config.json")
# Names of the token-embedding matrix in the checkpoints of common encoder (and decoder) architectures.
_EMBEDDING_SUFFIXES = ("word_embeddings.weight", "embed_tokens.weight", "shared.weight", "wte.weight")
_TEST_SENTENCE = "test sentence"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a model folder.

    ``code`` names the problem; the UI words it with the catalogue key ``models.problem_<code>``:

    ============================  =======  =====================================================================
    code                          params   meaning
    ============================  =======  =====================================================================
    not_a_folder                  path     the path does not exist or is not a folder
    missing_config                         no ``config.json`` (in the Transformer module's folder)
    missing_weights               (file)   no ``model.safetensors`` / ``pytorch_model.bin`` (or a shard of a
                                           sharded checkpoint is missing: ``file`` names it)
    missing_tokenizer                      no tokenizer files
    missing_modules_json                   warning: an embedder without ``modules.json``
    missing_sentence_bert_config           warning: ``modules.json`` but no ``sentence_bert_config.json``
    missing_pooling               path     ``modules.json`` names a Pooling module whose folder/config is missing
    bad_json                      file     a JSON file cannot be read (or has the wrong shape)
    weights_mismatch              detail   the weights do not fit the architecture in ``config.json``
    missing_colbert_linear                 ``sparse_linear.pt`` without ``colbert_linear.pt``
    missing_sparse_linear                  ``colbert_linear.pt`` without ``sparse_linear.pt``
    load_failed                   detail   loading or running the model raised (first line of the error)
    ============================  =======  =====================================================================

    ``severity`` is ``"error"`` (the model cannot be used) or ``"warning"`` (it loads, but not in every
    library, or not the way it was trained).
    """

    code: str
    params: dict = field(default_factory=dict)
    severity: str = "error"


@dataclass
class ModelInfo:
    """What :func:`describe` / :func:`check` found out about one model folder."""

    name: str                 # folder name (EMBEDDED_NAME for the embedded model)
    path: str
    kind: str                 # "embedder" | "m3" | "reranker" | "unknown"
    size_mb: float
    origin: dict              # studio_model.json written by the trainer, else {}
    problems: list[Problem]
    loads_with: list[str]     # subset of LOADERS, from the layout; empty when there is an error
    is_default: bool = False
    ok: bool = True           # no error-severity problem

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


# --------------------------------------------------------------------------------------------------- helpers
def _read_json(path: Path, problems: list[Problem], expect: type, *, severity: str = "error"):
    """The parsed JSON in `path`, or None (and a ``bad_json`` problem) when it is unreadable or not `expect`."""
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        value = None
    if not isinstance(value, expect):
        problems.append(Problem("bad_json", {"file": path.name}, severity))
        return None
    return value


def _size_mb(path: Path) -> float:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size  # follows links (hub cache snapshots)
            except OSError:
                pass
    return round(total / (1024 * 1024), 1)


def _module_kind(entry: dict) -> str:
    """``Transformer`` / ``Pooling`` / ... from a modules.json ``type`` (old or new import path)."""
    return str(entry.get("type", "")).rsplit(".", 1)[-1]


def _weights(folder: Path, problems: list[Problem]) -> dict[str, Path] | None:
    """Map tensor name → file for safetensors checkpoints ({} for a .bin one); None when there are no weights."""
    single = folder / "model.safetensors"
    if single.is_file():
        return {"": single}
    for index_name in _WEIGHT_INDEXES:
        index_path = folder / index_name
        if not index_path.is_file():
            continue
        index = _read_json(index_path, problems, dict)
        if index is None:
            return {}
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            problems.append(Problem("bad_json", {"file": index_name}))
            return {}
        for shard in sorted(set(weight_map.values())):
            if not (folder / shard).is_file():
                problems.append(Problem("missing_weights", {"file": shard}))
                return {}
        if index_name.startswith("model.safetensors"):
            return {key: folder / shard for key, shard in weight_map.items()}
        return {}
    if (folder / "pytorch_model.bin").is_file():
        return {}  # pickled: the header cannot be read without unpickling, so the shape check is skipped
    return None


def _embedding_shape(weights: dict[str, Path]) -> tuple[int, ...] | None:
    """Shape of the token-embedding matrix, read from the safetensors header only (no tensor is loaded)."""
    if "" in weights:  # one file: look through its keys
        with safe_open(str(weights[""]), framework="pt") as f:
            keys = list(f.keys())
            if not keys:
                return ()
            key = _embedding_key(keys)
            return tuple(f.get_slice(key).get_shape()) if key else None
    key = _embedding_key(list(weights))  # sharded: the index says which shard holds it
    if key is None:
        return None
    with safe_open(str(weights[key]), framework="pt") as f:
        return tuple(f.get_slice(key).get_shape())


def _embedding_key(keys: list[str]) -> str | None:
    for suffix in _EMBEDDING_SUFFIXES:
        for key in keys:
            if key.endswith(suffix):
                return key
    return None


def _check_shapes(model_config: dict, weights: dict[str, Path], problems: list[Problem]) -> None:
    if not weights:
        return
    try:
        found = _embedding_shape(weights)
    except Exception as exc:  # noqa: BLE001 — a corrupt or truncated header
        file = next(iter(weights.values())).name
        problems.append(Problem("load_failed", {"detail": f"{file}: {_first_line(exc)}"}))
        return
    if found is None:
        return
    shape = found
    if not shape:  # transformers would load it, initialising every weight at random
        file = next(iter(weights.values())).name
        problems.append(Problem("weights_mismatch", {"detail": f"{file} holds no tensors"}))
        return
    vocab = model_config.get("vocab_size")
    width = next((model_config[k] for k in ("embedding_size", "hidden_size", "d_model", "n_embd")
                  if isinstance(model_config.get(k), int)), None)
    if len(shape) != 2 or not isinstance(vocab, int) or width is None:
        return
    if tuple(shape) != (vocab, width):
        problems.append(Problem("weights_mismatch", {
            "detail": f"embeddings are {shape[0]}×{shape[1]} but config.json says {vocab}×{width}"}))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0].strip() if text else ""
    return line or type(exc).__name__


# ------------------------------------------------------------------------------------------------ inspection
def describe(path: str | os.PathLike, *, name: str | None = None,
             models_dir: str | os.PathLike | None = None) -> ModelInfo:
    """Inspect a model folder's layout without loading its weights.

    Args:
        path: a folder, or a name :func:`resolve` understands (``default``, a folder under `models_dir`).
        name: the name to report; defaults to the folder name (:data:`EMBEDDED_NAME` for the embedded model).
        models_dir: where named models live; :data:`studio.config.MODELS_DIR` when None.

    What is checked:

    * kind: ``config.json`` ``architectures`` naming a ``...ForSequenceClassification`` → ``reranker``;
      ``colbert_linear.pt`` and/or ``sparse_linear.pt`` → ``m3``; otherwise ``embedder`` (``unknown`` when
      there is neither a ``config.json`` nor a ``modules.json``);
    * ``config.json``, weights (``model.safetensors``, ``pytorch_model.bin`` or a sharded checkpoint with
      its index) and tokenizer files are present — all errors; with a ``modules.json`` they are looked for
      in the Transformer module's folder (usually the root);
    * an embedder without ``modules.json`` is a **warning** (``missing_modules_json``): sentence-transformers
      still loads it, but builds a default *mean* pooling on top of the transformer, which silently changes
      the embeddings of a model trained with CLS pooling (as FlagEmbedding does), so retrieval results
      differ from what the trainer measured. ``loads_with`` then leaves ``sentence-transformers`` out;
    * ``modules.json`` without ``sentence_bert_config.json`` is a warning (max length and lower-casing
      fall back to defaults); a Pooling module whose folder or ``config.json`` is missing is an error;
    * an m3 model needs both ``colbert_linear.pt`` and ``sparse_linear.pt``: with one only, BGEM3FlagModel
      silently re-initialises both heads at random;
    * the token-embedding matrix in the safetensors header must be ``vocab_size × hidden_size`` of
      ``config.json`` (``weights_mismatch``), which catches weights copied next to another model's config;
    * unreadable JSON is ``bad_json`` (an error, but only a warning for ``studio_model.json``).
    """
    folder = Path(resolve(str(path), models_dir)) if not isinstance(path, Path) else path
    if name is None:
        # The path as given, links not followed: models/mini linked to the embedded model is still "mini".
        name = EMBEDDED_NAME if os.path.abspath(folder) == os.path.abspath(embedded_folder()) else folder.name
    problems: list[Problem] = []
    if not folder.is_dir():
        return ModelInfo(name=name, path=str(folder), kind="unknown", size_mb=0.0, origin={},
                         problems=[Problem("not_a_folder", {"path": str(folder)})], loads_with=[], ok=False)

    # studio_model.json: informational only
    origin: dict = {}
    if (folder / ORIGIN_FILE).is_file():
        origin = _read_json(folder / ORIGIN_FILE, problems, dict, severity="warning") or {}

    # modules.json: where the Transformer module lives, which modules need a folder
    modules = None
    transformer_dir = folder
    if (folder / "modules.json").is_file():
        modules = _read_json(folder / "modules.json", problems, list)
        if modules is not None and not all(isinstance(m, dict) for m in modules):
            problems.append(Problem("bad_json", {"file": "modules.json"}))
            modules = None
        for entry in modules or []:
            if _module_kind(entry) == "Transformer":
                transformer_dir = folder / str(entry.get("path") or "")
                break

    # config.json and kind
    model_config: dict | None = None
    has_config = (transformer_dir / "config.json").is_file()
    if has_config:
        model_config = _read_json(transformer_dir / "config.json", problems, dict)
    has_colbert = (folder / "colbert_linear.pt").is_file()
    has_sparse = (folder / "sparse_linear.pt").is_file()
    architectures = (model_config or {}).get("architectures") or []
    if any("ForSequenceClassification" in str(a) for a in architectures):
        kind = "reranker"
    elif has_colbert or has_sparse:
        kind = "m3"
    elif has_config or modules is not None or (folder / "modules.json").is_file():
        kind = "embedder"
    else:
        kind = "unknown"

    if not has_config:
        problems.append(Problem("missing_config"))

    weights = _weights(transformer_dir, problems)
    if weights is None:
        problems.append(Problem("missing_weights"))
    if not any((transformer_dir / f).is_file() for f in _TOKENIZER_FILES):
        problems.append(Problem("missing_tokenizer"))

    if kind == "m3":
        if not has_colbert:
            problems.append(Problem("missing_colbert_linear"))
        if not has_sparse:
            problems.append(Problem("missing_sparse_linear"))

    if kind in ("embedder", "m3"):
        if not (folder / "modules.json").is_file():
            if kind == "embedder":
                problems.append(Problem("missing_modules_json", {}, "warning"))
        elif modules is not None:
            if not any((transformer_dir / f).is_file() for f in _ST_CONFIG_FILES):
                problems.append(Problem("missing_sentence_bert_config", {}, "warning"))
            for entry in modules:
                if _module_kind(entry) == "Pooling":
                    sub = str(entry.get("path") or "")
                    if not sub or not (folder / sub / "config.json").is_file():
                        problems.append(Problem("missing_pooling", {"path": sub}))
                    else:
                        _read_json(folder / sub / "config.json", problems, dict)

    if model_config is not None and weights:
        _check_shapes(model_config, weights, problems)

    ok = not any(p.severity == "error" for p in problems)
    loads_with: list[str] = []
    if ok:
        if kind == "reranker":
            loads_with.append("FlagReranker")
        if kind in ("embedder", "m3") and modules is not None:
            loads_with.append("sentence-transformers")
        if kind == "m3":
            loads_with.append("BGEM3FlagModel")
        loads_with.sort(key=LOADERS.index)
    return ModelInfo(name=name, path=str(folder), kind=kind, size_mb=_size_mb(folder), origin=origin,
                     problems=problems, loads_with=loads_with, ok=ok)


# Trainer bookkeeping among the final eval_* values: not a held-out score.
_NOT_SCORES = ("eval_loss", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "eval_steps")


def provenance(origin: dict) -> dict:
    """Where a studio-trained model came from, read from its ``studio_model.json`` (`origin`, as
    :attr:`ModelInfo.origin`): ``base``, ``method``, ``train`` and ``valid`` (the files as recorded), ``created``,
    ``train_queries`` / ``valid_queries`` (how many distinct queries each file held, from the recorded
    fingerprints; None when not recorded), ``final_loss`` / ``final_eval_loss`` and ``held_out``: the scores an
    evaluation recorded (``held_out`` in the file, or the trainer's final ``eval_*`` metrics other than losses and
    timings), {} when none was. Missing fields are None; {} for a model without a record."""
    if not origin:
        return {}
    queries = origin.get("queries") if isinstance(origin.get("queries"), dict) else {}
    final = origin.get("final") if isinstance(origin.get("final"), dict) else {}
    recorded = origin.get("held_out") if isinstance(origin.get("held_out"), dict) else {}
    scores = {k: v for k, v in {**{k: v for k, v in final.items() if str(k).startswith("eval_")}, **recorded}.items()
              if k not in _NOT_SCORES and isinstance(v, (int, float)) and not isinstance(v, bool)}

    def count(split: str) -> int | None:
        found = queries.get(split)
        return len(found) if isinstance(found, list) else None

    return {"base": origin.get("base"), "method": origin.get("method"), "train": origin.get("train"),
            "valid": origin.get("valid"), "created": origin.get("created"), "train_queries": count("train"),
            "valid_queries": count("valid"), "final_loss": origin.get("final_loss"),
            "final_eval_loss": origin.get("final_eval_loss"), "held_out": scores}


def check(path: str | os.PathLike, load: bool = True, *, name: str | None = None,
          models_dir: str | os.PathLike | None = None) -> ModelInfo:
    """:func:`describe`, then — when there is no error and `load` is true — load the model on the CPU and run it.

    * embedder: ``SentenceTransformer(path, device="cpu")`` encodes a test sentence (also an embedder without
      ``modules.json``: this checks that weights and tokenizer load, the pooling warning stays);
    * m3: ``BGEM3FlagModel(path, use_fp16=False, devices="cpu")`` encodes it with dense, sparse and
      ColBERT outputs;
    * reranker: ``FlagReranker(path, use_fp16=False, devices="cpu")`` scores a test query/passage pair.

    Any exception becomes ``Problem("load_failed", {"detail": <first line>})``, as do outputs that are
    not finite (NaN/inf, e.g. from a run that diverged).
    """
    info = describe(path, name=name, models_dir=models_dir)
    if not load or not info.ok:
        return info
    try:
        finite = _load_and_run(info.path, info.kind)
    except Exception as exc:  # noqa: BLE001 — every failure is reported, none is raised
        info.problems.append(Problem("load_failed", {"detail": _first_line(exc)}))
    else:
        if not finite:
            info.problems.append(Problem("load_failed", {"detail": "the model outputs NaN or infinite values"}))
    info.ok = not any(p.severity == "error" for p in info.problems)
    if not info.ok:
        info.loads_with = []
    return info


def _load_and_run(path: str, kind: str) -> bool:
    """Load the model as the studio will and run one input through it; True when the output is finite."""
    import numpy as np  # with the loaders below: numpy alone adds a quarter second to every `studio` command

    if kind == "reranker":
        from FlagEmbedding import FlagReranker

        model = FlagReranker(path, use_fp16=False, devices="cpu")
        scores = model.compute_score([["test query", "test passage"]])
        return bool(np.all(np.isfinite(np.asarray(scores, dtype=float))))
    if kind == "m3":
        from FlagEmbedding import BGEM3FlagModel

        model = BGEM3FlagModel(path, use_fp16=False, devices="cpu")
        out = model.encode([_TEST_SENTENCE], return_dense=True, return_sparse=True, return_colbert_vecs=True)
        weights = [float(w) for item in out["lexical_weights"] for w in item.values()]
        return bool(np.all(np.isfinite(out["dense_vecs"])) and all(math.isfinite(w) for w in weights)
                    and all(np.all(np.isfinite(v)) for v in out["colbert_vecs"]))
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device="cpu", local_files_only=True)
    vectors = model.encode([_TEST_SENTENCE], show_progress_bar=False)
    return bool(np.all(np.isfinite(vectors)))


# ---------------------------------------------------------------------------------------------- every model
def scan(models_dir: str | os.PathLike | None = None) -> list[ModelInfo]:
    """The embedded model (named :data:`EMBEDDED_NAME`) first, then every model folder in `models_dir` by name.

    A model folder is a non-hidden sub-folder with a ``config.json`` or a ``modules.json``; anything else
    (README.md, half-written or unrelated folders, a folder with a reserved name) is skipped. Layout only
    (:func:`describe`), nothing loads. ``is_default`` marks the ★ model (:func:`get_default`).
    """
    root = models_root(models_dir)
    current = get_default(root)
    infos = [describe(embedded_folder(), name=EMBEDDED_NAME)]
    if root.is_dir():
        for entry in sorted(root.iterdir(), key=lambda p: p.name):
            if is_model_folder(entry):
                infos.append(describe(entry, name=entry.name))
    for info in infos:
        info.is_default = info.name == current
    return infos
