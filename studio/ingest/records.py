"""Normalised records that every reader produces and the store imports.

Readers only parse and validate; `studio.store.imports` writes these records to the database in one
transaction. Keeping the two apart means a bad row is found before anything is written — or, for a streamed
batch (``stream=True``), before that transaction commits: a bad row rolls the whole import back.

The records are values: nothing changes one after it is made. They are slotted, not frozen, dataclasses
because a reader makes three per row, and a frozen one costs about three times as much to build (a million-line
import spent 3 s on it; bench/annotate_store.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Origin:
    """Where a document or query was read (file, 1-based line, field), for errors found only at import time."""

    file: str
    line: int | None = None
    field: str | None = None


@dataclass(slots=True)
class Document:
    """A corpus document. `key` is the external id (``doc_id`` / BEIR ``_id``), or None to key by text.

    `text` None makes it a reference to a document already in the database by `key` (a rating given by ids).

    `origin` says where the document was read when a reader knows better than its pair's line and the
    ``doc_id`` field (a BEIR ``corpus.jsonl`` line, a log's ``retrieved_docs[i]``); it takes no part in comparisons.
    """

    text: str | None
    key: str | None = None
    title: str = ""
    origin: Origin | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class Query:
    """A query. `key` is the external id (``query_id`` / BEIR ``_id``), or None to key by text.

    `text` None: a reference by `key`, as for :class:`Document`. `origin`: as there (a BEIR ``queries.jsonl`` line).
    """

    text: str | None
    key: str | None = None
    origin: Origin | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class PairRecord:
    """A query/document pair to annotate, optionally with a rating made elsewhere or a reference label.

    Attributes:
        line: 1-based line number in the source file (for error messages at import time).
        annotator / rating: set by ``import ratings``; the rating is 0, 1 or 2.
        note: the annotator's note, if any.
        reference_label: a gold label that came with the data (BEIR qrels), 0/1/2.
        hint: a weak prior from RAG logs ("helpful" -> 2, "unclicked low rank" -> 0); never shown to
            annotators, kept so analysts can compare it with the human labels.
    """

    query: Query
    document: Document
    line: int = 0
    annotator: str | None = None
    rating: int | None = None
    note: str = ""
    reference_label: int | None = None
    hint: int | None = None


@dataclass
class ImportBatch:
    """What one reader produced from one source: pairs plus corpus/queries that have no pair yet.

    The three collections are lists, except in a streamed batch (a reader's ``stream=True``), where any of them
    may be an iterator read once, by :func:`studio.store.imports.import_batch`, in the order extra documents,
    extra queries, pairs; such an iterator raises the reader's :class:`~studio.errors.InputError` when it reaches
    the bad line, inside the import's transaction.
    """

    source: str
    file: str
    pairs: Iterable[PairRecord] = field(default_factory=list)
    extra_documents: Iterable[Document] = field(default_factory=list)
    extra_queries: Iterable[Query] = field(default_factory=list)
