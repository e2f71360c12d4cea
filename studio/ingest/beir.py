"""Read a BEIR dataset directory: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``."""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Generic, TypeVar

from studio.errors import InputError
from studio.ingest.delimited import check_header
from studio.ingest.fields import Where, get_id, get_text
from studio.ingest.files import check_file, iter_lines, open_bytes
from studio.ingest.json_files import iter_jsonl, iter_jsonl_at, read_jsonl_line
from studio.ingest.records import Document, ImportBatch, Origin, PairRecord, Query

QRELS_COLUMNS = ("query-id", "corpus-id", "score")
_INTEGER = re.compile(r"[+-]?[0-9]+")


def read_beir(directory: str | Path, split: str = "test", min_relevant: int = 1, *,
              stream: bool = False) -> ImportBatch:
    """Read a BEIR dataset; each qrels row becomes a pair whose ``reference_label`` is the graded qrel.

    Label rule: a score below `min_relevant` is 0 (irrelevant). At or above it, a pair is relevant: 2,
    except that when the qrels are graded (some score in the file is 2 or more) the score is kept,
    capped at 2, so a 1 stays "partially relevant". Corpus documents and queries that no qrels row
    references go to ``extra_documents`` / ``extra_queries``, so the whole corpus can be searched.

    Args:
        directory: the dataset folder.
        split: which qrels file to read, e.g. ``"test"`` or ``"dev"``.
        min_relevant: the lowest score that counts as relevant.
        stream: check all three files now but keep only the ids of the corpus and queries (with where each
            line starts) and the qrels rows; documents and queries are read again from their files as the
            import asks for them, in the same order as without `stream`. Memory then grows with the number
            of ids and qrels, not with the texts.

    Raises:
        InputError: ``dir_not_found``, ``not_directory``, ``file_not_found``, ``no_qrels``, ``duplicate_id``,
            ``unknown_query``, ``unknown_document``, ``bad_score``, ``duplicate_column`` (a qrels header naming
            a column twice), ``nul_byte`` and the line errors of JSON Lines.
    """
    root = Path(directory)
    if root.is_file():
        raise InputError("not_directory", file=str(root))
    if not root.is_dir():
        raise InputError("dir_not_found", file=str(root))
    corpus_path, queries_path = root / "corpus.jsonl", root / "queries.jsonl"
    qrels_path = root / "qrels" / f"{split}.tsv"
    for path in (corpus_path, queries_path):
        check_file(path)
    if not qrels_path.is_file():
        raise InputError("no_qrels", file=str(qrels_path), split=split, path=str(qrels_path))
    if stream:
        return _streamed(root, _Index(corpus_path, _document), _Index(queries_path, _query), qrels_path,
                         min_relevant)

    documents = _read_corpus(corpus_path)
    queries = _read_queries(queries_path)
    qrels = _read_qrels(qrels_path, queries, documents)
    label = _labeller(qrels, min_relevant)
    batch = ImportBatch("beir", str(root))
    for line, query_id, doc_id, score in qrels:
        batch.pairs.append(PairRecord(queries[query_id], documents[doc_id], line=line, reference_label=label(score)))
    used_queries = {query_id for _, query_id, _, _ in qrels}
    used_documents = {doc_id for _, _, doc_id, _ in qrels}
    batch.extra_queries = [q for key, q in queries.items() if key not in used_queries]
    batch.extra_documents = [d for key, d in documents.items() if key not in used_documents]
    return batch


def _labeller(qrels: list[tuple[int, str, str, int]], min_relevant: int) -> Callable[[int], int]:
    """The reference label of a qrels score (see :func:`read_beir`): graded when some score is 2 or more."""
    graded = any(score >= 2 for *_, score in qrels)
    return lambda score: 0 if score < min_relevant else (min(score, 2) if graded else 2)


def _streamed(root: Path, documents: _Index, queries: _Index, qrels_path: Path, min_relevant: int) -> ImportBatch:
    """The streamed batch of :func:`read_beir` over indexes of the corpus and queries."""
    qrels = _read_qrels(qrels_path, queries, documents)
    label = _labeller(qrels, min_relevant)
    used_queries = {query_id for _, query_id, _, _ in qrels}
    used_documents = {doc_id for _, _, doc_id, _ in qrels}

    def pairs() -> Iterator[PairRecord]:
        with documents.opened(), queries.opened():
            for line, query_id, doc_id, score in qrels:
                yield PairRecord(queries.get(query_id), documents.get(doc_id), line=line,
                                 reference_label=label(score))

    return ImportBatch("beir", str(root), pairs(), documents.items(skip=used_documents),
                       queries.items(skip=used_queries))


Item = TypeVar("Item", Document, Query)


class _Index(Generic[Item]):
    """The ids of a BEIR JSON Lines file (corpus or queries), checked, each with its line and where it starts.

    Items are read again from the file when asked for (:meth:`get` inside :meth:`opened`, :meth:`items`), so
    memory holds ids, not texts.
    """

    def __init__(self, path: Path, parse: Callable[[dict, Where, Container[str]], Item]):
        self.path, self.name, self.parse = path, str(path), parse
        self.at: dict[str, tuple[int, int]] = {}  # id -> (line, byte offset)
        self.file: BinaryIO | None = None
        self.last: Item | None = None  # qrels name one query many times in a row
        for line, offset, obj in iter_jsonl_at(path):
            item = parse(obj, Where(self.name, line), self.at)
            self.at[item.key] = (line, offset)
        if not self.at:
            raise InputError("no_rows", file=self.name)

    def __contains__(self, key: object) -> bool:
        return key in self.at

    @contextmanager
    def opened(self) -> Iterator[None]:
        """Keep the file open for :meth:`get`."""
        try:
            with open_bytes(self.path) as self.file:
                yield
        finally:
            self.file = None

    def get(self, key: str) -> Item:
        """The item with id `key`, read again from its line."""
        if self.last is not None and self.last.key == key:
            return self.last
        line, offset = self.at[key]
        item = self.parse(read_jsonl_line(self.file, self.name, line, offset), Where(self.name, line), ())
        if item.key != key:
            raise InputError("unreadable", file=self.name, line=line, detail="the file changed while it was imported")
        self.last = item
        return item

    def items(self, skip: Container[str] = ()) -> Iterator[Item]:
        """Every item in file order, read again, except those whose id is in `skip`."""
        for line, obj in iter_jsonl(self.path):
            item = self.parse(obj, Where(self.name, line), ())
            if item.key not in skip:
                yield item


def _document(obj: dict, at: Where, seen: Container[str]) -> Document:
    """A corpus line's document; ``duplicate_id`` when its id is in `seen`."""
    key = get_id(obj, "_id", at, required=True)
    if key in seen:
        raise at.error("duplicate_id", "_id", key=key)
    title = get_text(obj, "title", at, required=False)
    text = get_text(obj, "text", at, required=False) or title
    if not text:
        raise at.error("empty_text", "text")
    return Document(text, key=key, title=title, origin=Origin(at.file, at.line, "_id"))


def _query(obj: dict, at: Where, seen: Container[str]) -> Query:
    """A queries line's query; ``duplicate_id`` when its id is in `seen`."""
    key = get_id(obj, "_id", at, required=True)
    if key in seen:
        raise at.error("duplicate_id", "_id", key=key)
    return Query(get_text(obj, "text", at), key=key, origin=Origin(at.file, at.line, "_id"))


def _read_corpus(path: Path) -> dict[str, Document]:
    documents: dict[str, Document] = {}
    for line, obj in iter_jsonl(path):
        document = _document(obj, Where(str(path), line), documents)
        documents[document.key] = document
    if not documents:
        raise InputError("no_rows", file=str(path))
    return documents


def _read_queries(path: Path) -> dict[str, Query]:
    queries: dict[str, Query] = {}
    for line, obj in iter_jsonl(path):
        query = _query(obj, Where(str(path), line), queries)
        queries[query.key] = query
    if not queries:
        raise InputError("no_rows", file=str(path))
    return queries


def _read_qrels(path: Path, queries: Container[str], documents: Container[str]) -> list[tuple[int, str, str, int]]:
    """Rows ``(line, query id, doc id, score)``; the header is optional (its third column is no integer)."""
    rows: list[tuple[int, str, str, int]] = []
    seen: dict[tuple[str, str], int] = {}
    first = True
    for line, text in iter_lines(path):
        if not text.strip():
            continue
        at = Where(str(path), line)
        cells = text.rstrip("\r\n").split("\t")
        if len(cells) < 3:  # tolerate space-separated qrels
            cells = text.split()
        cells = [cell.strip() for cell in cells]
        for index, cell in enumerate(cells):
            if "\x00" in cell:
                raise at.error("nul_byte", QRELS_COLUMNS[index] if index < len(QRELS_COLUMNS) else None)
        is_header = first and len(cells) >= 3 and not _INTEGER.fullmatch(cells[2])
        first = False
        if is_header:
            check_header(str(path), line, cells)
            continue
        if len(cells) < 3:
            raise at.error("missing_field", QRELS_COLUMNS[len(cells)])
        query_id, doc_id, score = cells[:3]
        if query_id not in queries:
            raise at.error("unknown_query", "query-id", key=query_id)
        if doc_id not in documents:
            raise at.error("unknown_document", "corpus-id", key=doc_id)
        if not _INTEGER.fullmatch(score):
            raise at.error("bad_score", "score", value=score)
        pair, value = (query_id, doc_id), int(score)
        if pair in seen:
            if seen[pair] != value:  # a repeated row is harmless; two different scores are ambiguous
                raise at.error("duplicate_id", "corpus-id", key=f"{query_id} / {doc_id}")
            continue
        seen[pair] = value
        rows.append((line, query_id, doc_id, value))
    if not rows:
        raise InputError("no_rows", file=str(path))
    return rows
