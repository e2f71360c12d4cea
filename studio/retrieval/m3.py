"""BGE-M3 scoring modes: dense, sparse (lexical weights), ColBERT (multi-vector) and their weighted sum.

A BGE-M3 folder holds the transformer plus ``colbert_linear.pt`` and ``sparse_linear.pt``
(:func:`studio.models.inspection.describe` calls it kind ``m3``). FlagEmbedding's ``BGEM3FlagModel`` encodes
texts into all three representations at once; this module scores them the way the model's own
``compute_lexical_matching_score``, ``colbert_score`` and ``compute_score`` do, but for a whole query × corpus
matrix at a time instead of pair by pair:

* dense: ``q · d`` of the normalised CLS vectors (cosine);
* sparse: ``Σ_t w_q(t) · w_d(t)`` over the tokens both texts share (a sparse matrix product);
* colbert: ``(1 / |q|) Σ_i max_j q_i · d_j`` over the query's and the document's token vectors;
* weighted: ``(w_dense · dense + w_sparse · sparse + w_colbert · colbert) / Σ w``, by default the BGE-M3
  paper's ``[0.4, 0.2, 0.4]``, the formula of ``compute_score(...)["colbert+sparse+dense"]``.

ColBERT scores equal ``colbert_score`` on the encoded vectors. ``compute_score`` can differ: it scores padded
batches, where the zero vectors of padding tokens clip a document's negative best match to 0.

Search is **exact over the whole corpus** for every mode, not a rescoring of the dense top-N: the corpus is
encoded once, in chunks, each chunk is scored against every query and its token vectors are dropped, so memory
stays at one ``queries × documents`` score matrix plus one chunk of multi-vectors. That is the right trade for
evaluation sets of a few thousand documents; the encoding, not the scoring, is what takes time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.errors import StudioError
from studio.models.inspection import describe
from studio.retrieval.flag import load_m3_encoder

MODES: tuple[str, ...] = ("dense", "sparse", "colbert", "weighted")
DEFAULT_WEIGHTS: tuple[float, float, float] = (0.4, 0.2, 0.4)  # dense, sparse, colbert (BGE-M3 paper)
CHUNK_DOCUMENTS = 256
_CELLS = 1 << 22  # query-token × document-token scores held at once in colbert_scores

_models: dict[str, object] = {}
_lock = threading.Lock()


@dataclass
class M3Vectors:
    """What BGE-M3 makes of some texts; a representation that was not asked for is None."""

    dense: np.ndarray | None             # (n, dim), L2-normalised
    sparse: list[dict[str, float]] | None  # token id (as str) → weight
    colbert: list[np.ndarray] | None     # one (tokens, dim) array per text, rows L2-normalised


def is_m3(model: str | Path) -> bool:
    """True when `model` (a folder, as :func:`studio.models.registry.resolve` returns) is a usable BGE-M3."""
    path = Path(model)
    if not path.is_dir():
        return False
    info = describe(path)
    return info.kind == "m3" and info.ok


def check_mode(model: str | Path, mode: str, name: str | None = None) -> None:
    """Raise unless `mode` is one of :data:`MODES` and `model` can score with it.

    Raises:
        StudioError: ``bad_mode`` for an unknown mode; ``not_m3`` for a mode other than dense on a model
            that is not a BGE-M3 folder (`name` is how the message names it).
    """
    if mode not in MODES:
        raise StudioError("bad_mode", mode=mode, modes=", ".join(MODES))
    if mode != "dense" and not is_m3(model):
        raise StudioError("not_m3", model=name or str(model), mode=mode)


def load_m3(model: str | Path):
    """The BGE-M3 encoder for the folder `model` (:func:`studio.retrieval.flag.load_m3_encoder`), loaded once per
    process, fp32.

    Raises:
        StudioError: ``model_missing`` when it cannot be loaded.
    """
    key = str(model)
    with _lock:
        if key in _models:
            return _models[key]
    loaded = load_m3_encoder(key)
    with _lock:
        return _models.setdefault(key, loaded)


def needs(mode: str) -> tuple[bool, bool, bool]:
    """Which representations `mode` uses: (dense, sparse, colbert)."""
    if mode == "weighted":
        return True, True, True
    return mode == "dense", mode == "sparse", mode == "colbert"


def encode(texts: Sequence[str], model: str | Path, *, queries: bool, mode: str = "weighted",
           batch_size: int = 32) -> M3Vectors:
    """Encode `texts` as queries (``encode_queries``) or passages (``encode_corpus``) for `mode`."""
    dense, sparse, colbert = needs(mode)
    if not texts:
        return M3Vectors(np.zeros((0, 1), dtype=np.float32) if dense else None, [] if sparse else None,
                         [] if colbert else None)
    m3 = load_m3(model)
    fn = m3.encode_queries if queries else m3.encode_corpus
    out = fn(list(texts), batch_size=batch_size, return_dense=dense, return_sparse=sparse,
             return_colbert_vecs=colbert)
    return M3Vectors(
        dense=np.asarray(out["dense_vecs"], dtype=np.float32).reshape(len(texts), -1) if dense else None,
        sparse=[{str(t): float(w) for t, w in item.items()} for item in out["lexical_weights"]] if sparse else None,
        colbert=[np.asarray(v, dtype=np.float32) for v in out["colbert_vecs"]] if colbert else None)


def sparse_scores(queries: Sequence[dict[str, float]], documents: Sequence[dict[str, float]]) -> np.ndarray:
    """Lexical matching score of every query with every document: ``Σ_t w_q(t) · w_d(t)``, shape (nq, nd)."""
    from scipy.sparse import csr_matrix  # ~0.1 s to import: only for the sparse mode

    vocab: dict[str, int] = {}
    for weights in queries:
        for token in weights:
            vocab.setdefault(token, len(vocab))
    if not vocab or not documents:
        return np.zeros((len(queries), len(documents)))

    def matrix(rows: Sequence[dict[str, float]]) -> csr_matrix:
        data, cols, ptr = [], [], [0]
        for weights in rows:
            for token, w in weights.items():
                j = vocab.get(token)
                if j is not None:
                    cols.append(j)
                    data.append(w)
            ptr.append(len(cols))
        return csr_matrix((np.asarray(data, dtype=np.float64), np.asarray(cols, dtype=np.int64), ptr),
                          shape=(len(rows), len(vocab)))

    return np.asarray((matrix(queries) @ matrix(documents).T).todense())


def colbert_scores(queries: Sequence[np.ndarray], documents: Sequence[np.ndarray]) -> np.ndarray:
    """ColBERT late interaction, ``(1/|q|) Σ_i max_j q_i · d_j``, for every query and document: (nq, nd).

    Documents are stacked into one token matrix and the max over each document's tokens is a
    ``np.maximum.reduceat``; queries go in groups small enough to keep about 4M token scores at a time. A text
    without token vectors scores 0.
    """
    out = np.zeros((len(queries), len(documents)), dtype=np.float32)
    keep = [j for j, d in enumerate(documents) if len(d)]
    if not keep or not queries:
        return out
    tokens = np.concatenate([documents[j] for j in keep]).astype(np.float32)
    starts = np.cumsum([0] + [len(documents[j]) for j in keep[:-1]])
    group: list[int] = []

    def flush() -> None:
        if not group:
            return
        stacked = np.concatenate([queries[i] for i in group]).astype(np.float32)
        best = np.maximum.reduceat(stacked @ tokens.T, starts, axis=1)  # (query tokens, documents)
        q_starts = np.cumsum([0] + [len(queries[i]) for i in group[:-1]])
        sums = np.add.reduceat(best, q_starts, axis=0)
        for row, i in enumerate(group):
            out[i, keep] = sums[row] / len(queries[i])
        group.clear()

    rows = 0
    for i, q in enumerate(queries):
        if not len(q):
            continue
        if group and (rows + len(q)) * len(tokens) > _CELLS:
            flush()
            rows = 0
        group.append(i)
        rows += len(q)
    flush()
    return out


def combine(parts: dict[str, np.ndarray], mode: str,
            weights: Sequence[float] = DEFAULT_WEIGHTS) -> np.ndarray:
    """The score matrix of `mode` from the parts :func:`score_corpus` computed (weighted: normalised sum)."""
    if mode != "weighted":
        return parts[mode]
    w_dense, w_sparse, w_colbert = (float(w) for w in weights)
    total = w_dense + w_sparse + w_colbert
    if total <= 0:
        raise StudioError("bad_weights", weights=", ".join(str(w) for w in weights))
    return (w_dense * parts["dense"] + w_sparse * parts["sparse"] + w_colbert * parts["colbert"]) / total


def score_corpus(queries: Sequence[str], corpus: Sequence[str], model: str | Path, mode: str = "weighted",
                 weights: Sequence[float] = DEFAULT_WEIGHTS, chunk_size: int = CHUNK_DOCUMENTS,
                 progress: Callable[[float], None] | None = None) -> np.ndarray:
    """Exact `mode` score of every query against every corpus text, shape (len(queries), len(corpus)).

    The corpus is encoded `chunk_size` texts at a time and each chunk's vectors are dropped once scored.

    Raises:
        StudioError: ``bad_mode``, ``model_missing``, or ``bad_weights`` (weights summing to 0 or less).
    """
    if mode not in MODES:
        raise StudioError("bad_mode", mode=mode, modes=", ".join(MODES))
    use_dense, use_sparse, use_colbert = needs(mode)
    q = encode(queries, model, queries=True, mode=mode)
    parts = {name: np.zeros((len(queries), len(corpus)), dtype=np.float64)
             for name, used in (("dense", use_dense), ("sparse", use_sparse), ("colbert", use_colbert)) if used}
    for start in range(0, len(corpus), chunk_size):
        end = min(start + chunk_size, len(corpus))
        d = encode(corpus[start:end], model, queries=False, mode=mode)
        if use_dense:
            parts["dense"][:, start:end] = q.dense @ d.dense.T
        if use_sparse:
            parts["sparse"][:, start:end] = sparse_scores(q.sparse, d.sparse)
        if use_colbert:
            parts["colbert"][:, start:end] = colbert_scores(q.colbert, d.colbert)
        progress and progress(end / max(len(corpus), 1))
    return combine(parts, mode, weights)
