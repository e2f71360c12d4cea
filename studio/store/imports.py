"""Write what a reader produced (an ImportBatch) to the database: all of it, or nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from sqlite_utils import Database

from studio.errors import InputError
from studio.ingest.records import Document, ImportBatch, Origin, PairRecord, Query
from studio.store.audit import record
from studio.store.connection import immediate

T = TypeVar("T")


@dataclass
class ImportSummary:
    """Counts of what an import added (existing rows are reused, never duplicated)."""

    source: str
    file: str
    documents: int = 0
    queries: int = 0
    pairs: int = 0
    existing_pairs: int = 0
    ratings: int = 0
    annotators: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def text_hash(text: str) -> str:
    """Stable fingerprint of a text, insensitive to surrounding white space."""
    return hashlib.sha1(" ".join(text.split()).encode("utf-8")).hexdigest()


# SQLite's page cache while importing (KiB; the connection's default is 2 MiB). A big import inserts rows into the
# text-hash indexes at random places; with the default cache, most of those pages would be written out to the WAL
# and read back many times within the one transaction. A fixed size: memory stays flat in the file's size.
IMPORT_CACHE_KIB = 64 * 1024

# Keys (and text hashes) remembered per table while importing; a miss asks the table's UNIQUE key / text-hash index.
RECENT_KEYS = 20_000


class _Keyed:
    """Resolves documents or queries to row ids, creating new rows; one per batch.

    Keys are looked up through the table's indexes (``key`` UNIQUE, ``text_hash``), not loaded: a small cache of
    recent keys (a query's twenty pairs in a row) saves most look-ups, and is emptied when full, so memory stays
    the same however big the file or the table.
    """

    def __init__(self, db: Database, table: str, source: str, file: str):
        self.cursor, self.table, self.source, self.file = db.conn.cursor(), table, source, file
        self.documents = table == "documents"
        self.by_key: dict[str, tuple[int, str]] = {}  # recent keys: (id, text hash)
        self.by_hash: dict[str, int] = {}  # recent text hashes: the first id with it
        columns = "key, title, text, text_hash, source" if self.documents else "key, text, text_hash, source"
        values = ", ".join("?" * len(columns.split(", ")))
        self.insert_sql = f"INSERT INTO {table} ({columns}) VALUES ({values})"
        self.insert_new_sql = self.insert_sql + " ON CONFLICT (key) DO NOTHING"
        self.last: tuple[str, str] = ("", "")  # the last text hashed and its hash: a query repeats row after row
        self.created = 0

    def resolve(self, item: Document | Query, line: int | None) -> int:
        """The row id of `item`, inserting it when new.

        Raises:
            InputError: ``unknown_reference`` (a reference by key to nothing), ``conflicting_key`` (a key
                stored with another text).
        """
        key, text = item.key, item.text
        if text is None:  # a reference by id (a rating given by query_id/doc_id): it must exist
            return self._reference(key, line)
        digest = self.last[1] if text == self.last[0] else self._hash(text)
        if key is None:
            return self._by_text(item, digest)
        found = self.by_key.get(key)
        if found is None:
            cursor = self.cursor.execute(self.insert_new_sql, self._row(item, key, digest))
            if cursor.rowcount:
                return self._created(key, digest, cursor.lastrowid)
            found = self._find_key(key)
        if found[1] != digest:
            raise self._conflict(item, line)
        return found[0]

    def _reference(self, key: str, line: int | None) -> int:
        """The id of the row with `key`, which must exist."""
        found = self._find_key(key)
        if found is None:
            raise InputError("unknown_reference", file=self.file, line=line,
                             field="doc_id" if self.documents else "query_id", key=key)
        return found[0]

    def _by_text(self, item: Document | Query, digest: str) -> int:
        """An item without a key: the first row with the same text, else a new row keyed ``h:<hash>``."""
        row_id = self.by_hash.get(digest)
        if row_id is None:
            row = self.cursor.execute(f"SELECT id FROM {self.table} WHERE text_hash = ? ORDER BY id LIMIT 1",
                                      (digest,)).fetchone()
            if row is None:
                key = f"h:{digest[:16]}"
                row_id = self._created(key, digest, self.cursor.execute(self.insert_sql,
                                                                        self._row(item, key, digest)).lastrowid)
                return _remember(self.by_hash, digest, row_id)  # no earlier row has this text
            row_id = _remember(self.by_hash, digest, row[0])
        return row_id

    def _hash(self, text: str) -> str:
        self.last = (text, text_hash(text))
        return self.last[1]

    def _find_key(self, key: str) -> tuple[int, str] | None:
        """``(id, text hash)`` of the row with `key`, from the cache or the UNIQUE index; None if none."""
        found = self.by_key.get(key)
        if found is None:
            row = self.cursor.execute(f"SELECT id, text_hash FROM {self.table} WHERE key = ?", (key,)).fetchone()
            found = None if row is None else _remember(self.by_key, key, (row[0], row[1]))
        return found

    def _row(self, item: Document | Query, key: str, digest: str) -> tuple:
        if self.documents:
            return key, item.title, item.text, digest, self.source
        return key, item.text, digest, self.source

    def _created(self, key: str, digest: str, row_id: int) -> int:
        """Count a new row and remember its key (a keyed row never takes an earlier row's place in `by_hash`)."""
        self.created += 1
        _remember(self.by_key, key, (row_id, digest))
        return row_id

    def _conflict(self, item: Document | Query, line: int | None) -> InputError:
        """``conflicting_key`` where `item` was read: its own origin (BEIR corpus/queries), else its pair's line."""
        field = "doc_id" if self.documents else "query_id"
        origin = item.origin or Origin(self.file, line, field)
        return InputError("conflicting_key", file=origin.file, line=origin.line, field=origin.field, key=item.key)


def _remember(cache: dict, key: str, value: T) -> T:
    """Put `value` in `cache` (emptied first when it holds :data:`RECENT_KEYS` entries); returns `value`."""
    if len(cache) >= RECENT_KEYS:
        cache.clear()
    cache[key] = value
    return value


class _Pairs:
    """Inserts pairs, counting new ones and the distinct existing ones an import names (those in a temporary
    table, not in memory: a file naming a million existing pairs is a re-import)."""

    def __init__(self, db: Database, source: str, queue: bool):
        self.conn, self.cursor, self.source, self.queue = db.conn, db.conn.cursor(), source, int(queue)
        self.before = self.conn.execute("SELECT coalesce(max(id), 0) FROM pairs").fetchone()[0]  # new ids are above
        self.created = 0
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS import_existing (id INTEGER PRIMARY KEY)")
        self.conn.execute("DELETE FROM temp.import_existing")

    def add(self, qid: int, did: int, rec: PairRecord) -> int:
        """The id of the pair (`qid`, `did`), inserted when new; an existing one takes `rec`'s reference label."""
        cursor = self.cursor.execute(
            """INSERT INTO pairs (query_id, document_id, source, in_queue, reference_label, hint)
               VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (query_id, document_id) DO NOTHING""",
            (qid, did, self.source, self.queue, rec.reference_label, rec.hint),
        )
        if cursor.rowcount:
            self.created += 1
            return cursor.lastrowid
        pair_id = self.conn.execute("SELECT id FROM pairs WHERE query_id = ? AND document_id = ?",
                                    (qid, did)).fetchone()[0]
        if rec.reference_label is not None:
            self.conn.execute("UPDATE pairs SET reference_label = ? WHERE id = ?", (rec.reference_label, pair_id))
        if pair_id <= self.before:
            self.conn.execute("INSERT OR IGNORE INTO temp.import_existing (id) VALUES (?)", (pair_id,))
        return pair_id

    def existing(self) -> int:
        """How many pairs already in the database the import named (each once); empties the temporary table."""
        n = self.conn.execute("SELECT count(*) FROM temp.import_existing").fetchone()[0]
        self.conn.execute("DELETE FROM temp.import_existing")
        return n


def import_batch(db: Database, batch: ImportBatch, *, queue: bool = True, actor: str = "import") -> ImportSummary:
    """Import a reader's batch in one transaction.

    Documents and queries are matched by external id, else by text, so importing the same file twice adds
    nothing. A pair that exists already keeps its ratings. Ratings (``import ratings``) are added for their
    annotator; a rating that would make a third rater, or that contradicts the annotator's stored rating of
    the same pair (``rating_conflict``: an import never changes a rating), aborts the whole import with the
    file and line.

    A streamed batch (a reader's ``stream=True``) is read here, one record at a time; a reader error raised on
    the way (a bad line near the end) aborts the whole import like any other. Memory stays flat: nothing keeps
    every record, key or pair (see :class:`_Keyed`, :class:`_Pairs`).

    Args:
        queue: put new pairs in the annotation queue. BEIR pairs come with labels and are imported with
            ``queue=False`` unless the user asks for them to be re-rated.
    """
    summary = ImportSummary(source=batch.source, file=batch.file)
    with immediate(db), _page_cache(db, IMPORT_CACHE_KIB):
        docs = _Keyed(db, "documents", batch.source, batch.file)
        queries = _Keyed(db, "queries", batch.source, batch.file)
        pairs = _Pairs(db, batch.source, queue)
        ratings = _Ratings(db, batch.file)
        for doc in batch.extra_documents:
            docs.resolve(doc, None)
        for query in batch.extra_queries:
            queries.resolve(query, None)
        query_id, document_id, add_pair = queries.resolve, docs.resolve, pairs.add  # bound once, called per row
        for rec in batch.pairs:
            pair_id = add_pair(query_id(rec.query, rec.line), document_id(rec.document, rec.line), rec)
            if rec.annotator is not None and rec.rating is not None:
                summary.ratings += ratings.add(rec, pair_id)
        summary.pairs, summary.existing_pairs = pairs.created, pairs.existing()
        summary.documents, summary.queries, summary.annotators = docs.created, queries.created, ratings.new_annotators
        record(db, actor=actor, action="import", entity="import", entity_id=None, after=summary.as_dict())
    return summary


@contextmanager
def _page_cache(db: Database, kib: int) -> Iterator[None]:
    """SQLite's page cache at `kib` KiB for the block, then back to what it was."""
    before = db.conn.execute("PRAGMA cache_size").fetchone()[0]
    db.conn.execute(f"PRAGMA cache_size = -{int(kib)}")
    try:
        yield
    finally:
        db.conn.execute(f"PRAGMA cache_size = {int(before)}")


class _Ratings:
    """Adds imported ratings, creating their annotators; a rating added by this import is one whose id is above
    the largest before it (no set of them is kept)."""

    def __init__(self, db: Database, file: str):
        self.conn, self.file = db.conn, file
        self.annotators = {row[0]: row[1] for row in self.conn.execute("SELECT name, id FROM annotators")}
        self.before = self.conn.execute("SELECT coalesce(max(id), 0) FROM ratings").fetchone()[0]
        self.new_annotators = 0

    def add(self, rec: PairRecord, pair_id: int) -> int:
        """Add `rec`'s rating and return 1, or 0 when the annotator already gave this pair the same rating.

        A clash with a rating this import added (two rows naming one pair differently, by id and by text) is
        ``duplicate_rating``; with one stored before, ``rating_conflict``.
        """
        annotator_id = self._annotator(rec.annotator)
        existing = self.conn.execute("SELECT id, annotator_id, rating FROM ratings WHERE pair_id = ?",
                                     (pair_id,)).fetchall()
        mine = [r for r in existing if r[1] == annotator_id]
        if mine:
            rating_id, _, stored = mine[0]
            if stored == rec.rating:
                return 0  # the same label imported again
            if rating_id > self.before:
                raise InputError("duplicate_rating", file=self.file, line=rec.line, field="rating",
                                 annotator=rec.annotator)
            raise InputError("rating_conflict", file=self.file, line=rec.line, field="rating",
                             annotator=rec.annotator, stored=stored, rating=rec.rating)
        if len(existing) >= 2:
            raise InputError("too_many_raters", file=self.file, line=rec.line, field="annotator",
                             annotator=rec.annotator)
        self.conn.execute("INSERT INTO ratings (pair_id, annotator_id, rating, note) VALUES (?, ?, ?, ?)",
                          (pair_id, annotator_id, rec.rating, rec.note or ""))
        return 1

    def _annotator(self, name: str) -> int:
        if name not in self.annotators:
            self.annotators[name] = self.conn.execute(
                "INSERT INTO annotators (name, role) VALUES (?, 'annotator')", (name,)).lastrowid
            self.new_annotators += 1
        return self.annotators[name]
