"""Corpus embeddings cached on disk, keyed by the model's weights and the corpus texts.

Encoding a 10k-document corpus takes minutes on a CPU; searching it takes milliseconds. The cache key changes when
the model's weight files change (size and modification time) or any corpus text changes, so a fine-tuned model or
an edited corpus never reuses stale vectors.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

CACHE_DIR = Path(os.environ.get("STUDIO_CACHE", ".cache")) / "embeddings"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


def model_fingerprint(model: str | Path) -> str:
    """Identity of a model: its resolved folder plus the size and mtime of its weight files (or the hub id)."""
    path = Path(model)
    h = hashlib.sha1()
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


def cached_encode(texts: Sequence[str], model: str | Path | None = None, cache_dir: Path | None = None) -> np.ndarray:
    """Normalised embeddings of `texts`, from the cache when this model has encoded exactly this corpus before."""
    from studio.retrieval.dense import encode, resolve_model

    name = resolve_model(model)
    folder = Path(cache_dir or CACHE_DIR)
    path = folder / f"{model_fingerprint(name)}-{corpus_fingerprint(texts)}.npy"
    if path.exists():
        return np.load(path)
    vectors = encode(texts, name)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, vectors)
    os.replace(tmp, path)
    return vectors
