"""Faster CPU encoding for sentence-transformers embedders the studio can describe (issue 30, item 4).

On a CPU with bfloat16 arithmetic (``avx512_bf16`` / ``amx_bf16``), :func:`studio.retrieval.dense.encode` runs a
copy of the model with its weights in bfloat16, over batches of texts sorted by token length and cut by a token
budget (:data:`TOKEN_BUDGET`) instead of a fixed count, under ``torch.inference_mode``. Tokenisation, pooling and
normalisation stay sentence-transformers' own modules (``preprocess`` and the module forward).

Measured on this machine kind (2 cores, all-MiniLM-L6-v2; /tmp experiments and ``bench/cpu_encode.py``, figures in
bench/RESULTS.md), against sentence-transformers' ``encode`` (fp32, batches of 64) = 1.0×:

* bfloat16 weights + token-budget batches: **2.56×** on 1,962 man-page passages (66.0 vs 25.8 passages/s, quiet
  cores; 1.64× on 400 shorter README passages), nDCG@10 on the 412 English man-page test queries 0.6676 vs 0.6698
  (−0.0022), every row's cosine to fp32 ≥ 0.9999, and a text encoded alone or inside any batch gives the same
  vector (cosine ≥ 0.99997) — kept;
* ``torch.autocast(bfloat16)`` around sentence-transformers' encode: 1.45×; with token-budget batches 1.05×;
* torch dynamic int8 on every Linear (per-channel weights, 8-bit activations on VNNI): 2.1–2.3×, cosine ≥ 0.98,
  but its activation scale is per *batch*: the same text in another batch moved (cosine 0.989), so one evaluation run
  twice differed by 0.002 nDCG@10 — an encoder whose vectors depend on their neighbours is not one to score models
  with; rejected (per-row int8 through ``torch._int_mm`` is batch-independent but ran at 0.71×);
* token-budget batches alone: about the same as sentence-transformers (it already sorts by length); kept because it
  bounds memory on long passages;
* threads: torch already uses one thread per core; nothing to gain on 2 cores.

The variant (:func:`variant`) is part of :func:`studio.retrieval.cache.model_fingerprint`: vectors cached or stored
by one encoder are never mixed with another's, and queries go through the same encoder as the corpus.
``STUDIO_FAST_ENCODE=0`` turns the fast path off (sentence-transformers' ``encode``, the fingerprint of before).
CPUs without bfloat16 arithmetic (where bf16 matrix products are slower than fp32), models with other modules
(Dense layers, max or weighted pooling, prompts), hub ids that are not local folders, and GPUs keep
sentence-transformers' ``encode``.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ENV = "STUDIO_FAST_ENCODE"
VARIANT = "cpu-bf16-v1"  # bump when the fast path's arithmetic changes: it retires every vector it made
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # bfloat16 matrix products in hardware (else bf16 is slower than fp32)
TOKEN_BUDGET = 4096  # padded tokens per batch: 16 passages at MiniLM's 256-token cap, 128 short ones
MAX_BATCH = 128

_SUPPORTED_MODULES = ("Transformer", "Pooling", "Normalize")
_SUPPORTED_POOLING = ("mean", "cls")
_fast: dict[str, "FastEncoder"] = {}
_lock = threading.Lock()


def enabled() -> bool:
    """Whether the fast path may be used (``STUDIO_FAST_ENCODE`` unset, or anything but 0/false/off/no)."""
    return os.environ.get(ENV, "1").strip().lower() not in {"0", "false", "off", "no"}


def variant(model: str | Path) -> str:
    """The encoder variant `model` (a resolved name) gets here: :data:`VARIANT` when the fast path applies, else
    ``""`` (sentence-transformers' ``encode``). Cheap after the first call: the folder check is cached, and torch's
    CUDA answer and the CPU's flags too."""
    if not enabled() or _cuda() or not bf16_hardware():
        return ""
    return VARIANT if describe_folder(str(model)) else ""


@functools.lru_cache(maxsize=1)
def bf16_hardware() -> bool:
    """Whether the CPU multiplies bfloat16 matrices in hardware (AVX-512 BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(f" {flag}" in flags for flag in BF16_FLAGS)


@functools.lru_cache(maxsize=1)
def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def describe_folder(model: str) -> bool:
    """True when the local model folder is Transformer → Pooling (mean or CLS) → optional Normalize and sets no
    prompt: pooling then reads only the real tokens, so length-bucketed batches change nothing but speed."""
    path = Path(model)
    try:
        stamp = (path / "modules.json").stat().st_mtime_ns
    except OSError:
        return False
    return _describe_folder(str(path), stamp)


@functools.lru_cache(maxsize=256)
def _describe_folder(model: str, stamp: int) -> bool:
    path = Path(model)
    try:
        modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
        kinds = [row["type"].rsplit(".", 1)[-1] for row in modules]
        if kinds not in (list(_SUPPORTED_MODULES[:2]), list(_SUPPORTED_MODULES)):
            return False
        pooling = json.loads((path / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
        st_config = path / "config_sentence_transformers.json"
        settings = json.loads(st_config.read_text(encoding="utf-8")) if st_config.exists() else {}
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
        return False
    if settings.get("default_prompt_name") or any(settings.get("prompts", {}).values()):
        return False
    return _pooling_mode(pooling) in _SUPPORTED_POOLING


def _pooling_mode(config: dict) -> str | None:
    """The one pooling mode a Pooling config names (old ``pooling_mode_*_token(s)`` flags or the new field)."""
    if isinstance(config.get("pooling_mode"), str):
        return config["pooling_mode"]
    flags = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean", "pooling_mode_max_tokens": "max",
             "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
             "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}
    on = [mode for key, mode in flags.items() if config.get(key)]
    return on[0] if len(on) == 1 else None


def describe(embedder) -> bool:
    """True when a loaded SentenceTransformer has the layout :func:`describe_folder` accepts (the check on the
    object, in case it was built in code or its files changed since)."""
    kinds = [type(module).__name__ for module in embedder]
    if kinds not in (list(_SUPPORTED_MODULES[:2]), list(_SUPPORTED_MODULES)):
        return False
    mode = getattr(embedder[1], "pooling_mode", None)
    modes = (mode,) if isinstance(mode, str) else tuple(mode or ())
    if len(modes) != 1 or modes[0] not in _SUPPORTED_POOLING:
        return False
    return not getattr(embedder, "default_prompt_name", None)


def batches(lengths: Sequence[int], budget: int = TOKEN_BUDGET, most: int = MAX_BATCH) -> list[list[int]]:
    """Indices of the texts in batches, longest first, each padding to at most `budget` tokens (a text longer than
    the budget goes alone)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    out, start = [], 0
    while start < len(order):
        size = max(1, min(most, budget // max(lengths[order[start]], 1)))
        out.append(order[start:start + size])
        start += size
    return out


class FastEncoder:
    """A bfloat16 copy of a describable SentenceTransformer, encoding length-bucketed batches on the CPU."""

    def __init__(self, embedder):
        import torch

        self.model = copy.deepcopy(embedder).to("cpu").to(torch.bfloat16).eval()
        self.dim = dimension(embedder)

    def lengths(self, texts: Sequence[str]) -> list[int]:
        tokenizer = self.model[0].tokenizer
        ids = tokenizer([t.strip() for t in texts], truncation=True, max_length=self.model.max_seq_length,
                        add_special_tokens=True)["input_ids"]
        return [len(row) for row in ids]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 rows in the order of `texts`."""
        import torch

        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        with torch.inference_mode():
            for batch in batches(self.lengths(texts)):
                features = self.model.preprocess([texts[i] for i in batch])
                vectors = self.model(features)["sentence_embedding"]
                out[batch] = torch.nn.functional.normalize(vectors.float(), p=2, dim=1).numpy()
        return out


def dimension(embedder) -> int:
    """The embedding size (sentence-transformers renamed the getter; the old name warns)."""
    getter = getattr(embedder, "get_embedding_dimension", None) or embedder.get_sentence_embedding_dimension
    return getter() or 0


def fast_encoder(name: str, embedder) -> FastEncoder | None:
    """The shared fast encoder of the loaded `embedder` named `name`, or None when it cannot be described (the
    caller falls back to sentence-transformers' encode)."""
    with _lock:
        if name not in _fast:
            if not describe(embedder):
                return None
            _fast[name] = FastEncoder(embedder)
        return _fast[name]
