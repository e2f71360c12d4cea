"""The bundled demo project (`assets/demo/`): a bilingual medical knowledge base, half rated already."""

from __future__ import annotations

import json
from pathlib import Path

from sqlite_utils import Database

from studio.config import DEMO_DIR
from studio.errors import StudioError
from studio.ingest.records import Document, ImportBatch, PairRecord, Query
from studio.store import pairs as store_pairs
from studio.store.annotators import ensure_annotator
from studio.store.imports import ImportSummary, import_batch

# The demo's people: three raters (their ratings ship in ratings.jsonl) and an expert who adjudicates.
DEMO_PEOPLE = (
    ("Dr. Li (李医生)", "annotator"),
    ("Nurse Wang (王护士)", "annotator"),
    ("Dr. Smith", "annotator"),
    ("Prof. Chen (陈教授)", "expert"),
)


def _jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def demo_batches(directory: Path = DEMO_DIR) -> list[ImportBatch]:
    """The demo as import batches: the corpus and candidate pairs, then the ratings already made."""
    docs = {d["_id"]: Document(text=d["text"], key=d["_id"], title=d.get("title", "")) for d in
            _jsonl(directory / "corpus.jsonl")}
    queries = {q["_id"]: Query(text=q["text"], key=q["_id"]) for q in _jsonl(directory / "queries.jsonl")}
    pairs_file = directory / "pairs.jsonl"
    pairs = [PairRecord(queries[p["query_id"]], docs[p["doc_id"]], line=i)
             for i, p in enumerate(_jsonl(pairs_file), start=1)]
    used_docs = {p.document.key for p in pairs}
    used_queries = {p.query.key for p in pairs}
    base = ImportBatch("demo", str(pairs_file), pairs,
                       [d for k, d in docs.items() if k not in used_docs],
                       [q for k, q in queries.items() if k not in used_queries])
    ratings_file = directory / "ratings.jsonl"
    rated = ImportBatch("demo", str(ratings_file), [
        PairRecord(queries[r["query_id"]], docs[r["doc_id"]], line=i, annotator=r["annotator"],
                   rating=int(r["rating"]), note=r.get("note", ""))
        for i, r in enumerate(_jsonl(ratings_file), start=1)
    ])
    return [base, rated]


def load_demo(db: Database, directory: Path = DEMO_DIR, *, actor: str = "demo") -> ImportSummary:
    """Load the demo project into an empty database (refuses a database that has data); audited under `actor`."""
    if not store_pairs.is_empty(db):
        raise StudioError("database_not_empty")
    for name, role in DEMO_PEOPLE:
        ensure_annotator(db, name, role, actor=actor)
    base, rated = demo_batches(directory)
    summary = import_batch(db, base, actor=actor)
    summary.ratings = import_batch(db, rated, actor=actor).ratings
    return summary
