"""Interactive search for the side-by-side demo: one query, several retrievers, milliseconds per query.

Every in-memory index is keyed by the corpus it covers. A project's corpus comes as a
:class:`studio.retrieval.corpus_index.CorpusTexts` (its ``corpus`` names the database file and the corpus version
that triggers keep), so the key is (database, corpus version[, model fingerprint]) and a query neither reads nor
hashes the corpus; plain lists of texts (tests, the playground) are keyed by a hash of the texts as before.
Corpus embeddings come from the on-disk cache (studio.retrieval.cache) when an index is built, once per model and
corpus version; after that only the query is encoded. The BM25 index stays in memory per corpus the same way.
A BGE-M3 model's ``sparse`` mode keeps the corpus's lexical weights as one sparse matrix per model and corpus, and
a TREC run file's ranking is read for the query's key (:func:`search_run`).

Within :func:`one_query` (⑨ runs both sides in one), each model encodes the query once and BM25 runs once per
corpus: the two sides share them. Whole systems (fusion, reranker) are searched by
:mod:`studio.retrieval.system_search`; each kind of first stage picks its search here (:mod:`studio.retrieval.stages`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.errors import StudioError
from studio.ingest.trec import load_run
from studio.recent import Recent
from studio.retrieval import ann, m3
from studio.retrieval.bm25 import BM25Index
from studio.retrieval.bm25_store import project_bm25
from studio.retrieval.cache import corpus_fingerprint, model_fingerprint
from studio.retrieval.corpus_index import CorpusIndex, CorpusTexts, KeyList
from studio.retrieval.dense import DenseIndex, encode, load_embedder, resolve_model, top_k
from studio.retrieval.vector_store import project_vectors
from studio.store import opened
from studio.store.lookup import example_queries

MAX_SPARSE = 2

_indexes: Recent[DenseIndex] = Recent(4)
_bm25: Recent[BM25Index] = Recent(2, once=True)  # two first queries on a new corpus build its BM25 index once
_sparse: Recent[tuple] = Recent(MAX_SPARSE)
SHARED_BM25_DEPTH = 100  # inside one_query(), BM25 ranks this deep once (a fusion's depth) and each side slices it
_memo: ContextVar[dict | None] = ContextVar("studio_one_query", default=None)


@dataclass(frozen=True)
class Hit:
    rank: int
    doc_key: str
    score: float


@contextmanager
def one_query() -> Iterator[None]:
    """Within this block (one ⑨ response), each model encodes a query once, each dense index scores it once and BM25
    ranks it once per corpus (:data:`SHARED_BM25_DEPTH` deep): both sides share them. The time is counted on the
    side that ran it first."""
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)


def _shared(key: Hashable, compute: Callable[[], object]) -> object:
    """`compute()`'s value, kept for the rest of the :func:`one_query` block (computed each time outside one)."""
    memo = _memo.get()
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def corpus_key(texts: Sequence[str]) -> Hashable:
    """What identifies the corpus `texts`: a project corpus's (database, inode, version); otherwise a hash of the
    texts (a list given directly)."""
    if isinstance(texts, CorpusTexts):
        return ("corpus", *texts.corpus.key)
    return corpus_fingerprint(texts)


def index_for(model: str, keys: list[str], texts: Sequence[str]) -> DenseIndex:
    """The in-memory index of `model` over this corpus; rebuilt when the model's weights or the corpus change (for
    a project's corpus: its version). A project's corpus of :data:`studio.config.ANN_MIN_DOCUMENTS` documents or
    more also gets an approximate index (:attr:`StoredIndex.ann`)."""
    name = resolve_model(model)

    def build() -> DenseIndex:
        index = _stored_index(texts.corpus, name) if isinstance(texts, CorpusTexts) else None
        if index is None:
            index = DenseIndex(texts, name)
        index.keys = keys
        return index

    fingerprint, corpus = model_fingerprint(name), corpus_key(texts)
    if isinstance(texts, CorpusTexts):  # one version per (database, model): an older one's matrix goes first
        _indexes.discard(lambda key: key[0] == fingerprint and key[1][:3] == corpus[:3] and key[1] != corpus)
    return _indexes.get((fingerprint, corpus), build)


class StoredIndex(DenseIndex):
    """A project's vectors from its vector store (exact search), with their document ids and, from
    :data:`studio.config.ANN_MIN_DOCUMENTS` documents, the approximate index :func:`search` uses instead
    (:mod:`studio.retrieval.ann`; None: exact)."""

    ids: np.ndarray
    ann: ann.AnnIndex | None = None


def _stored_index(corpus: CorpusIndex, name: str) -> DenseIndex | None:
    """A project's vectors under the resolved model `name` from its vector store (only new or changed documents
    encoded: :func:`studio.retrieval.vector_store.project_vectors`), as a :class:`StoredIndex` in the corpus's id
    order, with its approximate index above the threshold (built, loaded or updated here, before any query's clock);
    None when the store answered for another corpus version (an edit in between: the texts are encoded)."""
    ids, matrix = project_vectors(corpus.db_path, name)
    if len(ids) != len(corpus) or not np.array_equal(ids, corpus.ids):
        return None
    index = StoredIndex([], name)
    index.embeddings, index.size, index.ids = matrix, len(ids), ids
    index.ann = ann.for_vectors(corpus.db_path, name, ids, matrix, lambda: _project_queries(corpus, name))
    return index


def _project_queries(corpus: CorpusIndex, name: str) -> np.ndarray:
    """Up to :data:`studio.retrieval.ann.RECALL_QUERIES` of the project's labelled queries, encoded by `name`: what
    an approximate index's recall is measured on."""
    with opened(corpus.db_path) as db:
        texts = example_queries(db, ann.RECALL_QUERIES)
    return encode(texts, name) if texts else np.zeros((0, 1), dtype=np.float32)


def approximate(model: str, keys: list[str], texts: Sequence[str]) -> ann.Quality | None:
    """How :func:`search` searches `model` over this corpus when not exactly: the approximate index's kind, lists
    probed and recall@10 against exact search (``.describe()``: the line ⑨ shows); None for exact search."""
    index = index_for(model, keys, texts)
    found = getattr(index, "ann", None)
    return found.quality if found is not None else None


def search(model: str, query: str, keys: list[str], texts: Sequence[str], k: int = 10) -> tuple[list[Hit], float]:
    """Top-`k` documents for `query` by cosine similarity, and the milliseconds the search took (query encoding
    included, unless another side of the same :func:`one_query` already encoded it; corpus encoding and model
    loading excluded). Exact over every vector, or through the approximate index of a large project's corpus
    (:func:`approximate` says which, and its recall@10); the scores are exact cosines either way."""
    index = index_for(model, keys, texts)
    load_embedder(model)  # corpus vectors read from the disk cache leave the model unloaded until now
    name = resolve_model(model)
    t0 = time.perf_counter()
    vector = _shared(("encode", name, query), lambda: encode([query], name))
    found = None
    if getattr(index, "ann", None) is not None and index.size:
        found = _shared(("ann", id(index), query, k),
                        lambda: index.ann.search(vector, index.embeddings, k, index.ids))
    if found is not None:
        order, top = found[0][0], found[1][0]
        hits = [Hit(i + 1, index.keys[j], float(s)) for i, (j, s) in enumerate(zip(order, top)) if j >= 0]
    else:  # exact (or an approximate index that has moved on to a newer corpus version than this one)
        scores = _shared(("dense", id(index), query), lambda: vector @ index.embeddings.T)
        order = top_k(scores, k)[0] if index.size else []
        hits = [Hit(i + 1, index.keys[j], float(scores[0, j])) for i, j in enumerate(order)]
    ms = (time.perf_counter() - t0) * 1000
    return hits, ms


def bm25_index_for(texts: Sequence[str]) -> BM25Index:
    """The in-memory BM25 index over this corpus (the studio's tokenizer); rebuilt when the corpus changes (for a
    project's corpus: its version; otherwise any text)."""
    def build() -> BM25Index:
        index = _stored_bm25(texts.corpus) if isinstance(texts, CorpusTexts) else None
        return index if index is not None else BM25Index(texts)

    return _bm25.get(corpus_key(texts), build)


def _stored_bm25(corpus: CorpusIndex) -> BM25Index | None:
    """A project's saved BM25 index (:func:`studio.retrieval.bm25_store.project_bm25`: built once per corpus
    version, memory-mapped); None when it answered for another corpus version (the texts are indexed)."""
    ids, index = project_bm25(corpus.db_path, corpus)
    return index if len(ids) == len(corpus) and np.array_equal(ids, corpus.ids) else None


def search_bm25(query: str, keys: list[str], texts: Sequence[str], k: int = 10) -> tuple[list[Hit], float]:
    """Top-`k` documents for `query` by BM25 (documents sharing no term with it are left out), and the milliseconds
    the search took (index building excluded). Inside :func:`one_query` the ranking is shared by both sides."""
    index = bm25_index_for(texts)
    t0 = time.perf_counter()
    if _memo.get() is None:
        ranked = index.search(query, k)
    else:
        memo_key = ("bm25", id(index), query)
        depth, ranked = _shared(memo_key, lambda: (max(k, SHARED_BM25_DEPTH),
                                                   index.search(query, max(k, SHARED_BM25_DEPTH))))
        if k > depth:  # deeper than shared: rank again, and keep the deeper one
            ranked = index.search(query, k)
            _memo.get()[memo_key] = (k, ranked)
        ranked = ranked[:k]
    ms = (time.perf_counter() - t0) * 1000
    return [Hit(i + 1, keys[pos], score) for i, (pos, score) in enumerate(ranked)], ms


# -------------------------------------------------------------------------------------------------- run files

def search_run(path: str, query_keys: Sequence[str], keys: list[str], k: int = 10) -> tuple[list[Hit], int]:
    """The top `k` documents that the corpus (`keys`) has in the run file at `path` for the first of `query_keys`
    it ranks, by the file's scores (ties: document key), and how many of the file's documents were skipped on the
    way because the corpus lacks them.

    Raises:
        StudioError: ``run_no_ranking`` when the file ranks none of `query_keys` (none: a new query).
    """
    trec = load_run(Path(path))
    query_key = next((q for q in query_keys if q in trec.run), None)
    if query_key is None:
        raise StudioError("run_no_ranking", file=trec.name)
    known = keys.position if isinstance(keys, KeyList) else set(keys)  # a project's keys: kept per version
    hits: list[Hit] = []
    skipped = 0
    for doc, score in trec.ranking(query_key):
        if len(hits) == k:
            break
        if doc in known:
            hits.append(Hit(len(hits) + 1, doc, float(score)))
        else:
            skipped += 1
    return hits, skipped


# ----------------------------------------------------------------------------------------- BGE-M3 sparse mode

def sparse_index_for(model: str, texts: Sequence[str]) -> tuple:
    """The corpus's BGE-M3 lexical weights as (CSR matrix documents × tokens, token → column), kept in memory per
    model and corpus; encoded chunk by chunk as :func:`studio.retrieval.m3.score_corpus` does."""
    return _sparse.get((model_fingerprint(model), corpus_key(texts)), lambda: _sparse_matrix(model, texts))


def _sparse_matrix(model: str, texts: Sequence[str]) -> tuple:
    from scipy.sparse import csr_matrix  # ~0.1 s to import: only for a BGE-M3 model's sparse mode

    vocab: dict[str, int] = {}
    data: list[float] = []
    cols: list[int] = []
    ptr = [0]
    for start in range(0, len(texts), m3.CHUNK_DOCUMENTS):
        for weights in m3.encode(texts[start:start + m3.CHUNK_DOCUMENTS], model, queries=False,
                                 mode="sparse").sparse:
            for token, w in weights.items():
                cols.append(vocab.setdefault(token, len(vocab)))
                data.append(w)
            ptr.append(len(cols))
    matrix = csr_matrix((np.asarray(data, dtype=np.float64), np.asarray(cols, dtype=np.int64), ptr),
                        shape=(len(texts), max(len(vocab), 1)))
    return matrix, vocab


def search_sparse(model: str, query: str, keys: list[str], texts: Sequence[str], k: int = 10) -> tuple[list[Hit], float]:
    """Top-`k` documents by BGE-M3's lexical matching score ``Σ_t w_q(t) · w_d(t)`` (the ``sparse`` mode, exact
    over the corpus, as evaluation scores it), and the milliseconds the query took (query encoding included)."""
    matrix, vocab = sparse_index_for(model, texts)
    m3.load_m3(model)
    t0 = time.perf_counter()
    weights = m3.encode([query], model, queries=True, mode="sparse").sparse[0]
    vector = np.zeros(matrix.shape[1], dtype=np.float64)
    for token, w in weights.items():
        if token in vocab:
            vector[vocab[token]] += w
    scores = np.asarray(matrix @ vector).reshape(1, -1)
    order = top_k(scores, k)[0] if len(texts) else []
    ms = (time.perf_counter() - t0) * 1000
    return [Hit(i + 1, keys[j], float(scores[0, j])) for i, j in enumerate(order)], ms


def rank_moves(left: list[Hit], right: list[Hit]) -> dict[str, int | None]:
    """For each document on the left, how many places it moved up compared with the right (None: not there)."""
    other = {h.doc_key: h.rank for h in right}
    return {h.doc_key: (other[h.doc_key] - h.rank) if h.doc_key in other else None for h in left}
