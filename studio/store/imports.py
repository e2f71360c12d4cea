"""Write what a reader produced (an ImportBatch) to the database: all of it, or nothing."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlite_utils import Database

from studio.errors import InputError
from studio.ingest.records import Document, ImportBatch, Origin, PairRecord, Query
from studio.store.audit import record
from studio.store.connection import immediate


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


class _Keyed:
    """Resolves documents or queries to row ids, creating new rows; one per batch, loaded once."""

    def __init__(self, db: Database, table: str, source: str, file: str):
        self.db, self.table, self.source, self.file = db, table, source, file
        self.by_key: dict[str, tuple[int, str]] = {}
        self.by_hash: dict[str, int] = {}
        for row in db.query(f"SELECT id, key, text_hash FROM {table}"):
            self.by_key[row["key"]] = (row["id"], row["text_hash"])
            self.by_hash.setdefault(row["text_hash"], row["id"])
        self.created = 0

    def resolve(self, item: Document | Query, line: int | None) -> int:
        if item.text is None:  # a reference by id (a rating given by query_id/doc_id): it must exist
            found = self.by_key.get(item.key)
            if found is None:
                raise InputError("unknown_reference", file=self.file, line=line,
                                 field="doc_id" if self.table == "documents" else "query_id", key=item.key)
            return found[0]
        digest = text_hash(item.text)
        if item.key is not None:
            found = self.by_key.get(item.key)
            if found:
                if found[1] != digest:
                    raise self._conflict(item, line)
                return found[0]
            key = item.key
        else:
            if digest in self.by_hash:
                return self.by_hash[digest]
            key = f"h:{digest[:16]}"
        columns = {"key": key, "text": item.text, "text_hash": digest, "source": self.source}
        if isinstance(item, Document):
            columns["title"] = item.title
        names = ", ".join(columns)
        cursor = self.db.execute(
            f"INSERT INTO {self.table} ({names}) VALUES ({', '.join('?' * len(columns))})", list(columns.values())
        )
        row_id = cursor.lastrowid
        self.by_key[key] = (row_id, digest)
        self.by_hash.setdefault(digest, row_id)
        self.created += 1
        return row_id

    def _conflict(self, item: Document | Query, line: int | None) -> InputError:
        """``conflicting_key`` where `item` was read: its own origin (BEIR corpus/queries), else its pair's line."""
        field = "doc_id" if self.table == "documents" else "query_id"
        origin = item.origin or Origin(self.file, line, field)
        return InputError("conflicting_key", file=origin.file, line=origin.line, field=origin.field, key=item.key)


def import_batch(db: Database, batch: ImportBatch, *, queue: bool = True, actor: str = "import") -> ImportSummary:
    """Import a reader's batch in one transaction.

    Documents and queries are matched by external id, else by text, so importing the same file twice adds
    nothing. A pair that exists already keeps its ratings. Ratings (``import ratings``) are added for their
    annotator; a rating that would make a third rater, or that contradicts the annotator's stored rating of
    the same pair (``rating_conflict``: an import never changes a rating), aborts the whole import with the
    file and line.

    Args:
        queue: put new pairs in the annotation queue. BEIR pairs come with labels and are imported with
            ``queue=False`` unless the user asks for them to be re-rated.
    """
    summary = ImportSummary(source=batch.source, file=batch.file)
    with immediate(db):
        docs = _Keyed(db, "documents", batch.source, batch.file)
        queries = _Keyed(db, "queries", batch.source, batch.file)
        annotators = {row["name"]: row["id"] for row in db.query("SELECT id, name FROM annotators")}
        new_annotators = 0
        created: set[int] = set()
        touched: set[int] = set()
        rated: set[tuple[int, int]] = set()  # (pair, annotator) ratings this import added
        for doc in batch.extra_documents:
            docs.resolve(doc, None)
        for query in batch.extra_queries:
            queries.resolve(query, None)
        for rec in batch.pairs:
            qid = queries.resolve(rec.query, rec.line)
            did = docs.resolve(rec.document, rec.line)
            cursor = db.execute(
                """INSERT INTO pairs (query_id, document_id, source, in_queue, reference_label, hint)
                   VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (query_id, document_id) DO NOTHING""",
                [qid, did, batch.source, int(queue), rec.reference_label, rec.hint],
            )
            if cursor.rowcount:
                pair_id = cursor.lastrowid
                created.add(pair_id)
            else:
                pair_id = next(db.query("SELECT id FROM pairs WHERE query_id = ? AND document_id = ?", [qid, did]))["id"]
                if rec.reference_label is not None:
                    db.execute("UPDATE pairs SET reference_label = ? WHERE id = ?", [rec.reference_label, pair_id])
            touched.add(pair_id)
            if rec.annotator is None or rec.rating is None:
                continue
            if rec.annotator not in annotators:
                annotators[rec.annotator] = db.execute(
                    "INSERT INTO annotators (name, role) VALUES (?, 'annotator')", [rec.annotator]
                ).lastrowid
                new_annotators += 1
            summary.ratings += _import_rating(db, batch.file, rec, pair_id, annotators[rec.annotator], rated)
        summary.pairs, summary.existing_pairs = len(created), len(touched - created)
        summary.documents, summary.queries, summary.annotators = docs.created, queries.created, new_annotators
        record(db, actor=actor, action="import", entity="import", entity_id=None, after=summary.as_dict())
    return summary


def _import_rating(db: Database, file: str, rec: PairRecord, pair_id: int, annotator_id: int,
                   rated: set[tuple[int, int]]) -> int:
    """Add `rec`'s rating and return 1, or 0 when the annotator already gave this pair the same rating.

    `rated` holds the (pair, annotator) ratings this import added, to tell a clash within the file (two rows
    naming one pair differently, by id and by text) from a clash with the database.
    """
    existing = list(db.query("SELECT annotator_id, rating FROM ratings WHERE pair_id = ?", [pair_id]))
    mine = [r for r in existing if r["annotator_id"] == annotator_id]
    if mine:
        if mine[0]["rating"] == rec.rating:
            return 0  # the same label imported again
        if (pair_id, annotator_id) in rated:
            raise InputError("duplicate_rating", file=file, line=rec.line, field="rating", annotator=rec.annotator)
        raise InputError("rating_conflict", file=file, line=rec.line, field="rating", annotator=rec.annotator,
                         stored=mine[0]["rating"], rating=rec.rating)
    if len(existing) >= 2:
        raise InputError("too_many_raters", file=file, line=rec.line, field="annotator", annotator=rec.annotator)
    db.execute("INSERT INTO ratings (pair_id, annotator_id, rating, note) VALUES (?, ?, ?, ?)",
               [pair_id, annotator_id, rec.rating, rec.note or ""])
    rated.add((pair_id, annotator_id))
    return 1
