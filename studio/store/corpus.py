"""The corpus as the indexes read it: its version (kept by triggers, schema m008), the documents in id order, and
the few documents a response shows."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

from sqlite_utils import Database


def corpus_version(db: Database) -> int:
    """The corpus's version: it changes whenever a document is added, edited or deleted (one row, one read)."""
    return next(db.query("SELECT version FROM corpus_version WHERE id = 1"))["version"]


def document_count(db: Database) -> int:
    """How many documents the corpus has."""
    return next(db.query("SELECT count(*) AS n FROM documents"))["n"]


def iter_documents(db: Database, *, batch: int = 10_000) -> Iterator[dict]:
    """Every document (id, key, title, text, text_hash, revision) in id order, read in batches by id range
    (constant memory, no OFFSET scans)."""
    last = -1
    while True:
        rows = list(db.query("SELECT id, key, title, text, text_hash, revision FROM documents WHERE id > ? "
                             "ORDER BY id LIMIT ?",
                             [last, batch]))
        if not rows:
            return
        yield from rows
        last = rows[-1]["id"]


def document_ids_and_hashes(db: Database) -> tuple[list[int], list[str], list[str]]:
    """(ids, keys, content hashes) of every document in id order — what an index keeps in memory; the texts stay
    on disk. A content hash covers the title and the text (``text_hash`` is the text's), so an edited title is a
    changed document too."""
    ids, keys, hashes = [], [], []
    # Plain tuples from the cursor: a dict per row costs more than the read itself at a million documents.
    cursor = db.execute("SELECT id, key, title, text_hash, revision FROM documents ORDER BY id")
    for doc_id, key, title, digest, revision in cursor:
        ids.append(doc_id)
        keys.append(key)
        hashes.append(_content_hash(digest, title, revision))
    return ids, keys, hashes


def content_hash(row: dict) -> str:
    """A document row's content hash (its ``text_hash``, its title's when it has one, its revision once edited):
    what an index keys a document's entry by, so an edited title or text is a changed document."""
    return _content_hash(row["text_hash"], row["title"], row.get("revision"))


def _content_hash(text_hash: str, title: str | None, revision: int | None) -> str:
    digest = text_hash if not title else text_hash + ":" + hashlib.sha1(title.encode("utf-8")).hexdigest()[:16]
    return digest + f"#{revision}" if revision else digest


def documents_by_ids(db: Database, ids: Sequence[int]) -> dict[int, dict]:
    """The documents `ids` name (id → row with key, title, text, text_hash, revision): what one response shows, read by primary
    key."""
    out: dict[int, dict] = {}
    ids = list(dict.fromkeys(int(i) for i in ids))
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for row in db.query(f"SELECT id, key, title, text, text_hash, revision FROM documents WHERE id IN ({marks})", chunk):
            out[row["id"]] = row
    return out
