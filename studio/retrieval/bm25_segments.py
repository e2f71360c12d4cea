"""BM25 over segments of raw postings, scored at query time with the whole corpus's statistics: the same scores as
bm25s's index over the same documents, and a corpus that grows by a segment instead of a rebuild.

bm25s (``studio.retrieval.bm25``) precomputes each (document, term) score, which bakes the corpus size, every
term's document frequency and the mean document length into every stored number: one added document changes them
all, so its index is rebuilt from the texts (≥ 200 s at a million documents). A :class:`Segment` stores what does not
change — per term the documents that hold it and how often (``tf``), per document its length — and
:class:`SegmentedBM25` scores a query over any set of segments with the statistics of the documents that are live
now (``N``, ``df`` of the query's terms counted over live postings, mean length), Lucene's formula as bm25s computes
it (:data:`K1`, :data:`B`, ``idf = ln(1 + (N − df + 0.5) / (df + 0.5))``, ``tf / (tf + K1 · (1 − B + B · len /
avglen))``), a query term counted as often as it occurs. Adding documents is one new segment; a deleted or edited
document is masked in its old segment (its edit lives in a new one). Scores equal a fresh bm25s index's to float32
rounding; ties are broken by corpus position.

A segment is built streaming (token ids and counts in compact arrays, never one list of tokens per document) and
saved as ``.npy`` files plus its vocabulary, loaded memory-mapped.
"""

from __future__ import annotations

import json
import math
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.retrieval.tokenize import tokenize

K1 = 1.5  # bm25s's defaults (method "lucene"): the studio's BM25 numbers so far were computed with them
B = 0.75
EMPTY_TOKEN = "\x00"  # an empty document still counts one token, as BM25Index gives bm25s


@dataclass(eq=False)
class Segment:
    """Documents ``ids`` (int64, the order of their rows here) with content ``hashes``, their token ``lengths``,
    and postings: term ``vocab[t]`` → rows ``indptr[v]:indptr[v + 1]`` of ``docs`` (local document row) and
    ``tfs`` (its count in that document)."""

    ids: np.ndarray
    hashes: np.ndarray
    lengths: np.ndarray
    vocab: dict[str, int]
    indptr: np.ndarray
    docs: np.ndarray
    tfs: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, documents: Iterable[tuple[int, str, str]]) -> Segment:
        """A segment over `documents` — (id, content hash, text) — tokenized with the studio's tokenizer."""
        vocab: dict[str, int] = {}
        ids, hashes = array("q"), []
        lengths, terms, docs, tfs = array("i"), array("i"), array("i"), array("i")
        for row, (doc_id, content_hash, text) in enumerate(documents):
            tokens = tokenize(text) or [EMPTY_TOKEN]
            ids.append(doc_id)
            hashes.append(content_hash)
            lengths.append(len(tokens))
            for term, count in Counter(tokens).items():
                terms.append(vocab.setdefault(term, len(vocab)))
                docs.append(row)
                tfs.append(count)
        term_rows = np.frombuffer(terms, dtype=np.int32) if terms else np.zeros(0, np.int32)
        order = np.argsort(term_rows, kind="stable")  # documents stay in row order within a term
        counts = np.bincount(term_rows, minlength=len(vocab))
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        doc_rows = np.frombuffer(docs, dtype=np.int32) if docs else np.zeros(0, np.int32)
        tf_rows = np.frombuffer(tfs, dtype=np.int32) if tfs else np.zeros(0, np.int32)
        return cls(ids=np.frombuffer(ids, dtype=np.int64).copy() if ids else np.zeros(0, np.int64),
                   hashes=np.asarray(hashes, dtype="S") if hashes else np.zeros(0, "S1"),
                   lengths=np.frombuffer(lengths, dtype=np.int32).copy() if lengths else np.zeros(0, np.int32),
                   vocab=vocab, indptr=indptr, docs=doc_rows[order],
                   tfs=tf_rows[order].astype(np.float32))

    def save(self, folder: Path) -> None:
        """Write the segment into `folder` (created): its arrays and ``vocab.json`` (terms in row order)."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("ids", "hashes", "lengths", "indptr", "docs", "tfs"):
            np.save(folder / f"{name}.npy", getattr(self, name))
        terms = sorted(self.vocab, key=self.vocab.__getitem__)
        (folder / "vocab.json").write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> Segment:
        """The segment :meth:`save` wrote into `folder`, its postings memory-mapped."""
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r")
                  for name in ("ids", "hashes", "lengths", "indptr", "docs", "tfs")}
        terms = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        return cls(vocab={t: i for i, t in enumerate(terms)}, **arrays)


@dataclass(eq=False)
class _Part:
    """A segment as one corpus version sees it: each of its rows' position in the corpus (-1: not live)."""

    segment: Segment
    positions: np.ndarray
    all_live: bool
    norm: np.ndarray = field(default=None)  # K1 · (1 − B + B · length / avglen), per row, float32


class SegmentedBM25:
    """BM25 over `segments` for a corpus whose documents, in position order, are `ids` with content `hashes`:
    a segment row counts where its (id, hash) is the corpus's at that position, and every corpus position must be
    live in exactly one segment (raises ValueError otherwise). :meth:`search` returns (position, score) pairs like
    :class:`studio.retrieval.bm25.BM25Index`."""

    def __init__(self, segments: Sequence[Segment], ids: np.ndarray, hashes: np.ndarray):
        self.size = len(ids)
        self.parts: list[_Part] = []
        covered = np.zeros(self.size, dtype=np.int64)
        total_length = 0
        for segment in segments:
            positions = live_positions(segment, ids, hashes)
            live = positions >= 0
            covered += np.bincount(positions[live], minlength=self.size)
            total_length += int(segment.lengths[live].sum(dtype=np.int64))
            self.parts.append(_Part(segment, positions.astype(np.int64), bool(live.all())))
        if self.size and not (covered == 1).all():
            missing, doubled = int((covered == 0).sum()), int((covered > 1).sum())
            raise ValueError(f"segments cover the corpus badly: {missing} documents missing, {doubled} twice")
        self.mean_length = total_length / self.size if self.size else 1.0
        for part in self.parts:
            lengths = np.asarray(part.segment.lengths, dtype=np.float64)
            part.norm = (K1 * ((1 - B) + B * lengths / self.mean_length)).astype(np.float32)

    def dead_share(self) -> float:
        """The share of segment rows that are not live (deleted or edited since): what a compaction would free."""
        rows = sum(len(p.segment) for p in self.parts)
        return 1 - self.size / rows if rows else 0.0

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every corpus position for `query` (float32; 0 where no term is shared)."""
        out = np.zeros(self.size, dtype=np.float32)
        for term, times in Counter(tokenize(query)).items():
            postings = []
            for part in self.parts:
                row = part.segment.vocab.get(term)
                if row is None:
                    continue
                start, end = int(part.segment.indptr[row]), int(part.segment.indptr[row + 1])
                docs = np.asarray(part.segment.docs[start:end])
                positions = part.positions[docs]
                tfs = np.asarray(part.segment.tfs[start:end])
                if not part.all_live:
                    keep = positions >= 0
                    docs, positions, tfs = docs[keep], positions[keep], tfs[keep]
                postings.append((positions, tfs, part.norm[docs]))
            df = sum(len(p[0]) for p in postings)
            if not df:
                continue
            idf = np.float32(math.log(1 + (self.size - df + 0.5) / (df + 0.5)) * times)
            for positions, tfs, norm in postings:
                out[positions] += idf * (tfs / (norm + tfs))  # a term occurs once per document: no collisions
        return out

    def search(self, query: str, k: int = 10) -> list[tuple[int, float]]:
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[tuple[int, float]]]:
        """Top-`k` positions for each query, best first, ties in position order; score-0 documents left out."""
        out = []
        for query in queries:
            scores = self.scores(query)
            hits = np.flatnonzero(scores > 0)
            if len(hits) > k:
                hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
            order = np.lexsort((hits, -scores[hits]))
            out.append([(int(hits[i]), float(scores[hits[i]])) for i in order])
        return out


def live_positions(segment: Segment, ids: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Each row of `segment`: its position in the corpus (`ids` ascending, content `hashes`) when the document is
    there with the same content, else -1."""
    if not len(segment) or not len(ids):
        return np.full(len(segment), -1, dtype=np.int64)
    seg_ids = np.asarray(segment.ids)
    where = np.minimum(np.searchsorted(ids, seg_ids), len(ids) - 1)
    live = (ids[where] == seg_ids) & (hashes[where] == np.asarray(segment.hashes))
    return np.where(live, where, -1)
