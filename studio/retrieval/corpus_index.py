"""The project's corpus as a query sees it: per (database file, corpus version) the document ids and keys in id order,
kept in memory, so that nothing a query does grows with the corpus.

The corpus version (schema m008) is one row that triggers bump on every document insert, title/text edit and
delete; reading it is the only thing a query asks SQLite about the corpus as a whole (:func:`corpus_for`). A
search index over the corpus (BM25, one model's vectors, BGE-M3's lexical weights) is keyed by
:attr:`CorpusIndex.key` — the database file and that version — and returns result rows as positions in the id order
kept here; position → key and id is an array lookup, and a response reads from SQLite only the documents it shows
(:meth:`CorpusIndex.documents`). The versions of the last :data:`KEEP` corpora stay; older ones are evicted.

Where an index's source is the corpus texts, :class:`CorpusTexts` gives them as a sequence that reads SQLite when
iterated or sliced (an index is built once per corpus version, never per query): the one place to swap in a stored
source (vector_store.project_vectors, bm25_store.project_bm25) is :func:`studio.retrieval.search.index_for` /
:func:`studio.retrieval.search.bm25_index_for`, which receive this object.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from sqlite_utils import Database

from studio.recent import Recent
from studio.records import document_text
from studio.store.connection import opened
from studio.store.corpus import corpus_version, document_ids_and_hashes, documents_by_ids, iter_documents

KEEP = 4  # corpus versions kept in memory (several projects, or one while an import moves it on)

_corpora: Recent[CorpusIndex] = Recent(KEEP, once=True)  # one read of the ids per version, however many queries


@dataclass(eq=False)
class CorpusIndex:
    """One corpus version's document ids (int64, id order), keys and content hashes (same order), and where it
    lives.

    ``key`` — (resolved database path, the file's inode, version) — is what in-memory indexes over this corpus are
    keyed by: a new version, or another file moved into the same path, never reuses them.
    """

    db_path: Path
    version: int
    ids: np.ndarray
    keys: KeyList
    hashes: np.ndarray | None = None  # content hashes (bytes), same order: what the BM25 store compares
    key: tuple = field(init=False)

    def __post_init__(self) -> None:
        self.key = (str(self.db_path), _inode(self.db_path), self.version)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def position(self) -> dict[str, int]:
        """Document key → position in id order (built on first use, once per version)."""
        return self.keys.position

    @cached_property
    def texts(self) -> CorpusTexts:
        """The documents' texts as indexes embed and tokenize them, read from SQLite only when iterated/sliced."""
        return CorpusTexts(self)

    def documents(self, db: Database, keys: Sequence[str]) -> dict[str, dict]:
        """Key → {title, text} of the documents `keys` name (those this corpus has): what a response shows, read by
        primary key."""
        wanted = [self.position[k] for k in dict.fromkeys(keys) if k in self.position]
        rows = documents_by_ids(db, [int(self.ids[p]) for p in wanted])
        return {row["key"]: {"title": row["title"], "text": row["text"]} for row in rows.values()}

    def texts_of(self, keys: Sequence[str]) -> dict[str, str]:
        """Key → the text an index reads (:func:`studio.records.document_text`) of the documents `keys` name; opens
        the database for this read only (a reranker's candidates)."""
        with opened(self.db_path) as db:
            shown = self.documents(db, keys)
        return {key: document_text(doc["title"], doc["text"]) for key, doc in shown.items()}


class KeyList(list):
    """The document keys in id order, with :attr:`position` (key → position) built on first use: whether a key is
    in the corpus without a set of every key per query (a run file's rankings)."""

    @cached_property
    def position(self) -> dict[str, int]:
        return {key: i for i, key in enumerate(self)}


class CorpusTexts(Sequence[str]):
    """A corpus version's texts in id order (:func:`studio.records.document_text`), read from SQLite when iterated
    (in id batches) or sliced (by id); not held in memory. ``corpus`` names the version, so an index built from it
    is keyed by the version rather than by hashing every text."""

    def __init__(self, corpus: CorpusIndex):
        self.corpus = corpus

    def __len__(self) -> int:
        return len(self.corpus)

    def __iter__(self) -> Iterator[str]:
        with opened(self.corpus.db_path) as db:
            if corpus_version(db) != self.corpus.version:
                raise RuntimeError(f"{self.corpus.db_path}: the corpus changed while an index was being built")
            for row in iter_documents(db):
                yield document_text(row["title"], row["text"])

    def __getitem__(self, item):
        if isinstance(item, slice):
            ids = [int(i) for i in self.corpus.ids[item]]
            with opened(self.corpus.db_path) as db:
                rows = documents_by_ids(db, ids)
            return [document_text(rows[i]["title"], rows[i]["text"]) for i in ids]
        return self[item:item + 1 if item != -1 else None][0]


def corpus_for(db: Database, db_path: str | Path) -> CorpusIndex:
    """The corpus of the database `db` (open on the file `db_path`) at its current version: one row read when the
    version is kept; otherwise its ids and keys, read once (older versions evicted beyond :data:`KEEP`)."""
    path = Path(db_path).resolve()
    version = corpus_version(db)

    def load() -> CorpusIndex:
        ids, keys, hashes = document_ids_and_hashes(db)
        return CorpusIndex(path, version, np.asarray(ids, dtype=np.int64), KeyList(keys),
                           np.asarray(hashes, dtype="S") if hashes else np.zeros(0, "S1"))

    return _corpora.get((str(path), _inode(path), version), load)


def _inode(path: Path) -> int:
    try:
        return os.stat(path).st_ino
    except OSError:
        return 0


def clear() -> None:
    """Forget every kept corpus version (tests)."""
    _corpora.clear()
