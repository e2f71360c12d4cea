"""Approximate nearest-neighbour search over a project's stored vectors, from :data:`studio.config.ANN_MIN_DOCUMENTS`
documents up (exact search over every vector below).

The index is faiss's IVF with 8-bit scalar-quantised residuals (``IndexIVFScalarQuantizer``, inner product on the
L2-normalised rows): √N lists trained by k-means on a sample, each row stored in 1 byte per dimension (a quarter of
the float32 matrix the exact search already holds), faiss ids = document ids. A query probes ``nprobe`` lists,
takes the :data:`CANDIDATES` best by the quantised score and rescores them exactly against the float32 rows, so the
scores shown are exact cosines and only a missed document differs from exact search. Chosen over HNSW by
``bench/ann.py`` (2 cores): HNSW builds several times slower, stores a graph on top of full vectors and cannot remove
a document, which the incremental update needs.

Recall@10 against exact search is measured whenever the index is built or updated: :data:`RECALL_QUERIES` probe
queries — up to 200 of the project's labelled queries encoded by the model when it has at least
:data:`MIN_PROJECT_QUERIES`, else probe queries (each the sum of 3 random stored rows: between documents, as a real
query is — :func:`probe_queries`) — are ranked exactly and approximately; ``nprobe`` is chosen on half of them and
the recall measured on the other half is kept with the index (:class:`Quality`) for ⑨ to show (:func:`measure`).

Incremental: one index per (database, model fingerprint), kept in memory and saved under
``$STUDIO_CACHE/ann/<the vector store's folder name>/`` (a generation folder, then ``current.json`` replaced: temp
file + rename). When the vectors move to a new corpus version, rows are compared by a 128-bit hash of their bytes:
deleted and changed documents are removed (``remove_ids``), new and changed ones added; the index is retrained only
when more than :data:`REBUILD_FRACTION` of it changed since training, or the corpus grew or shrank fourfold (its
lists no longer fit the size). A restart loads the saved index and applies only what changed since it was saved.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from studio import config
from studio.retrieval import cache
from studio.retrieval.dense import top_k
from studio.retrieval.folder_lock import folder_lock
from studio.retrieval.generations import new_generation
from studio.retrieval.vector_store import store_dir

KIND = "IVF"
FORMAT = 1  # bump when the saved layout changes: an older index is rebuilt
RECALL_GOAL = 0.99
RECALL_AT = 10
RECALL_QUERIES = 200
MIN_PROJECT_QUERIES = 50  # the project's own queries measure the recall from this many (else probe queries)
PROBE_MIX = 3  # stored rows summed into one probe query (:func:`probe_queries`)
NPROBES = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
CANDIDATES = 40  # found by the quantised scores, then rescored exactly (at least the k asked)
TRAIN_PER_LIST = 40  # k-means sample: rows per list (faiss asks for at least 39)
TRAIN_ITERATIONS = 10
REBUILD_FRACTION = 0.2
BLOCK = 16384  # rows per step when hashing or scoring the whole matrix (bounded temporaries)


@dataclass(frozen=True)
class Quality:
    """How the approximate index searches and how close to exact it is: its kind, lists and lists probed, the
    documents it holds, its recall@10 against exact search over `queries` probe queries."""

    kind: str
    lists: int
    probes: int
    documents: int
    recall_at_10: float
    queries: int
    project_queries: bool = False  # measured on the project's own queries (else on probe queries, see below)

    def describe(self) -> str:
        """One line for ⑨: ``approximate search (IVF, 32 of 1000 lists), recall@10 0.995 against exact on 200
        queries``."""
        on = "of the project's queries" if self.project_queries else "probe queries"
        return (f"approximate search ({self.kind}, {self.probes} of {self.lists} lists), "
                f"recall@10 {self.recall_at_10:.3f} against exact on {self.queries} {on}")


class AnnIndex:
    """A faiss IVF index over one corpus version's rows (document ids `ids`, id order, as the float32 matrix the
    exact search holds), the rows' hashes and its measured :class:`Quality`. Updated in place to a newer version by
    :func:`for_vectors`; :meth:`search` answers only for the ids array it currently covers."""

    def __init__(self, index, ids: np.ndarray, hashes: np.ndarray, quality: Quality, *, trained: int, changed: int,
                 queries: np.ndarray | None = None):
        self.index = index
        self.queries = queries  # the project's query vectors the recall is measured on (None: probe queries)
        self.ids = ids
        self.hashes = hashes
        self.quality = quality
        self.trained = trained  # rows when the lists were trained
        self.changed = changed  # rows removed or added since then
        self.lock = threading.RLock()

    def search(self, vectors: np.ndarray, matrix: np.ndarray, k: int,
               ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """(positions in id order, exact cosine scores), each (queries × ≤k), best first, of the top `k` rows of
        `matrix` for each of `vectors`; None when `ids` (the corpus the caller holds) is not the version indexed
        now (the caller then searches exactly)."""
        with self.lock:
            if ids is not None and ids is not self.ids:
                return None
            return _search(self.index, self.ids, vectors, matrix, k, self.quality.probes)


# (database, model fingerprint) → the index of its latest corpus version in this process.
_held: dict[tuple[str, str], AnnIndex] = {}
_key_locks: dict[tuple[str, str], threading.Lock] = {}
_lock = threading.Lock()


def for_vectors(db_path: str | Path, model_name: str, ids: np.ndarray, matrix: np.ndarray,
                queries: Callable[[], np.ndarray] | None = None) -> AnnIndex | None:
    """The approximate index over a project's vectors (`ids`, `matrix`: :func:`studio.retrieval.vector_store.
    project_vectors` for the resolved model `model_name`), or None below :data:`studio.config.ANN_MIN_DOCUMENTS`
    documents (exact search). Kept in memory, else loaded from disk, then brought to these rows incrementally (or
    built when there is none, or too much changed), and saved when it changed. `queries` gives the project's query
    vectors to measure recall on (called once per build; fewer than :data:`MIN_PROJECT_QUERIES`: probe queries)."""
    if len(ids) < config.ANN_MIN_DOCUMENTS or len(ids) == 0:
        return None
    folder = ann_dir(db_path, model_name)
    key = (str(Path(db_path).resolve()), folder.name)
    with _lock:
        held = _held.get(key)
        key_lock = _key_locks.setdefault(key, threading.Lock())
    if held is not None and held.ids is ids:
        return held
    with key_lock, folder_lock(folder):  # one build per store: other projects' lookups go on meanwhile
        held = _held.get(key)
        if held is not None and held.ids is ids:
            return held
        hashes = row_hashes(matrix)
        if held is None:
            held = load(folder)
        removed, added = _diff(held.ids, held.hashes, ids, hashes) if held is not None else ((), ())
        if held is None or _too_changed(held, len(ids), len(removed) + len(added)):
            held = build(ids, matrix, hashes, queries=queries() if queries is not None else None)
            save(folder, held)
        elif update(held, ids, matrix, hashes, removed, added):
            save(folder, held)
        with _lock:
            _held[key] = held
        return held


def ann_dir(db_path: str | Path, model_name: str) -> Path:
    """Where the approximate index of database `db_path` under the resolved model `model_name` is saved."""
    return Path(cache.CACHE_DIR).parent / "ann" / store_dir(db_path, model_name).name


def forget() -> None:
    """Drop the indexes kept in this process (tests; a process that must free the memory)."""
    with _lock:
        _held.clear()


# ------------------------------------------------------------------------------------------ build and update

def build(ids: np.ndarray, matrix: np.ndarray, hashes: np.ndarray | None = None, *, lists: int | None = None,
          queries: np.ndarray | None = None) -> AnnIndex:
    """A new index over every row: lists trained on a sample, rows added, recall measured (on `queries`, the
    project's query vectors, when there are :data:`MIN_PROJECT_QUERIES`; else on probe queries) and ``nprobe``
    chosen."""
    import faiss  # ~0.2 s and a native library: only for corpora above the threshold

    n, dim = matrix.shape
    lists = lists or max(16, round(math.sqrt(n)))
    rng = np.random.default_rng(n)
    sample = matrix[np.sort(rng.choice(n, size=min(n, lists * TRAIN_PER_LIST), replace=False))]
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFScalarQuantizer(quantizer, dim, lists, faiss.ScalarQuantizer.QT_8bit,
                                          faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = TRAIN_ITERATIONS
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    index.own_fields = True
    quantizer.this.disown()  # the IVF index owns (and frees) its quantizer
    for start in range(0, n, 65536):
        index.add_with_ids(np.ascontiguousarray(matrix[start:start + 65536], dtype=np.float32),
                           ids[start:start + 65536])
    hashes = row_hashes(matrix) if hashes is None else hashes
    if queries is not None and len(queries) < MIN_PROJECT_QUERIES:
        queries = None
    ann = AnnIndex(index, ids, hashes, Quality(KIND, lists, NPROBES[0], n, 0.0, 0), trained=n, changed=0,
                   queries=None if queries is None else np.asarray(queries[:RECALL_QUERIES], dtype=np.float32))
    ann.quality = measure(ann.index, ids, matrix, ann.queries)
    return ann


def _too_changed(ann: AnnIndex, count: int, changes: int) -> bool:
    """Whether going to `count` rows with `changes` rows removed or added means retraining: the lists were trained
    for a size 4× off, or more than :data:`REBUILD_FRACTION` of the rows changed since training."""
    if not ann.trained / 4 <= count <= ann.trained * 4:
        return True
    return ann.changed + changes > REBUILD_FRACTION * max(ann.trained, count)


def update(ann: AnnIndex, ids: np.ndarray, matrix: np.ndarray, hashes: np.ndarray, removed: np.ndarray,
           added: np.ndarray) -> bool:
    """Bring `ann` to these rows in place (:func:`_diff`: `removed` document ids, `added` positions): deleted and
    changed documents removed, new and changed ones added, the recall measured again (``nprobe`` chosen again).
    Returns whether the index changed."""
    with ann.lock:
        if len(removed):
            ann.index.remove_ids(np.ascontiguousarray(removed, dtype=np.int64))
        if len(added):
            ann.index.add_with_ids(np.ascontiguousarray(matrix[added], dtype=np.float32), ids[added])
        ann.changed += len(removed) + len(added)
        ann.ids, ann.hashes = ids, hashes
        if len(removed) or len(added):
            ann.quality = measure(ann.index, ids, matrix, ann.queries)
        return bool(len(removed) or len(added))


def _diff(old_ids: np.ndarray, old_hashes: np.ndarray, ids: np.ndarray,
          hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(document ids to remove: gone or changed, positions in `ids` to add: new or changed)."""
    if not len(old_ids):
        return np.zeros(0, dtype=np.int64), np.arange(len(ids))
    at = np.minimum(np.searchsorted(old_ids, ids), len(old_ids) - 1)
    kept = (old_ids[at] == ids) & np.all(old_hashes[at] == hashes, axis=1)
    gone = ~np.isin(old_ids, ids[kept], assume_unique=True)
    return old_ids[gone], np.flatnonzero(~kept)


def row_hashes(matrix: np.ndarray) -> np.ndarray:
    """Two 64-bit hashes of each row's bytes (rows × 2 uint64): equal rows hash equal, any changed bit changes them
    (odd random multipliers, wrapping arithmetic)."""
    words = matrix.shape[1] * matrix.dtype.itemsize // 4
    weights = np.random.default_rng(20261208).integers(1, 2**32, size=(2, words), dtype=np.uint64) | 1
    weights = weights.astype(np.uint32)
    out = np.empty((len(matrix), 2), dtype=np.uint64)
    for start in range(0, len(matrix), BLOCK):
        block = np.ascontiguousarray(matrix[start:start + BLOCK]).view(np.uint32).reshape(-1, words)
        for j in range(2):
            out[start:start + BLOCK, j] = (block * weights[j]).sum(axis=1, dtype=np.uint64)
    return out


# ------------------------------------------------------------------------------------------------- recall

def measure(index, ids: np.ndarray, matrix: np.ndarray, queries: np.ndarray | None = None) -> Quality:
    """Recall@10 of `index` against exact search over `matrix` (the project's query vectors `queries`; None:
    :data:`RECALL_QUERIES` probe queries, :func:`probe_queries`).

    The queries are split in two: ``nprobe`` is chosen on one half — the smallest of :data:`NPROBES` whose recall
    reaches :data:`RECALL_GOAL` with 95 % confidence, then one step more, because the first to pass on a sample
    overstates (at 200k the first to pass on 200 queries scored 1.000 there and 0.990 on 493 unseen ones) — and
    the recall kept and shown is the other half's, which played no part in the choice.
    """
    vectors = probe_queries(matrix, RECALL_QUERIES) if queries is None else queries
    tune, held = (vectors[0::2], vectors[1::2]) if len(vectors) >= 20 else (vectors, vectors)
    exact_tune, exact_held = exact_top(tune, matrix, RECALL_AT), exact_top(held, matrix, RECALL_AT)
    steps = sorted({min(p, index.nlist) for p in NPROBES})
    probes = steps[-1]
    for i, step in enumerate(steps):
        found, _ = _search(index, ids, tune, matrix, RECALL_AT, step)
        per_query = recall_per_query(found, exact_tune)
        spread = per_query.std(ddof=1) / math.sqrt(len(per_query)) if len(per_query) > 1 else 0.0
        if per_query.mean() - 1.645 * spread >= RECALL_GOAL:
            probes = steps[min(i + 1, len(steps) - 1)]
            break
    found, _ = _search(index, ids, held, matrix, RECALL_AT, probes)
    return Quality(KIND, index.nlist, probes, len(ids), round(recall_at(found, exact_held), 4), len(held),
                   queries is not None)


def probe_queries(matrix: np.ndarray, count: int, mixed: int = PROBE_MIX, seed: int = 0) -> np.ndarray:
    """`count` query vectors among the data: each the normalised sum of `mixed` random stored rows. A stored row
    (even moved by noise) is found in its own list and overstates recall; a real query falls between documents, and
    on the man-page vectors of bench/ann.py a sum of 3 rows understates its recall at every nprobe (real queries
    0.906 / 0.948 / 0.982 / 0.995 at 8 / 16 / 32 / 64 probes of 447 lists, these 0.864 / 0.939 / 0.965 / 0.986)."""
    rng = np.random.default_rng(seed)
    count = min(count, len(matrix))
    rows = sum(np.asarray(matrix[rng.choice(len(matrix), size=count)], dtype=np.float32) for _ in range(mixed))
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def exact_top(vectors: np.ndarray, matrix: np.ndarray, k: int) -> np.ndarray:
    """Positions of the exact top `k` rows of `matrix` for each query (queries × k), scored in row blocks."""
    best_scores = np.full((len(vectors), 0), -np.inf, dtype=np.float32)
    best = np.zeros((len(vectors), 0), dtype=np.int64)
    for start in range(0, len(matrix), BLOCK * 8):
        scores = vectors @ np.asarray(matrix[start:start + BLOCK * 8], dtype=np.float32).T
        top = top_k(scores, k)
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, axis=1)], axis=1)
        best = np.concatenate([best, top + start], axis=1)
        keep = top_k(best_scores, k)
        best_scores, best = np.take_along_axis(best_scores, keep, axis=1), np.take_along_axis(best, keep, axis=1)
    return best


def recall_at(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each query's exact top-k (rows of `exact`) that `found` has in its row."""
    return float(recall_per_query(found, exact).mean()) if len(exact) else 1.0


def recall_per_query(found: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """Each query's share of its exact top-k (row of `exact`) that `found` has in its row."""
    return np.asarray([len(set(f.tolist()) & set(e.tolist())) / max(len(e), 1) for f, e in zip(found, exact)])


def _search(index, ids: np.ndarray, vectors: np.ndarray, matrix: np.ndarray, k: int,
            probes: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidates by the index at `probes` lists, rescored exactly: (positions, scores), queries × ≤k."""
    index.nprobe = probes
    depth = max(k, CANDIDATES)
    _, labels = index.search(np.ascontiguousarray(vectors, dtype=np.float32), depth)
    positions = np.searchsorted(ids, labels)
    positions = np.where(labels >= 0, np.minimum(positions, len(ids) - 1), -1)
    k = min(k, len(ids))
    out_pos = np.full((len(vectors), k), -1, dtype=np.int64)
    out_scores = np.full((len(vectors), k), -np.inf, dtype=np.float32)
    for q, row in enumerate(positions):
        row = row[row >= 0]
        scores = np.asarray(matrix[row], dtype=np.float32) @ vectors[q]
        order = np.argsort(-scores, kind="stable")[:k]
        out_pos[q, :len(order)], out_scores[q, :len(order)] = row[order], scores[order]
    return out_pos, out_scores


# -------------------------------------------------------------------------------------------- on disk

def save(folder: Path, ann: AnnIndex) -> None:
    """Write `ann` as a new generation folder, then make it live by replacing ``current.json``; older generations
    are removed after that (a crash leaves the previous one live)."""
    import faiss

    with new_generation(folder) as (target, meta), ann.lock:
        faiss.write_index(ann.index, str(target / "index.faiss"))
        np.save(target / "ids.npy", ann.ids)
        np.save(target / "hashes.npy", ann.hashes)
        if ann.queries is not None:
            np.save(target / "queries.npy", ann.queries)
        meta.update({"format": FORMAT, "trained": ann.trained, "changed": ann.changed,
                     "quality": ann.quality.__dict__})


def load(folder: Path) -> AnnIndex | None:
    """The saved index in `folder`; None when there is none, or of an older format, or unreadable (rebuilt)."""
    import faiss

    try:
        meta = json.loads((folder / "current.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            return None
        live = folder / meta["generation"]
        index = faiss.read_index(str(live / "index.faiss"))
        ids, hashes = np.load(live / "ids.npy"), np.load(live / "hashes.npy")
        quality = Quality(**meta["quality"])
        queries = np.load(live / "queries.npy") if quality.project_queries else None
    except (OSError, ValueError, KeyError, TypeError, RuntimeError):
        return None
    if not (index.ntotal == len(ids) == len(hashes)):
        return None
    return AnnIndex(index, ids, hashes, replace(quality, documents=len(ids)), trained=meta["trained"],
                    changed=meta["changed"], queries=queries)


