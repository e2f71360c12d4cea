"""BM25 over the corpus with bm25s and the studio's mixed-language tokenizer.

An index can be saved to a folder (:meth:`BM25Index.save`) and loaded back memory-mapped (:meth:`BM25Index.load`):
the loaded index scores and ranks exactly as the one that was built (bm25s's own arrays, the same vocabulary). A
project's saved index, one per corpus version, is :func:`studio.retrieval.bm25_store.project_bm25`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from studio.retrieval.tokenize import tokenize


class BM25Index:
    """A BM25 index over `texts`; :meth:`search` returns (position, score) pairs, best first."""

    def __init__(self, texts: Iterable[str], *, _retriever=None, _size: int | None = None):
        import bm25s

        if _retriever is not None:  # :meth:`load`
            self._retriever, self.size = _retriever, int(_size)
            return
        # An empty document still needs a token, or bm25s drops it and positions shift.
        tokens = [tokenize(t) or ["\x00"] for t in texts]
        self.size = len(tokens)
        self._retriever = bm25s.BM25()
        self._retriever.index(tokens, show_progress=False)

    def save(self, folder: str | Path) -> None:
        """Write the index's arrays (.npy), vocabulary and parameters into `folder` (bm25s's format)."""
        self._retriever.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: str | Path, size: int, *, mmap: bool = True) -> BM25Index:
        """The index :meth:`save` wrote to `folder` over `size` documents, its arrays memory-mapped (`mmap`): pages
        are read from disk when a query touches them and shared between processes."""
        import bm25s

        retriever = bm25s.BM25.load(str(folder), mmap=mmap, show_progress=False)
        if int(retriever.scores["num_docs"]) != size:
            raise ValueError(f"{folder}: the saved index has {retriever.scores['num_docs']} documents, not {size}")
        return cls((), _retriever=retriever, _size=size)

    def search(self, query: str, k: int = 10) -> list[tuple[int, float]]:
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[tuple[int, float]]]:
        """Top-`k` documents for each query; documents with score 0 (no shared term) are left out."""
        k = min(k, self.size)
        if k == 0:
            return [[] for _ in queries]
        vocab = self._retriever.vocab_dict
        tokens = [[t for t in tokenize(q) if t in vocab] for q in queries]
        # a query sharing no term finds nothing (bm25s would rank the empty documents)
        asked = [i for i, t in enumerate(tokens) if t]
        out: list[list[tuple[int, float]]] = [[] for _ in queries]
        if not asked:
            return out
        docs, scores = self._retriever.retrieve([tokens[i] for i in asked], k=k, show_progress=False)
        for i, row_docs, row_scores in zip(asked, np.asarray(docs), np.asarray(scores)):
            out[i] = [(int(d), float(s)) for d, s in zip(row_docs, row_scores) if s > 0]
        return out
