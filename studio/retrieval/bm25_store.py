"""The project's BM25 index, built once per corpus version and saved beside the database, memory-mapped when loaded.

:func:`project_bm25` returns the document ids (id order) and a :class:`~studio.retrieval.bm25.BM25Index` over
every document's :func:`studio.records.document_text` — the same tokenizer and the same scores as an index built in
memory. It is built when the corpus version (:func:`studio.store.corpus.corpus_version`, bumped by triggers on every
document insert, edit and delete) has no saved index yet, written to a temporary folder and renamed into place (a
crash mid-save leaves no half index under a version's name), and kept in memory per database, one version at a
time; saving a version removes the older versions' folders (a process that still maps one keeps reading it: Linux
frees unlinked files when their last mapping goes).

Layout: ``<db>.bm25/v<version>/`` beside ``<db>``: bm25s's arrays and vocabulary, ``ids.npy`` (int64 document ids),
``keys.json`` (their keys, for evaluations keyed by document key) and ``meta.json``, written last, which names the
version, the document count, the database file (device, inode: a database deleted and created again at the same
path is another corpus) and the tokenizer's and bm25s's versions; a folder whose meta does not match is rebuilt.

Why bm25s's saved index rather than SQLite FTS5 over the pre-tokenised text (bench/bm25_store.py, 2 shared cores,
bench/results/bm25-store-2026-12-07.jsonl; synthetic Zipf corpus, 50 queries, each backend in a fresh process):

=================  ==================  ==================  ==================  ==================
                   bm25s 10k           FTS5 10k            bm25s 100k          FTS5 100k
=================  ==================  ==================  ==================  ==================
build (+ save)     0.8 s, 77 MB peak   0.6 s, 5 MB peak    8.4 s, 704 MB peak  8.6 s, 4 MB peak
on disk            3.4 MB              7.6 MB              30 MB               63 MB
load               8 ms (mmap)         5 ms                12 ms (mmap)        5 ms
query p50 / p95    0.2 / 1.2 ms        9.1 / 13 ms         1.5 / 14 ms         127 / 178 ms
same top 10        identical scores    87% overlap         identical scores    81% overlap
=================  ==================  ==================  ==================  ==================

FTS5 builds in little memory and could update in place, but its bm25() is another formula (k1 1.2, idf without
bm25s' ``1 +``, not settable) and ranks differently — only 81–87% of the studio's top 10 on the same tokens, so every
BM25 number reported so far would move — and it scores every document matching any query term in SQL, 127 ms p50 at
100k documents, growing with the corpus. The saved bm25s index gives identical documents and scores (checked for
every query), loads in milliseconds memory-mapped (pages read when a query touches them, shared between processes)
and costs one rebuild per corpus version, off the request path of every later call; its build peak (~7 kB per
document, the token lists) is the price.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from studio.records import document_text
from studio.retrieval import tokenize as tokenize_module
from studio.retrieval.bm25 import BM25Index
from studio.store import opened
from studio.store.corpus import corpus_version, document_count, iter_documents

FORMAT = 1  # bump when the saved layout changes
STALE_TEMP_S = 3600  # a temporary folder older than this is a crashed save's: removed
log = logging.getLogger(__name__)

_memory: dict[str, tuple[int, np.ndarray, BM25Index]] = {}  # resolved database path → (version, ids, index)
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


class ProjectCorpus(dict):
    """A corpus (document key → text) read from the project's database `db_path`: an evaluation over it searches
    the project's saved BM25 index (:func:`bm25_for`) instead of building one."""

    def __init__(self, texts: Mapping[str, str], db_path: str | Path):
        super().__init__(texts)
        self.db_path = Path(db_path)


def store_folder(db_path: str | Path) -> Path:
    """The folder holding `db_path`'s saved BM25 indexes, one subfolder per corpus version."""
    db_path = Path(db_path).resolve()
    return db_path.with_name(db_path.name + ".bm25")


def project_bm25(db_path: str | Path) -> tuple[np.ndarray, BM25Index]:
    """(document ids in id order, BM25 index whose position i is document ids[i]) for the corpus of `db_path` at its
    current version: from memory, else loaded memory-mapped from its saved folder, else built and saved."""
    ids, index, _ = _current(Path(db_path))
    return ids, index


def project_keys(db_path: str | Path) -> list[str]:
    """The document keys of :func:`project_bm25`'s positions (read from the saved index, or the database)."""
    return _current(Path(db_path))[2]()


def bm25_for(corpus: Mapping[str, str]) -> tuple[list[str], BM25Index]:
    """(document ids, index) for `corpus` (id → text): the project's saved index when `corpus` is a
    :class:`ProjectCorpus` whose keys are the database's documents in id order (the index then ranks it exactly as
    one built from it), else an index built from `corpus` in memory."""
    doc_ids = list(corpus)
    if isinstance(corpus, ProjectCorpus) and corpus.db_path.is_file():
        _, index, keys = _current(corpus.db_path)
        if index.size == len(doc_ids) and keys() == doc_ids:
            return doc_ids, index
        log.info("%s: the corpus changed while it was read; BM25 built in memory", corpus.db_path)
    return doc_ids, BM25Index([corpus[d] for d in doc_ids])


# ------------------------------------------------------------------------------------------------------ internals

def _lock(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def _current(db_path: Path):
    """(ids, index, keys()) for the database's current corpus version (see :func:`project_bm25`)."""
    db_path = db_path.resolve()
    key = str(db_path)
    with opened(db_path) as db:
        version = corpus_version(db)
    with _lock(key):
        held = _memory.get(key)
        if held is None or held[0] != version:
            held = _load_or_build(db_path, version)
            _memory[key] = held  # one version per database: the older one goes
        version, ids, index = held
    return ids, index, lambda: _keys(db_path, version)


def _meta(db_path: Path, version: int, count: int) -> dict:
    stat = db_path.stat()
    import bm25s

    return {"format": FORMAT, "version": version, "documents": count, "device": stat.st_dev, "inode": stat.st_ino,
            "tokenizer": hashlib.sha1(Path(tokenize_module.__file__).read_bytes()).hexdigest()[:16],
            "bm25s": getattr(bm25s, "__version__", None)}


def _load_or_build(db_path: Path, version: int) -> tuple[int, np.ndarray, BM25Index]:
    folder = store_folder(db_path) / f"v{version}"
    with opened(db_path) as db:
        count = document_count(db)
    loaded = _load(folder, _meta(db_path, version, count))
    if loaded is not None:
        _remove_stale(store_folder(db_path), keep=folder.name)
        return version, *loaded
    version, ids, keys, index = _build(db_path)
    folder = store_folder(db_path) / f"v{version}"
    if _save(folder, ids, keys, index, _meta(db_path, version, len(ids))):
        _remove_stale(folder.parent, keep=folder.name)
        loaded = _load(folder, _meta(db_path, version, len(ids)))  # memory-mapped: the built arrays are freed
        if loaded is not None:
            return version, *loaded
    return version, ids, index


def _load(folder: Path, meta: dict) -> tuple[np.ndarray, BM25Index] | None:
    """The index saved in `folder` when its meta.json is `meta`, else None (absent, stale or unreadable)."""
    try:
        if json.loads((folder / "meta.json").read_text(encoding="utf-8")) != meta:
            return None
        ids = np.load(folder / "ids.npy", mmap_mode="r")
        index = BM25Index.load(folder, meta["documents"], mmap=True)
        if len(ids) != meta["documents"]:
            return None
        return ids, index
    except FileNotFoundError:
        return None
    except Exception as exc:  # a damaged folder: rebuilt, never fatal
        log.warning("%s: unreadable BM25 index (%s); rebuilding", folder, exc)
        return None


def _build(db_path: Path) -> tuple[int, np.ndarray, list[str], BM25Index]:
    """Index every document; the corpus version is read before and after, and the read is retried when a write
    landed in between, so the index is the version's."""
    with opened(db_path) as db:
        for _ in range(3):
            version = corpus_version(db)
            ids: list[int] = []
            keys: list[str] = []

            def texts():
                for row in iter_documents(db):
                    ids.append(row["id"])
                    keys.append(row["key"])
                    yield document_text(row["title"], row["text"])

            index = BM25Index(texts())
            if corpus_version(db) == version:
                break
    return version, np.asarray(ids, dtype=np.int64), keys, index


def _save(folder: Path, ids: np.ndarray, keys: list[str], index: BM25Index, meta: dict) -> bool:
    """Write the index into a temporary folder beside `folder`, meta.json last, and rename it into place; False
    (logged) when it could not be written — the caller keeps the index in memory."""
    temp = folder.with_name(f".tmp-{folder.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        temp.mkdir(parents=True)
        index.save(temp)
        np.save(temp / "ids.npy", ids)
        (temp / "keys.json").write_text(json.dumps(keys, ensure_ascii=False), encoding="utf-8")
        (temp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        try:
            os.rename(temp, folder)
        except OSError:  # the folder is there: another process's save of this version, or a stale one
            try:
                same = json.loads((folder / "meta.json").read_text(encoding="utf-8")) == meta
            except (OSError, ValueError):
                same = False
            if not same:
                shutil.rmtree(folder, ignore_errors=True)
                os.rename(temp, folder)
        return True
    except Exception as exc:
        log.warning("%s: could not save the BM25 index (%s); kept in memory", folder, exc)
        return False
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)


def _remove_stale(parent: Path, keep: str) -> None:
    """Remove the other versions' folders in `parent`, and temporary folders of saves that crashed."""
    if not parent.is_dir():
        return
    now = time.time()
    for entry in parent.iterdir():
        if entry.name == keep:
            continue
        temp = entry.name.startswith(".tmp-")
        try:
            if not temp or now - entry.stat().st_mtime > STALE_TEMP_S:
                shutil.rmtree(entry, ignore_errors=True)
        except FileNotFoundError:
            pass


def _keys(db_path: Path, version: int) -> list[str]:
    folder = store_folder(db_path) / f"v{version}"
    try:
        return json.loads((folder / "keys.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        with opened(db_path) as db:
            return [row["key"] for row in iter_documents(db)]
