"""Corpus embeddings cached on disk, keyed by the model's weights and the corpus texts.

Encoding a 10k-document corpus takes minutes on a CPU; searching it takes milliseconds. The cache key changes when
the model's weight files change (size and modification time) or any corpus text changes, so a fine-tuned model or
an edited corpus never reuses stale vectors. The encoder variant (:func:`studio.retrieval.cpu_encode.variant`: the
bf16 CPU path or sentence-transformers' encode) is part of the model's identity too, so vectors made one way are never
mixed with vectors made the other way.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from studio.retrieval import cpu_encode

CACHE_DIR = Path(os.environ.get("STUDIO_CACHE", ".cache")) / "embeddings"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


def model_fingerprint(model: str | Path) -> str:
    """Identity of a model as an encoder: its resolved folder plus the size and mtime of its weight files (or the hub
    id), plus the encoder variant when it is not sentence-transformers' own encode (so turning the fast path off with
    ``STUDIO_FAST_ENCODE=0`` gives back the fingerprint, and the cached vectors, of before)."""
    path = Path(model)
    h = hashlib.sha1()
    tag = cpu_encode.variant(model)
    if tag:
        h.update(f"encoder:{tag}\0".encode())
    if path.is_dir():
        h.update(str(path.resolve()).encode())
        for file in sorted(path.rglob("*")):
            if file.suffix in WEIGHT_SUFFIXES:
                stat = file.stat()
                h.update(f"{file.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    else:
        h.update(str(model).encode())
    return h.hexdigest()[:16]


def corpus_fingerprint(texts: Sequence[str]) -> str:
    h = hashlib.sha1()
    for text in texts:
        h.update(text.encode("utf-8"))
        h.update(b"\0")
    return f"{h.hexdigest()[:16]}-{len(texts)}"


def cache_path(model_name: str, texts: Sequence[str], cache_dir: Path | None = None) -> Path:
    """Where the vectors of `texts` encoded by the resolved model `model_name` are kept."""
    return Path(cache_dir or CACHE_DIR) / f"{model_fingerprint(model_name)}-{corpus_fingerprint(texts)}.npy"


def cached_vectors(texts: Sequence[str], model_name: str, compute: Callable[[], np.ndarray],
                   cache_dir: Path | None = None) -> np.ndarray:
    """The cached vectors of `texts` under `model_name`, or ``compute()``'s, written atomically for next time.

    The encoder is passed in (:func:`studio.retrieval.dense.cached_encode` passes its own), so this module knows
    files and keys only (of the studio it asks only :mod:`studio.retrieval.cpu_encode` which variant encodes).
    """
    path = cache_path(model_name, texts, cache_dir)
    if path.exists():
        return np.load(path)
    vectors = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, vectors)
    os.replace(tmp, path)
    return vectors
