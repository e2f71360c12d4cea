"""Read the gold labels out of the database as a GoldSet."""

from __future__ import annotations

from sqlite_utils import Database

from studio.records import GoldSet, document_text, fingerprint


def gold_set(db: Database) -> GoldSet:
    """Every gold label (agreed, adjudicated or imported), with the whole corpus for mining."""
    corpus = {r["key"]: document_text(r["title"], r["text"]) for r in db.query("SELECT key, title, text FROM documents")}
    labels: dict[str, dict[str, int]] = {}
    queries: dict[str, str] = {}
    for row in db.query(
        """SELECT q.key AS qkey, q.text AS query, d.key AS dkey, g.label FROM gold g
           JOIN queries q ON q.id = g.query_id JOIN documents d ON d.id = g.document_id
           WHERE g.label IS NOT NULL ORDER BY q.key, d.key"""):
        queries[row["qkey"]] = row["query"]
        labels.setdefault(row["qkey"], {})[row["dkey"]] = row["label"]
    return GoldSet(queries, corpus, labels, fingerprint(queries, corpus, labels))
