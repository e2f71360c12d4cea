"""BM25 over the corpus with bm25s and the studio's mixed-language tokenizer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from studio.retrieval.tokenize import tokenize


class BM25Index:
    """A BM25 index over `texts`; :meth:`search` returns (position, score) pairs, best first."""

    def __init__(self, texts: Sequence[str]):
        import bm25s

        self.size = len(texts)
        self._retriever = bm25s.BM25()
        # An empty document still needs a token, or bm25s drops it and positions shift.
        self._retriever.index([tokenize(t) or ["\x00"] for t in texts], show_progress=False)

    def search(self, query: str, k: int = 10) -> list[tuple[int, float]]:
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[tuple[int, float]]]:
        """Top-`k` documents for each query; documents with score 0 (no shared term) are left out."""
        k = min(k, self.size)
        if k == 0:
            return [[] for _ in queries]
        vocab = self._retriever.vocab_dict
        tokens = [[t for t in tokenize(q) if t in vocab] or ["\x00"] for q in queries]
        docs, scores = self._retriever.retrieve(tokens, k=k, show_progress=False)
        out = []
        for row_docs, row_scores in zip(np.asarray(docs), np.asarray(scores)):
            out.append([(int(d), float(s)) for d, s in zip(row_docs, row_scores) if s > 0])
        return out
