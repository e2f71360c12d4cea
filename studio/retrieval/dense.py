"""Dense retrieval with a sentence-transformers embedder; the ★ default model when none is named."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from studio.errors import StudioError
from studio.models.registry import DEFAULT_NAME, require_embedder
from studio.retrieval import cache, cpu_encode

Progress = Callable[[int, int], None]
PROGRESS_STEP = 512  # texts per progress report: ~20 s of CPU encoding with MiniLM, a fraction of a second on a GPU

_models: dict[str, object] = {}
_lock = threading.Lock()


def resolve_model(model: str | Path | None) -> str:
    """``None`` or ``"default"`` → the ★ default model's folder (the embedded all-MiniLM-L6-v2 when none is set);
    a name in models/ → its folder; a path or hub id as given (:func:`studio.models.registry.resolve`). A reranker
    is refused (``model_is_reranker``)."""
    return require_embedder(model or DEFAULT_NAME)


def load_embedder(model: str | Path | None = None):
    """A SentenceTransformer for `model`, loaded once per process and shared (loading takes seconds)."""
    name = resolve_model(model)
    with _lock:
        if name not in _models:
            try:
                from sentence_transformers import SentenceTransformer

                _models[name] = SentenceTransformer(name, device="cpu" if not _cuda() else None)
            except Exception as exc:  # the library raises many kinds; the user needs one message
                raise StudioError("model_missing", model=name, detail=str(exc).splitlines()[0][:200]) from exc
        return _models[name]


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def encode(texts: Sequence[str], model: str | Path | None = None, batch_size: int = 64, *,
           progress: Progress | None = None) -> np.ndarray:
    """L2-normalised float32 embeddings, one row per text.

    On a CPU with bfloat16 arithmetic, a model :mod:`studio.retrieval.cpu_encode` can describe goes through its
    bfloat16, length-bucketed encoder (2.6x sentence-transformers' ``encode`` on man-page passages, every vector
    within cosine 0.9999 of fp32; ``STUDIO_FAST_ENCODE=0`` turns it off); queries and documents take the same path, and
    :func:`studio.retrieval.cache.model_fingerprint` names it, so stored vectors never mix.
    progress: called with (texts encoded, texts in all) after every :data:`PROGRESS_STEP` texts (and at the end),
    so a long corpus shows how far it is; without it the texts go to the model in one call.
    """
    name = resolve_model(model)
    embedder = load_embedder(name)
    fast = cpu_encode.fast_encoder(name, embedder) if cpu_encode.variant(name) else None
    texts = list(texts)
    step = len(texts) if progress is None else PROGRESS_STEP
    parts = []
    for start in range(0, len(texts), max(step, 1)):
        chunk = texts[start:start + step]
        if fast is not None:
            part = fast.encode(chunk)
        else:
            part = embedder.encode(chunk, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                                   show_progress_bar=False)
        parts.append(np.asarray(part, dtype=np.float32))
        if progress is not None:
            progress(min(start + step, len(texts)), len(texts))
    if not parts:
        return np.zeros((0, cpu_encode.dimension(embedder)), dtype=np.float32)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def cached_encode(texts: Sequence[str], model: str | Path | None = None, cache_dir: Path | None = None) -> np.ndarray:
    """Normalised embeddings of `texts`, from the on-disk cache (:mod:`studio.retrieval.cache`) when this model has
    encoded exactly this corpus before."""
    name = resolve_model(model)
    return cache.cached_vectors(texts, name, lambda: encode(texts, name), cache_dir)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the `k` highest scores of each row of a 2-D array, best first (no full sort)."""
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


class DenseIndex:
    """Exact cosine search over pre-computed, normalised document embeddings."""

    def __init__(self, texts: Sequence[str], model: str | Path | None = None, cache: bool = True):
        self.model = model
        self.size = len(texts)
        if not texts:
            self.embeddings = np.zeros((0, 1), dtype=np.float32)
        else:
            self.embeddings = cached_encode(texts, model) if cache else encode(texts, model)

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[tuple[int, float]]]:
        k = min(k, self.size)
        if k == 0:
            return [[] for _ in queries]
        scores = encode(queries, self.model) @ self.embeddings.T
        return [[(int(i), float(row[i])) for i in order] for row, order in zip(scores, top_k(scores, k))]

    def search(self, query: str, k: int = 10) -> list[tuple[int, float]]:
        return self.search_many([query], k)[0]
