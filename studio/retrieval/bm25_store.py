"""The project's BM25 index: segments saved beside the database, memory-mapped when loaded, grown by a segment when
documents are added or edited instead of rebuilt.

:func:`project_bm25` returns the document ids (id order) and a :class:`~studio.retrieval.bm25_segments.SegmentedBM25`
over every document's :func:`studio.records.document_text` — the studio's tokenizer, and the scores an index bm25s
builds over the same documents has (tested against it). When the corpus version (:func:`studio.store.corpus.
corpus_version`, bumped by triggers on every document insert, edit and delete) moved on, the documents' (id, content
hash) are read once and compared with the segments': documents that are new or whose title/text changed are
tokenized into one new segment, deleted and edited ones are masked in their old segment. When more than
:data:`MAX_SEGMENTS` segments would exist, more than :data:`MAX_DEAD_SHARE` of the rows are masked, or the new
documents are more than half the corpus, the corpus is indexed again into one segment (a compaction).

Layout: ``<db>.bm25/`` beside ``<db>``: one folder per segment (``s<n>/``, :meth:`Segment.save`) and
``manifest.json`` — the segments in order, the database file (device, inode: a database deleted and created again at
the same path is another corpus), the tokenizer's hash and the format. A segment is written into a temporary folder
and renamed into place; the manifest is replaced atomically last, and folders it does not list are removed; a crash
at any point leaves the previous manifest and its segments whole. Writers hold an ``flock`` on ``.lock``.

Why not bm25s's saved index or SQLite FTS5 (bench/bm25_store.py; bench/results/bm25-store-2026-12-07.jsonl): bm25s's
saved index had identical scores and loaded in milliseconds, but it stores precomputed scores, so every added
document meant a rebuild from the texts (20 s at 100k documents, ≥ 200 s and ≥ 9 GB at a million: ~7 kB per document
of token lists); FTS5 updates in place but its bm25() is another formula (only 81–87% of the studio's top 10) and it
scored every matching document in SQL (127 ms p50 at 100k). Raw postings scored at query time keep bm25s's numbers,
build streaming, and take a thousand added documents in well under a second of indexing.
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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.records import document_text
from studio.retrieval import tokenize as tokenize_module
from studio.retrieval.bm25 import BM25Index
from studio.retrieval.bm25_segments import B, K1, Segment, SegmentedBM25, live_positions
from studio.retrieval.corpus_index import CorpusIndex
from studio.retrieval.folder_lock import folder_lock
from studio.store import opened
from studio.store.corpus import (content_hash, corpus_version, document_ids_and_hashes, documents_by_ids,
                                 iter_documents)

FORMAT = 2  # bump when the saved layout changes (1: one bm25s index per version)
MAX_SEGMENTS = 8
MAX_DEAD_SHARE = 0.25
STALE_TEMP_S = 3600  # a temporary folder older than this is a crashed save's: removed
log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Held:
    """One database's index as this process holds it: the corpus version it answers for, ids and keys (id order),
    the content hashes, the segments and the index over them."""

    version: int
    ids: np.ndarray
    keys: list[str]
    hashes: np.ndarray
    segments: list[tuple[str, Segment]]
    index: SegmentedBM25


_memory: dict[str, _Held] = {}  # resolved database path → the latest version's index (one per database)
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


class ProjectCorpus(dict):
    """A corpus (document key → text) read from the project's database `db_path`: an evaluation over it searches
    the project's saved BM25 index (:func:`bm25_for`) instead of building one."""

    def __init__(self, texts: Mapping[str, str], db_path: str | Path):
        super().__init__(texts)
        self.db_path = Path(db_path)


def store_folder(db_path: str | Path) -> Path:
    """The folder holding `db_path`'s saved BM25 segments."""
    db_path = Path(db_path).resolve()
    return db_path.with_name(db_path.name + ".bm25")


def project_bm25(db_path: str | Path, corpus: CorpusIndex | None = None) -> tuple[np.ndarray, SegmentedBM25]:
    """(document ids in id order, BM25 index whose position i is document ids[i]) for the corpus of `db_path` at its
    current version: from memory, else from the saved segments (new or edited documents indexed into a new one),
    else built and saved. `corpus` — the caller's :class:`CorpusIndex` of this database — saves reading every
    document's id and hash again when it is the current version."""
    held = _current(Path(db_path), corpus)
    return held.ids, held.index


def project_keys(db_path: str | Path) -> list[str]:
    """The document keys of :func:`project_bm25`'s positions."""
    return _current(Path(db_path)).keys


def bm25_for(corpus: Mapping[str, str]) -> tuple[list[str], BM25Index | SegmentedBM25]:
    """(document ids, index) for `corpus` (id → text): the project's saved index when `corpus` is a
    :class:`ProjectCorpus` whose keys are the database's documents in id order (the index then ranks it exactly as
    one built from it), else an index built from `corpus` in memory."""
    doc_ids = list(corpus)
    if isinstance(corpus, ProjectCorpus) and corpus.db_path.is_file():
        held = _current(corpus.db_path)
        if held.index.size == len(doc_ids) and held.keys == doc_ids:
            return doc_ids, held.index
        log.info("%s: the corpus changed while it was read; BM25 built in memory", corpus.db_path)
    return doc_ids, BM25Index([corpus[d] for d in doc_ids])


# ------------------------------------------------------------------------------------------------------ internals

def _lock(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())




def _current(db_path: Path, corpus: CorpusIndex | None = None) -> _Held:
    db_path = db_path.resolve()
    key = str(db_path)
    with opened(db_path) as db:
        version = corpus_version(db)
    held = _memory.get(key)
    if held is not None and held.version == version:
        return held
    given = corpus if corpus is not None and corpus.version == version and corpus.hashes is not None \
        and Path(corpus.db_path).resolve() == db_path else None
    with _lock(key):
        held = _memory.get(key)
        if held is None or held.version != version:
            folder = store_folder(db_path)
            with folder_lock(folder):
                held = _update(db_path, folder, held, given)
            _memory[key] = held  # one version per database: the older one goes
    return held


def _manifest_base(db_path: Path) -> dict:
    stat = db_path.stat()
    return {"format": FORMAT, "device": stat.st_dev, "inode": stat.st_ino, "k1": K1, "b": B,
            "tokenizer": hashlib.sha1(Path(tokenize_module.__file__).read_bytes()).hexdigest()[:16]}


def _saved_segments(folder: Path, base: dict, known: dict[str, Segment]) -> list[tuple[str, Segment]]:
    """The segments the manifest in `folder` lists (those in `known` reused, the others loaded), when it is this
    database's and this tokenizer's; else none."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        if {k: manifest.get(k) for k in base} != base:
            return []
        return [(name, known.get(name) or Segment.load(folder / name)) for name in manifest["segments"]]
    except FileNotFoundError:
        return []
    except Exception as exc:  # a damaged folder: indexed again, never fatal
        log.warning("%s: unreadable BM25 segments (%s); indexing again", folder, exc)
        return []


def _update(db_path: Path, folder: Path, held: _Held | None, corpus: CorpusIndex | None = None) -> _Held:
    """The index for the corpus as it is now, from the saved segments plus one segment of what they lack (or one
    segment over everything: :func:`_plan`); saved for the next process. A writer that held the same segments
    in memory reuses them (no reload)."""
    base = _manifest_base(db_path)
    known = dict(held.segments) if held is not None else {}
    with opened(db_path) as db:
        for _ in range(3):  # a write between the reads: read again, so the index is one version's
            version = corpus_version(db)
            if corpus is not None and corpus.version == version:
                ids, keys, hashes = corpus.ids, list(corpus.keys), corpus.hashes
            else:
                id_list, keys, hash_list = document_ids_and_hashes(db)
                ids = np.asarray(id_list, dtype=np.int64)
                hashes = np.asarray(hash_list, dtype="S") if hash_list else np.zeros(0, "S1")
            segments = _saved_segments(folder, base, known)
            missing = _plan(segments, ids, hashes)
            if missing is None:
                segments, fresh = [], [(_new_name(), Segment.build(_all_documents(db)))]
            elif len(missing):
                fresh = [(_new_name(), Segment.build(_some_documents(db, ids[missing])))]
            else:
                fresh = []
            if corpus_version(db) == version:
                break
    if fresh:
        segments = _save(folder, base, segments, fresh)
    try:
        index = SegmentedBM25([s for _, s in segments], ids, hashes)
    except ValueError as exc:  # segments that overlap (never expected): one segment over everything
        log.warning("%s: %s; indexing again", folder, exc)
        with opened(db_path) as db:
            segments = _save(folder, base, [], [(_new_name(), Segment.build(_all_documents(db)))])
        index = SegmentedBM25([s for _, s in segments], ids, hashes)
    return _Held(version, ids, keys, hashes, segments, index)


def _plan(segments: list[tuple[str, Segment]], ids: np.ndarray, hashes: np.ndarray) -> np.ndarray | None:
    """The corpus positions no segment has live (to index into a new segment), or None for a compaction: no
    segments, :data:`MAX_SEGMENTS` reached, more than :data:`MAX_DEAD_SHARE` of the rows masked, or more than
    half the corpus new."""
    covered = np.zeros(len(ids), dtype=bool)
    rows = 0
    for _, segment in segments:
        positions = live_positions(segment, ids, hashes)
        covered[positions[positions >= 0]] = True
        rows += len(segment)
    missing = np.flatnonzero(~covered)
    dead_share = 1 - (len(ids) - len(missing)) / rows if rows else 0.0
    if (not segments or dead_share > MAX_DEAD_SHARE or len(missing) > len(ids) / 2
            or (len(missing) and len(segments) >= MAX_SEGMENTS)):
        return None
    return missing


def _all_documents(db) -> Iterator[tuple[int, str, str]]:
    for row in iter_documents(db):
        yield row["id"], content_hash(row), document_text(row["title"], row["text"])


def _some_documents(db, ids: np.ndarray) -> Iterator[tuple[int, str, str]]:
    for start in range(0, len(ids), 5000):
        chunk = [int(i) for i in ids[start:start + 5000]]
        rows = documents_by_ids(db, chunk)
        for doc_id in chunk:
            row = rows[doc_id]
            yield doc_id, content_hash(row), document_text(row["title"], row["text"])


def _new_name() -> str:
    return f"s{time.time_ns():x}-{uuid.uuid4().hex[:6]}"


def _save(folder: Path, base: dict, kept: list[tuple[str, Segment]],
          fresh: list[tuple[str, Segment]]) -> list[tuple[str, Segment]]:
    """Write `fresh` segments (temporary folder, renamed), then the manifest listing `kept` + `fresh` (replaced
    atomically), then remove what it does not list. The fresh segments come back memory-mapped from disk; on a
    write error (logged) they stay in memory and the previous manifest stays live."""
    saved = list(kept)
    try:
        for name, segment in fresh:
            temp = folder / f".tmp-{name}-{os.getpid()}"
            try:
                segment.save(temp)
                os.rename(temp, folder / name)
            finally:
                if temp.exists():
                    shutil.rmtree(temp, ignore_errors=True)
            saved.append((name, Segment.load(folder / name)))
        manifest = {**base, "segments": [name for name, _ in saved]}
        temp_manifest = folder / f".tmp-manifest-{os.getpid()}.json"
        temp_manifest.write_text(json.dumps(manifest), encoding="utf-8")
        os.replace(temp_manifest, folder / "manifest.json")
    except Exception as exc:
        log.warning("%s: could not save the BM25 segments (%s); kept in memory", folder, exc)
        return [*kept, *fresh]
    _remove_unlisted(folder, {name for name, _ in saved})
    return saved


def _remove_unlisted(folder: Path, keep: set[str]) -> None:
    """Remove folders the manifest does not list (compacted segments, format-1 indexes) and temporary files of
    saves that crashed (a process that still maps a removed segment keeps reading it: Linux frees unlinked files
    when their last mapping goes)."""
    now = time.time()
    for entry in folder.iterdir():
        if entry.name in keep or entry.name in ("manifest.json", ".lock"):
            continue
        try:
            if not entry.name.startswith(".tmp-") or now - entry.stat().st_mtime > STALE_TEMP_S:
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink()
        except FileNotFoundError:
            pass
