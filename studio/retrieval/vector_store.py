"""Dense vectors stored per document: a project's corpus is encoded once per model, and after an edit only the new or
changed documents are encoded again.

A store is one folder per (database file, model fingerprint) under ``$STUDIO_CACHE/vectors/``. Its rows are keyed by
(document id, content hash from :func:`studio.store.corpus.document_ids_and_hashes` — title and text —, model
fingerprint from :func:`studio.retrieval.cache.model_fingerprint`, so retrained weights start a new store)::

    vectors/<db key>-<model fingerprint>/
        current.json          which generation is live, its corpus version, row count, dtype
        g<n>/vectors.npy      one row per document, id order (read memory-mapped)
        g<n>/ids.npy          int64 document ids
        g<n>/hashes.npy       content hashes (bytes)

A save writes a whole new generation folder, then replaces ``current.json`` (temp file + rename), then removes the
old generations: a crash at any point leaves the previous generation live and whole. Saves hold an ``flock`` on the
store's ``.lock``, so two processes never encode the same store at once (the second loads what the first saved).

Stored dtype — float16, chosen by ``bench/vector_store.py`` (★ default model, the English man-page set: 1,032
passages, 412 test queries): float16 rows moved cosine scores by at most 5.2e-5, nDCG@10 stayed 0.7084 (delta 0.0),
407 of 412 top-10 lists were identical and the other 5 swapped near-ties (mean top-10 overlap 0.9995) — for half the
disk and half the write on every save. numpy has no BLAS for float16 (one matrix-vector product at 100k × 384: 452
ms float16 vs 33 ms float32, 2 shared cores), so :func:`project_vectors` hands search a float32 matrix, upcast once
per corpus version and kept in this process; the next call of the same version costs one version read.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.records import document_text
from studio.retrieval import cache, dense, progress_eta
from studio.retrieval.folder_lock import folder_lock
from studio.retrieval.generations import new_generation
from studio.store import opened
from studio.store.corpus import (corpus_version, document_count, document_ids_and_hashes, documents_by_ids,
                                 iter_documents)

STORE_DTYPE = np.float16
FORMAT = 1  # bump when the layout changes: an older store is then rebuilt
CHUNK = 4096  # documents read and encoded per step (bounded memory on a million-document first build)
Progress = Callable[[int, int], None]


@dataclass
class _Stored:
    """A store as loaded: its corpus version and key, document ids, content hashes and vectors (memory-mapped)."""

    version: int
    count: int
    db_inode: int
    ids: np.ndarray
    hashes: np.ndarray
    vectors: np.ndarray


# (database, model fingerprint) → (corpus version, ids, float32 matrix): one version per pair, the old one evicted.
_memory: dict[tuple[str, str], tuple[int, np.ndarray, np.ndarray]] = {}
_lock = threading.Lock()


def store_dir(db_path: str | Path, model_name: str) -> Path:
    """The folder of the vectors of database `db_path` under the resolved model `model_name`."""
    db_key = hashlib.sha1(str(Path(db_path).resolve()).encode()).hexdigest()[:12]
    return Path(cache.CACHE_DIR).parent / "vectors" / f"{db_key}-{cache.model_fingerprint(model_name)}"


def project_vectors(db_path: str | Path, model: str | Path | None, *,
                    progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(int64 document ids in id order, float32 matrix of L2-normalised rows) of every document of the project at
    `db_path` under `model` (None or "default": the ★ default model).

    Same corpus version as the last call in this process: no I/O beyond one version read. Else the store on disk is
    loaded when it matches the corpus; otherwise only new or changed documents are encoded (`progress`, else the
    listener of :func:`studio.retrieval.progress_eta.reporting`, gets (encoded, to encode)), deleted ones dropped,
    and the store saved for the next process.
    """
    ids, matrix, _ = _current(db_path, model, progress, keep=True)
    return ids, matrix


@dataclass(frozen=True)
class Ahead:
    """What :func:`encode_ahead` did: the model (resolved), the documents the store holds now, how many were
    encoded by this call and how many reused, and the seconds it took."""

    model: str
    documents: int
    encoded: int
    reused: int
    seconds: float


def encode_ahead(db_path: str | Path, model: str | Path | None, *, progress: Progress | None = None,
                 keep: bool = True) -> Ahead:
    """Bring the store of (`db_path`, `model`) up to the corpus now (only new or changed documents encoded), so a
    later search, pool or evaluation reads it. `keep`: also hold this process's float32 matrix (the app: ⑨'s next
    query answers from memory); a CLI run that exits passes False."""
    t0 = time.perf_counter()
    ids, _, encoded = _current(db_path, model, progress, keep=keep)
    return Ahead(dense.resolve_model(model), len(ids), encoded, len(ids) - encoded,
                 round(time.perf_counter() - t0, 2))


def _current(db_path: str | Path, model: str | Path | None, progress: Progress | None, *,
             keep: bool) -> tuple[np.ndarray, np.ndarray | None, int]:
    """(ids, float32 matrix or None when not `keep` and not held, documents encoded by this call)."""
    name = dense.resolve_model(model)
    key = (str(Path(db_path).resolve()), cache.model_fingerprint(name))
    with opened(db_path) as db:
        version = corpus_version(db)
        held = _memory.get(key)
        if held is not None and held[0] == version:
            return held[1], held[2], 0
        with _lock:
            held = _memory.get(key)
            if held is not None and held[0] == version:
                return held[1], held[2], 0
            _memory.pop(key, None)  # the old version's matrix goes before the new one is built (peak memory)
            folder = store_dir(db_path, name)
            inode = os.stat(db_path).st_ino
            encoded = 0
            with folder_lock(folder):  # one writer per store across processes (the app and `studio index`)
                stored = load(folder)
                if not (stored and stored.version == version and stored.db_inode == inode
                        and stored.count == document_count(db)):
                    stored, encoded = _update(db, folder, name, stored, version, inode,
                                              progress or progress_eta.listener())
            if not keep:
                return stored.ids, None, encoded
            matrix = _as_float32(stored.vectors)
            _memory[key] = (version, stored.ids, matrix)
            return stored.ids, matrix, encoded




def forget() -> None:
    """Drop the in-process matrices (tests; a process that must free the memory)."""
    with _lock:
        _memory.clear()


def load(folder: Path) -> _Stored | None:
    """The live generation of the store in `folder`, vectors memory-mapped; None when there is none or it is of
    an older format or unreadable (it is then rebuilt)."""
    try:
        meta = json.loads((folder / "current.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            return None
        live = folder / meta["generation"]
        ids = np.load(live / "ids.npy")
        hashes = np.load(live / "hashes.npy")
        vectors = np.load(live / "vectors.npy", mmap_mode="r")
    except (OSError, ValueError, KeyError):
        return None
    if not (len(ids) == len(hashes) == len(vectors) == meta["count"]):
        return None
    return _Stored(meta["version"], meta["count"], meta["db_inode"], ids, hashes, vectors)


def _update(db, folder: Path, name: str, old: _Stored | None, version: int, inode: int,
            progress: Progress | None) -> tuple[_Stored, int]:
    """Encode what `old` lacks or holds stale, drop what the corpus no longer has, save as a new generation; the
    store as saved and how many documents were encoded."""
    ids_list, _, hash_list = document_ids_and_hashes(db)
    ids = np.asarray(ids_list, dtype=np.int64)
    hashes = np.asarray([h.encode("ascii") for h in hash_list], dtype=np.bytes_) if hash_list else \
        np.zeros(0, dtype="S1")
    source = np.full(len(ids), -1, dtype=np.int64)  # row of `old` to keep, -1: encode
    if old is not None and len(old.ids):
        at = np.searchsorted(old.ids, ids)
        at_ok = np.minimum(at, len(old.ids) - 1)
        same = (old.ids[at_ok] == ids) & (old.hashes[at_ok] == hashes)
        source[same] = at_ok[same]
    todo = ids[source < 0]
    texts = _texts(db, todo, everything=len(todo) == len(ids))
    save(folder, version=version, db_inode=inode, ids=ids, hashes=hashes,
         rows=_rows(ids, source, old, texts, name, len(todo), progress))
    stored = load(folder)
    if stored is None:
        raise OSError(f"the vector store {folder} was saved but cannot be read back")
    return stored, len(todo)


def _texts(db, ids: np.ndarray, *, everything: bool) -> Iterable[str]:
    """The document texts of `ids` (id order), as every index reads them; the whole corpus is streamed."""
    if everything:
        for row in iter_documents(db):
            yield document_text(row["title"], row["text"])
        return
    for start in range(0, len(ids), CHUNK):
        chunk = [int(i) for i in ids[start:start + CHUNK]]
        rows = documents_by_ids(db, chunk)
        for i in chunk:
            yield document_text(rows[i]["title"], rows[i]["text"])


def _rows(ids: np.ndarray, source: np.ndarray, old: _Stored | None, texts: Iterable[str], name: str,
          total: int, progress: Progress | None) -> Iterable[tuple[int, np.ndarray]]:
    """(first row, block of float32 rows) covering every document in order: runs of kept rows copied from `old`,
    the others encoded, at most `CHUNK` rows at a time."""
    texts = iter(texts)
    encode_here = source < 0
    cuts = np.flatnonzero(np.diff(encode_here.astype(np.int8))) + 1
    done = 0
    if progress is not None and total:
        progress(0, total)
    for run_start, run_stop in zip(np.r_[0, cuts], np.r_[cuts, len(ids)]):
        for start in range(int(run_start), int(run_stop), CHUNK):
            stop = min(start + CHUNK, int(run_stop))
            if encode_here[start]:
                batch = [next(texts) for _ in range(stop - start)]
                report = None if progress is None else (lambda d, _t, base=done: progress(base + d, total))
                block = dense.encode(batch, name, progress=report)
                done += len(batch)
            else:
                block = np.asarray(old.vectors[source[start:stop]], dtype=np.float32)
            yield start, block


def save(folder: Path, *, version: int, db_inode: int, ids: np.ndarray, hashes: np.ndarray,
         rows: Iterable[tuple[int, np.ndarray]]) -> None:
    """Write a new generation (vectors streamed from `rows`, cast to :data:`STORE_DTYPE`), then make it live by
    replacing ``current.json``; older generations are removed only after that. An exception on the way leaves the
    previous generation live."""
    with new_generation(folder) as (target, meta):
        matrix = None
        for start, block in rows:
            if matrix is None:
                matrix = np.lib.format.open_memmap(target / "vectors.npy", mode="w+", dtype=STORE_DTYPE,
                                                   shape=(len(ids), block.shape[1]))
            matrix[start:start + len(block)] = block
        if matrix is None:  # an empty corpus
            matrix = np.lib.format.open_memmap(target / "vectors.npy", mode="w+", dtype=STORE_DTYPE, shape=(0, 1))
        matrix.flush()
        del matrix
        np.save(target / "ids.npy", ids)
        np.save(target / "hashes.npy", hashes)
        meta.update({"format": FORMAT, "version": version, "count": len(ids), "db_inode": db_inode,
                     "dtype": np.dtype(STORE_DTYPE).name})


def _as_float32(vectors: np.ndarray) -> np.ndarray:
    """The stored rows as a float32 array in memory, upcast in blocks (search needs BLAS; numpy has none for
    float16)."""
    out = np.empty(vectors.shape, dtype=np.float32)
    for start in range(0, len(vectors), 65536):
        out[start:start + 65536] = vectors[start:start + 65536]
    return out
