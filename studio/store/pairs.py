"""Read access to corpus, queries and pairs, and adding candidate pairs found by retrieval."""

from __future__ import annotations

from sqlite_utils import Database

from studio.store.audit import record
from studio.store.connection import immediate


def counts(db: Database) -> dict:
    """Sizes of the project: documents, queries, pairs, annotators, ratings, adjudications."""
    tables = ("documents", "queries", "pairs", "annotators", "ratings", "adjudications")
    return {t: next(db.query(f"SELECT count(*) AS n FROM {t}"))["n"] for t in tables}


def is_empty(db: Database) -> bool:
    """True when nothing has been imported yet (first launch)."""
    c = counts(db)
    return c["documents"] == 0 and c["queries"] == 0


def corpus(db: Database) -> list[dict]:
    """All documents: id, key, title, text."""
    return list(db.query("SELECT id, key, title, text FROM documents ORDER BY id"))


def queries(db: Database) -> list[dict]:
    """All queries: id, key, text."""
    return list(db.query("SELECT id, key, text FROM queries ORDER BY id"))


def add_candidate_pairs(db: Database, candidates: list[tuple[int, int]], source: str,
                        actor: str = "pool") -> int:
    """Add (query_id, document_id) candidates to the annotation queue; existing pairs are left alone.

    Returns how many new pairs were added.
    """
    added = 0
    with immediate(db):
        for query_id, document_id in candidates:
            cursor = db.execute(
                "INSERT INTO pairs (query_id, document_id, source) VALUES (?, ?, ?) "
                "ON CONFLICT (query_id, document_id) DO NOTHING", [query_id, document_id, source])
            added += cursor.rowcount
        record(db, actor=actor, action="pool", entity="pairs", entity_id=None,
               after={"source": source, "candidates": len(candidates), "added": added})
    return added
