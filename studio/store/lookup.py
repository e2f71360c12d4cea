"""Lookups for the demo views (the searchable corpus, example queries, gold labels by query text) and putting a shown
result in the annotation queue."""

from __future__ import annotations

from sqlite_utils import Database

from studio.errors import NotFoundError
from studio.ingest.records import Document, ImportBatch, PairRecord, Query
from studio.records import document_text
from studio.store.imports import import_batch, text_hash


def searchable_corpus(db: Database) -> tuple[list[str], list[str], dict[str, dict]]:
    """(document keys, texts to embed, key → {title, text}) for the whole corpus."""
    rows = list(db.query("SELECT key, title, text FROM documents ORDER BY id"))
    return ([r["key"] for r in rows], [document_text(r["title"], r["text"]) for r in rows],
            {r["key"]: {"title": r["title"], "text": r["text"]} for r in rows})


def example_queries(db: Database, limit: int = 12) -> list[str]:
    """Queries that have gold labels (the ones a demo can show badges for), most labelled first."""
    return [r["text"] for r in db.query(
        """SELECT q.text, count(*) AS n FROM gold g JOIN queries q ON q.id = g.query_id
           WHERE g.label IS NOT NULL GROUP BY q.id ORDER BY n DESC, q.id LIMIT ?""", [limit])]


def query_keys(db: Database, query: str) -> list[str]:
    """The keys of the stored queries with this text (white space around it aside), oldest first."""
    return [r["key"] for r in db.query("SELECT key FROM queries WHERE text_hash = ? ORDER BY id", [text_hash(query)])]


def gold_for_query(db: Database, query: str) -> dict[str, int]:
    """Document key → gold label for the stored query with this text (empty for a new query)."""
    return {r["key"]: r["label"] for r in db.query(
        """SELECT d.key, g.label FROM gold g JOIN queries q ON q.id = g.query_id JOIN documents d ON d.id = g.document_id
           WHERE q.text_hash = ? AND g.label IS NOT NULL""", [text_hash(query)])}


def queue_pair(db: Database, query: str, doc_key: str, actor: str = "compare") -> bool:
    """Put (query, document) into the annotation queue, creating the query if it is new. True if the pair is new.

    The import it makes is audited under `actor` (source ``compare``).

    Raises:
        NotFoundError: ``document_not_found`` when no document has the key `doc_key`.
    """
    doc = next(db.query("SELECT key, title, text FROM documents WHERE key = ?", [doc_key]), None)
    if doc is None:
        raise NotFoundError("document_not_found", key=doc_key)
    summary = import_batch(db, ImportBatch("compare", "compare", [
        PairRecord(Query(query.strip()), Document(doc["text"], doc["key"], doc["title"]), line=1)]), actor=actor)
    return summary.pairs == 1
