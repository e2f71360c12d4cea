"""A quality report of the gold labels before they become training data.

Counts, exact and near duplicates, how alike each query's positives and negatives are (TF-IDF cosine), how
many training examples there are, whether the annotators agree enough (the kappa gate), and how many texts
the model would truncate. Each problem becomes a :class:`Finding` whose text is the catalogue key
``quality.warn_<code>``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from studio.agreement import KAPPA_GATE, passes_gate
from studio.records import GoldSet
from studio.errors import StudioError
from studio.retrieval.dense import resolve_model
from studio.retrieval.tokenize import tokenize

THRESHOLDS = {"duplicate_rate": 0.05, "pos_neg_similarity": 0.3, "min_triplets": 1000, "truncated": 0.05,
              "near_duplicate_cosine": 0.95}

Progress = Callable[[float, str], None]

# Candidate pairs generated or verified at once in the near-duplicate scan (bounds its memory).
_PAIR_BATCH = 1_000_000
# Slack on the prefix filter's bound, so rounding cannot drop a pair exactly at the threshold.
_BOUND_MARGIN = 1e-6
# Near-duplicates above _EXACT_BELOW distinct documents: banded SimHash (see near_duplicate_rows).
_EXACT_BELOW = 20_000
_SKETCH_BITS = 256
_HASHED_TERMS = 1 << 16
_BANDS = 64
_MIN_BAND_BITS, _MAX_BAND_BITS = 17, 20
_SKETCH_ROWS = 16_384
_BUCKET_CAP = 4_096
_VERIFY_BATCH = 131_072  # pairs whose rows are copied at once to verify them
_LSH_SEED = 30
_TOKEN_BATCH = 512
_MAX_LENGTH_CAP = 8192


@dataclass(frozen=True)
class Finding:
    """A warning on the score card: catalogue key ``quality.warn_<code>`` filled in with `params`."""

    code: str
    params: dict


@dataclass
class QualityReport:
    """What :func:`quality_report` measured; see that function for the definitions."""

    counts: dict[str, int]
    duplicate_rate: float
    near_duplicate_documents: int
    near_duplicate_rate: float
    similarity_mean: float | None
    similarity_max: float | None
    similarity_by_query: list[dict]
    triplets: int
    kappa: float | None
    gate_passed: bool
    lengths: dict
    findings: list[Finding]

    def as_dict(self) -> dict:
        """The report as plain JSON-serialisable data (findings become ``{"code", "params"}``)."""
        return asdict(self)


def quality_report(gold: GoldSet, *, kappa: float | None, model: str | None = None, query_max_length: int = 128,
                   document_max_length: int | None = None, progress: Progress | None = None) -> QualityReport:
    """Measure the gold labels in `gold`.

    Args:
        gold: the gold labels and texts.
        kappa: pooled inter-annotator kappa, ``None`` when undefined; the gate is ``kappa >= 0.6``.
        model: model whose tokenizer counts tokens: ``None``/``"default"`` (the ★ default model), a path or hub id.
        query_max_length: query tokens the model keeps.
        document_max_length: document tokens the model keeps; default ``max_seq_length`` from the model's
            ``sentence_bert_config.json``, else ``min(tokenizer.model_max_length, 8192)``.
        progress: called as ``progress(fraction, stage)`` with stages ``tfidf``, ``tokens``, ``done``.

    Returns:
        The report. Definitions (TF-IDF over :func:`~studio.retrieval.tokenize.tokenize` terms, cosine = dot
        product of L2-normalised rows):

        * ``duplicate_rate = (pairs - distinct normalised (query text, document text)) / pairs``;
        * ``near_duplicate_rate = #{labelled d : ∃ labelled d' ≠ d, cos(d, d') >= 0.95 or same text} / #labelled``;
        * per query q with positives P (label 2) and negatives N (label 0):
          ``mean_q = Σ cos(p, n) / (|P|·|N|)``, ``max_q = max cos(p, n)``; ``similarity_mean`` is the mean of
          ``mean_q`` over those queries, ``similarity_max`` the max of ``max_q``;
        * ``triplets`` = label-2 pairs of queries for which the corpus holds a document that is not labelled
          1 or 2 for them (a negative, annotated or mined).

    Raises:
        StudioError: ``no_gold`` when there are no labels; ``model_missing`` when the tokenizer cannot load.
    """
    report = progress or (lambda fraction, stage: None)
    qids = sorted(q for q, docs in gold.labels.items() if docs)
    if not qids:
        raise StudioError("no_gold")
    doc_ids = sorted({d for q in qids for d in gold.labels[q]})
    query_texts = [gold.queries.get(q, "") for q in qids]
    doc_texts = [gold.corpus.get(d, "") for d in doc_ids]
    counts = _counts(gold, qids, doc_ids)

    report(0.0, "tfidf")
    vectors = _tfidf(doc_texts, query_texts)
    row = {d: i for i, d in enumerate(doc_ids)}
    by_query = _similarity_by_query(gold, qids, row, vectors)
    near = _near_duplicates(doc_texts, vectors, lambda f: report(0.1 + 0.5 * f, "tfidf"))

    report(0.6, "tokens")
    lengths = _lengths(query_texts, doc_texts, model, query_max_length, document_max_length,
                       lambda f: report(0.6 + 0.35 * f, "tokens"))

    result = QualityReport(
        counts=counts,
        duplicate_rate=_duplicate_rate(gold, qids),
        near_duplicate_documents=near,
        near_duplicate_rate=near / len(doc_ids),
        similarity_mean=float(np.mean([s["mean"] for s in by_query])) if by_query else None,
        similarity_max=max(s["max"] for s in by_query) if by_query else None,
        similarity_by_query=by_query,
        triplets=_triplets(gold, qids),
        kappa=None if kappa is None else float(kappa),
        gate_passed=passes_gate(kappa),
        lengths=lengths,
        findings=[],
    )
    result.findings = findings(result)
    report(1.0, "done")
    return result


def findings(report: QualityReport) -> list[Finding]:
    """The warnings for `report`, each with the parameters its catalogue message uses (floats to 3 places)."""
    c, out = report.counts, []
    if report.duplicate_rate > THRESHOLDS["duplicate_rate"]:
        out.append(Finding("duplicates", {"rate": _r(report.duplicate_rate),
                                          "threshold": THRESHOLDS["duplicate_rate"]}))
    if report.near_duplicate_rate > THRESHOLDS["duplicate_rate"]:
        out.append(Finding("near_duplicates", {"count": report.near_duplicate_documents,
                                               "rate": _r(report.near_duplicate_rate),
                                               "threshold": THRESHOLDS["duplicate_rate"]}))
    if report.similarity_mean is not None and report.similarity_mean > THRESHOLDS["pos_neg_similarity"]:
        out.append(Finding("similarity", {"mean": _r(report.similarity_mean),
                                          "threshold": THRESHOLDS["pos_neg_similarity"]}))
    if report.triplets < THRESHOLDS["min_triplets"]:
        out.append(Finding("few_triplets", {"count": report.triplets, "minimum": THRESHOLDS["min_triplets"]}))
    if report.kappa is None:
        out.append(Finding("gate_undefined", {}))
    elif report.kappa < KAPPA_GATE:
        out.append(Finding("gate_failed", {"kappa": _r(report.kappa), "gate": KAPPA_GATE}))
    if c["queries_without_positive"]:
        out.append(Finding("no_positive_queries", {"count": c["queries_without_positive"]}))
    if c["queries_without_negative"]:
        out.append(Finding("no_negative_queries", {"count": c["queries_without_negative"]}))
    if report.lengths["documents_truncated"] > THRESHOLDS["truncated"]:
        out.append(Finding("truncation", {"rate": _r(report.lengths["documents_truncated"]),
                                          "max_length": report.lengths["document_max_length"]}))
    return out


def _r(x: float) -> float:
    return round(float(x), 3)


def _counts(gold: GoldSet, qids: list[str], doc_ids: list[str]) -> dict[str, int]:
    """Label counts; a query "without positive" has no label 2, one "without negative" no label 0."""
    labels = Counter(label for q in qids for label in gold.labels[q].values())
    return {
        "queries": len(qids),
        "labelled_pairs": sum(labels.values()),
        "positives": labels[2],
        "partials": labels[1],
        "negatives": labels[0],
        "documents": len(gold.corpus),
        "labelled_documents": len(doc_ids),
        "queries_without_positive": sum(2 not in gold.labels[q].values() for q in qids),
        "queries_without_negative": sum(0 not in gold.labels[q].values() for q in qids),
    }


def _normalise(text: str) -> str:
    """Case-folded, whitespace collapsed: what counts as "the same text"."""
    return " ".join(text.casefold().split())


def _duplicate_rate(gold: GoldSet, qids: list[str]) -> float:
    """``(pairs - distinct normalised (query text, document text)) / pairs``: every pair beyond a group's first."""
    keys = [(_normalise(gold.queries.get(q, "")), _normalise(gold.corpus.get(d, "")))
            for q in qids for d in gold.labels[q]]
    return (len(keys) - len(set(keys))) / len(keys)


def _triplets(gold: GoldSet, qids: list[str]) -> int:
    """Label-2 pairs of queries that have some negative candidate: a corpus document not labelled 1 or 2."""
    total = 0
    for q in qids:
        labels = gold.labels[q].values()
        relevant = sum(label >= 1 for label in labels)
        if len(gold.corpus) > relevant:
            total += sum(label == 2 for label in labels)
    return total


def _tfidf(doc_texts: Sequence[str], query_texts: Sequence[str]):
    """L2-normalised TF-IDF rows (CSR) of `doc_texts`, the vocabulary fitted on documents and queries."""
    from scipy.sparse import csr_matrix
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        # fit_transform tokenizes each text once; fit then transform would tokenize the documents twice.
        rows = TfidfVectorizer(analyzer=tokenize).fit_transform(list(doc_texts) + list(query_texts))
    except ValueError:  # empty vocabulary: no text has a single term, so nothing is similar by TF-IDF
        return csr_matrix((len(doc_texts), 1), dtype=np.float64)
    return rows.tocsr()[:len(doc_texts)]


def _similarity_by_query(gold: GoldSet, qids: list[str], row: dict[str, int], vectors) -> list[dict]:
    """Per query with both positives and negatives: mean and max cosine of positive × negative, mean descending."""
    out = []
    for q in qids:
        pos, neg = gold.positives(q), gold.negatives(q)
        if not pos or not neg:
            continue
        cos = (vectors[[row[d] for d in pos]] @ vectors[[row[d] for d in neg]].T).toarray()
        out.append({"query_id": q, "query": gold.queries.get(q, ""), "mean": float(cos.mean()),
                    "max": float(cos.max())})
    out.sort(key=lambda s: (-s["mean"], s["query_id"]))
    return out


def _near_duplicates(doc_texts: Sequence[str], vectors, on_step: Callable[[float], None]) -> int:
    """Documents with another at cosine >= 0.95 or with the same normalised text (see :func:`near_duplicate_rows`)."""
    same_text = Counter(_normalise(t) for t in doc_texts)
    flagged = np.array([same_text[_normalise(t)] > 1 for t in doc_texts], dtype=bool)
    flagged |= near_duplicate_rows(vectors, THRESHOLDS["near_duplicate_cosine"], on_step)
    return int(flagged.sum())


@dataclass(frozen=True)
class SimilarPairs:
    """What :func:`similar_pairs` found among the rows of a matrix.

    Rows with identical non-zero vectors form one group (``group[row]``, numbered by first row); ``pairs`` are the
    similar pairs of *different* groups (their first rows, ``i < j``), so a thousand copies of one text cost one
    group, not half a million pairs. ``comparisons`` counts the exact cosines computed.
    """

    group: np.ndarray
    pairs: np.ndarray
    flagged: np.ndarray
    comparisons: int

    def row_pairs(self) -> set[tuple[int, int]]:
        """Every pair of rows ``(i, j)``, ``i < j``, at or above the threshold (output-sized: for tests, benches)."""
        members: dict[int, list[int]] = {}
        for row, g in enumerate(self.group.tolist()):
            if g >= 0:
                members.setdefault(g, []).append(row)
        out = {(a, b) for rows in members.values() for k, a in enumerate(rows) for b in rows[k + 1:]}
        for gi, gj in self.pairs.tolist():
            out |= {(min(a, b), max(a, b)) for a in members[gi] for b in members[gj]}
        return out


def similar_pairs(vectors, threshold: float, on_step: Callable[[float], None] | None = None) -> SimilarPairs:
    """Pairs of rows of `vectors` (L2-normalised, non-negative, CSR) whose dot product is ``>= threshold``.

    Exact: an all-pairs *prefix filter* (Bayardo et al., WWW 2007) finds candidates and each is verified by its
    exact dot product. Its cost follows the pairs that share rare terms, which grow faster than the rows when many
    documents share passages (bench/near_duplicates.py), so the report uses it only below :data:`_EXACT_BELOW`
    distinct documents (:func:`near_duplicate_rows`). Terms are ordered rarest first; each row
    keeps in an inverted index only its shortest run of rarest terms such that the rest of the row could not reach
    `threshold` against any row (bounded by the rest's norm and by ``Σ x_t · max weight of t``). Two rows at or
    above `threshold` share an indexed term, so nothing is missed; at 0.95 the indexed run is one or two rare
    terms, whose posting lists are short. Identical rows are grouped first and never compared.
    """
    step = on_step or (lambda fraction: None)
    matrix = vectors.tocsr(copy=True)
    matrix.sort_indices()
    n = matrix.shape[0]
    group, reps, flagged = _identical_rows(matrix)
    step(0.1)
    empty = SimilarPairs(group, np.zeros((0, 2), dtype=np.int64), flagged, 0)
    if len(reps) < 2:
        step(1.0)
        return empty
    unique = matrix[reps]
    keys = _candidates(unique, threshold)
    step(0.3)
    found = []
    for start in range(0, len(keys), _PAIR_BATCH):
        batch = keys[start:start + _PAIR_BATCH]
        left, right = batch // len(reps), batch % len(reps)
        cosine = np.asarray(unique[left].multiply(unique[right]).sum(axis=1)).ravel()
        hit = cosine >= threshold
        found.append(np.stack([reps[left[hit]], reps[right[hit]]], axis=1))
        step(0.3 + 0.7 * min(1.0, (start + _PAIR_BATCH) / len(keys)))
    pairs = np.concatenate(found) if found else empty.pairs
    hit_groups = np.zeros(n, dtype=bool)
    hit_groups[pairs.ravel()] = True
    flagged[group >= 0] |= hit_groups[group[group >= 0]]
    step(1.0)
    return SimilarPairs(group, pairs, flagged, len(keys))


def _candidates(matrix, threshold: float) -> np.ndarray:
    """Candidate pairs of rows of `matrix` (CSR, sorted indices) as sorted unique keys ``i * rows + j``, ``i < j``:
    the pairs that share a term of their prefixes (see :func:`similar_pairs`)."""
    rows, terms = matrix.shape
    lengths = np.diff(matrix.indptr)
    row_of = np.repeat(np.arange(rows, dtype=np.int64), lengths)
    frequency = np.bincount(matrix.indices, minlength=terms)
    rank = np.empty(terms, dtype=np.int64)
    rank[np.lexsort((np.arange(terms), frequency))] = np.arange(terms)  # rarest first, ties by column
    max_weight = matrix.max(axis=0).toarray().ravel()
    order = np.lexsort((rank[matrix.indices], row_of))
    weight, term, row = matrix.data[order], matrix.indices[order].astype(np.int64), row_of[order]
    ends = matrix.indptr[1:] - 1
    # Bounds on the dot product of the row's entries from this one to its end with any row.
    squares, bound = np.cumsum(weight * weight), np.cumsum(weight * max_weight[term])
    rest_norm = np.sqrt(np.maximum(squares[ends][row] - squares + weight * weight, 0.0))
    rest_bound = bound[ends][row] - bound + weight * max_weight[term]
    # Keep an entry while the row from it onwards could still reach the threshold (margin for rounding).
    indexed = np.minimum(rest_norm, rest_bound) >= threshold - _BOUND_MARGIN
    term, row = term[indexed], row[indexed]
    order = np.lexsort((row, term))
    term, row = term[order], row[order]
    starts = np.flatnonzero(np.r_[True, term[1:] != term[:-1]])
    sizes = np.diff(np.r_[starts, len(term)])
    # Entry p of a posting list pairs with every later entry of the same list.
    later = np.repeat(starts + sizes, sizes) - np.arange(len(term)) - 1
    found = [np.zeros(0, dtype=np.int64)]
    cumulative = np.cumsum(later)
    begin = 0
    while begin < len(term):
        # Batches of posting entries whose pairs fit in _PAIR_BATCH (at least one entry per batch).
        stop = max(begin + 1, int(np.searchsorted(cumulative, cumulative[begin] - later[begin] + _PAIR_BATCH,
                                                  side="right")))
        counts = later[begin:stop]
        total = int(counts.sum())
        if total:
            left = np.repeat(np.arange(begin, stop), counts)
            offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
            right = left + 1 + offsets
            found.append(np.unique(row[left] * rows + row[right]))  # rows ascend within a posting list
        begin = stop
    return np.unique(np.concatenate(found))


def near_duplicate_rows(vectors, threshold: float, on_step: Callable[[float], None] | None = None,
                        *, exact_below: int | None = None, seed: int = _LSH_SEED) -> np.ndarray:
    """Which rows of `vectors` (L2-normalised, non-negative, CSR) have another row with dot product ``>= threshold``.

    Below `exact_below` distinct rows (default :data:`_EXACT_BELOW`) this is :func:`similar_pairs`' exact answer.
    Above, linear in the rows: a 256-bit sign-random-projection sketch per row (SimHash, seeded), then
    :data:`_BANDS` bands of random sketch bits (more bits the more rows) put rows into buckets; pairs sharing a
    bucket whose sketches differ in few enough bits are verified by their exact dot product, so nothing is flagged
    wrongly (precision 1). A pair at exactly 0.95 is found with probability about 0.99, one at 0.97 with 0.999
    (binomial over the sketch bits); a row flagged already is never compared again, and a bucket whose rows are all
    flagged is skipped, so a large cluster of near-duplicates costs its rows, not its pairs.
    """
    step = on_step or (lambda fraction: None)
    matrix = vectors.tocsr(copy=True)
    matrix.sort_indices()
    group, reps, flagged = _identical_rows(matrix)
    limit = _EXACT_BELOW if exact_below is None else exact_below
    if len(reps) < max(limit, 2):
        return similar_pairs(matrix, threshold, on_step).flagged
    step(0.1)
    found = _lsh_flagged(matrix[reps], threshold, lambda f: step(0.1 + 0.9 * f), seed)
    hit = np.zeros(len(group), dtype=bool)
    hit[reps[found]] = True
    flagged[group >= 0] |= hit[group[group >= 0]]
    step(1.0)
    return flagged


def _identical_rows(matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(group, reps, flagged)``: each row's group of identical non-zero rows (its first row, -1 for an empty
    row), the groups' first rows ascending, and the rows that have an identical twin (cosine 1)."""
    n = matrix.shape[0]
    group = np.full(n, -1, dtype=np.int64)
    first: dict[bytes, int] = {}
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    for row in range(n):
        lo, hi = indptr[row], indptr[row + 1]
        if hi > lo:
            key = indices[lo:hi].tobytes() + data[lo:hi].tobytes()
            group[row] = first.setdefault(key, row)
    flagged = np.zeros(n, dtype=bool)
    sizes = np.bincount(group[group >= 0], minlength=n)
    flagged[group >= 0] = sizes[group[group >= 0]] > 1
    return group, np.array(sorted(first.values()), dtype=np.int64), flagged


def _lsh_flagged(matrix, threshold: float, step: Callable[[float], None], seed: int) -> np.ndarray:
    """Rows of `matrix` (distinct, non-zero) with another at dot product ``>= threshold``, by banded SimHash."""
    n = matrix.shape[0]
    rng = np.random.default_rng(seed)
    rows_per_band = int(np.clip(np.ceil(np.log2(n)), _MIN_BAND_BITS, _MAX_BAND_BITS))
    sketch, keys = _sketches(matrix, rows_per_band, rng, lambda f: step(0.4 * f))
    # Sketch bits that differ for a pair at the threshold: binomial(256, angle / pi); allow 4 deviations above.
    q = float(np.arccos(min(threshold, 1.0))) / np.pi
    cutoff = _SKETCH_BITS * q + 4.0 * np.sqrt(_SKETCH_BITS * q * (1 - q)) + 1
    flagged = np.zeros(n, dtype=bool)
    seen = np.zeros(0, dtype=np.int64)
    for band in range(_BANDS):
        order, starts, sizes = _buckets(keys, band)
        open_ = np.add.reduceat(~flagged[order], starts) > 0
        keep = (sizes > 1) & open_  # a bucket of flagged rows only cannot flag anything new
        for left, right in _bucket_pairs(order, starts[keep], sizes[keep], flagged):
            close = _differing_bits(sketch[left] ^ sketch[right]) <= cutoff
            left, right = left[close], right[close]
            undecided = ~(flagged[left] & flagged[right])
            pair = _sorted_unique(left[undecided] * n + right[undecided])
            at = np.minimum(np.searchsorted(seen, pair), max(len(seen) - 1, 0))
            pair = pair[seen[at] != pair] if len(seen) else pair  # verified in an earlier band
            if not len(pair):
                continue
            seen = np.concatenate([seen, pair])
            seen.sort(kind="stable")  # two sorted runs: a merge
            left, right = pair // n, pair % n
            for start in range(0, len(pair), _VERIFY_BATCH):
                a, b = left[start:start + _VERIFY_BATCH], right[start:start + _VERIFY_BATCH]
                cosine = np.asarray(matrix[a].multiply(matrix[b]).sum(axis=1)).ravel()
                hit = cosine >= threshold
                flagged[a[hit]] = True
                flagged[b[hit]] = True
        step(0.4 + 0.6 * (band + 1) / _BANDS)
    return flagged


def _buckets(keys: np.ndarray, band: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(order, starts, sizes)``: the rows sorted by their key in `band`, and where each bucket starts and its
    size. A bucket over :data:`_BUCKET_CAP` rows (many rows alike without being near-duplicates, e.g. short
    texts sharing a frequent term) is split by the next bands' keys too, up to three more, so its pairs stay
    few; its rows still meet in the other bands."""
    n = keys.shape[1]
    key = keys[band].astype(np.uint64)
    for extra in range(4):
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
        sizes = np.diff(np.r_[starts, n])
        big = sizes > _BUCKET_CAP
        if not big.any() or extra == 3:
            return order, starts, sizes
        bucket = np.empty(n, dtype=np.uint64)
        bucket[order] = np.repeat(np.arange(len(starts), dtype=np.uint64), sizes)
        rows = order[np.repeat(big, sizes)]
        # Band keys hold at most 20 bits: a split bucket's rows get the next key plus 2**20, the others 0.
        key = bucket * np.uint64(1 << 21)
        key[rows] += keys[(band + 1 + extra) % _BANDS, rows].astype(np.uint64) + np.uint64(1 << 20)
    return order, starts, sizes


def _sketches(matrix, rows_per_band: int, rng: np.random.Generator,
              step: Callable[[float], None]) -> tuple[np.ndarray, np.ndarray]:
    """``(sketch, keys)``: each row's 256 sign bits of Gaussian projections (packed, rows × 32 bytes) and its
    :data:`_BANDS` band keys (bands × rows, each `rows_per_band` random sketch bits as an integer)."""
    from scipy.sparse import csr_matrix

    n, terms = matrix.shape
    # Terms are hashed onto _HASHED_TERMS projection rows with a random sign, so the projection matrix has a
    # fixed size whatever the vocabulary; a rare collision only blurs the sketch, the verification is exact.
    sign = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=terms)
    hashed = csr_matrix((matrix.data.astype(np.float32) * sign[matrix.indices], matrix.indices % _HASHED_TERMS,
                         matrix.indptr), shape=(n, _HASHED_TERMS))
    projection = rng.standard_normal((_HASHED_TERMS, _SKETCH_BITS), dtype=np.float32)
    weights = np.zeros((_SKETCH_BITS, _BANDS), dtype=np.float32)
    for band in range(_BANDS):
        bits = rng.choice(_SKETCH_BITS, size=rows_per_band, replace=False)
        weights[bits, band] = 2.0 ** np.arange(rows_per_band)  # exact in float32 up to 2**24
    sketch = np.empty((n, _SKETCH_BITS // 8), dtype=np.uint8)
    keys = np.empty((_BANDS, n), dtype=np.uint32)
    for start in range(0, n, _SKETCH_ROWS):
        bits = (hashed[start:start + _SKETCH_ROWS] @ projection) > 0
        sketch[start:start + _SKETCH_ROWS] = np.packbits(bits, axis=1)
        keys[:, start:start + _SKETCH_ROWS] = (bits.astype(np.float32) @ weights).T
        step(min(1.0, (start + _SKETCH_ROWS) / n))
    return sketch, keys


def _bucket_pairs(order: np.ndarray, starts: np.ndarray, sizes: np.ndarray, flagged: np.ndarray):
    """Pairs ``(i, j)``, ``i < j``, of rows sharing a bucket (``order[starts[k]:starts[k] + sizes[k]]``), in batches
    of about :data:`_PAIR_BATCH` pairs as two arrays. A bucket too big for one batch pairs only its rows not yet
    `flagged` (read as the caller updates it) with the others, so a big cluster of near-duplicates costs its rows
    times the few rows left unflagged, not its square."""
    later = sizes * (sizes - 1) // 2
    cumulative = np.cumsum(later)
    begin = 0
    while begin < len(starts):
        stop = max(begin + 1, int(np.searchsorted(cumulative, cumulative[begin] - later[begin] + _PAIR_BATCH,
                                                  side="right")))
        size = sizes[begin:stop]
        if stop == begin + 1 and later[begin] > _PAIR_BATCH:  # one huge bucket: its rows in blocks
            members = order[starts[begin]:starts[begin] + size[0]]
            block = max(1, _PAIR_BATCH // len(members))
            for lo in range(0, len(members), block):
                chunk = np.arange(lo, min(lo + block, len(members)))
                chunk = chunk[~flagged[members[chunk]]]
                left = np.repeat(chunk, len(members))
                right = np.tile(np.arange(len(members)), len(chunk))
                # Each pair once: from its first unflagged row, or from the unflagged row to a flagged one.
                mine = (left < right) | flagged[members[right]]
                a, b = members[left[mine]], members[right[mine]]
                yield np.minimum(a, b), np.maximum(a, b)
        else:
            # Entry p of a bucket pairs with every later entry of the same bucket.
            first = np.repeat(starts[begin:stop], size)
            entry = first + np.arange(size.sum()) - np.repeat(np.cumsum(size) - size, size)
            count = first + np.repeat(size, size) - entry - 1
            total = int(count.sum())
            left = np.repeat(entry, count)
            right = left + 1 + np.arange(total) - np.repeat(np.cumsum(count) - count, count)
            a, b = order[left], order[right]
            yield np.minimum(a, b), np.maximum(a, b)
        begin = stop


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """`keys` sorted without repeats (``np.unique`` without its hashing detour)."""
    keys = np.sort(keys)
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys


_POPCOUNT = np.array([bin(byte).count("1") for byte in range(256)], dtype=np.uint16)


def _differing_bits(xor: np.ndarray) -> np.ndarray:
    """Set bits per row of a packed (rows × bytes) XOR of two sketches."""
    return _POPCOUNT[xor].sum(axis=1)


def _lengths(query_texts: Sequence[str], doc_texts: Sequence[str], model: str | None, query_max_length: int,
             document_max_length: int | None, on_step: Callable[[float], None]) -> dict:
    """Token counts (special tokens included, nothing truncated) and the share over each maximum length."""
    name = resolve_model(model)
    tokenizer = _load_tokenizer(name)
    if document_max_length is None:
        document_max_length = _default_max_length(name, tokenizer)
    query_tokens = _count_tokens(tokenizer, query_texts, lambda f: on_step(0.1 * f))
    doc_tokens = _count_tokens(tokenizer, doc_texts, lambda f: on_step(0.1 + 0.9 * f))
    return {
        "query_tokens": query_tokens,
        "document_tokens": doc_tokens,
        "query_max_length": query_max_length,
        "document_max_length": document_max_length,
        "queries_truncated": _share_over(query_tokens, query_max_length),
        "documents_truncated": _share_over(doc_tokens, document_max_length),
        "model": name,
    }


@lru_cache(maxsize=4)
def _load_tokenizer(name: str):
    """``AutoTokenizer`` for `name`, once per process."""
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name)
    except Exception as exc:  # the library raises many kinds; the user needs one message
        detail = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise StudioError("model_missing", model=name, detail=detail) from exc


def _default_max_length(name: str, tokenizer) -> int:
    """``max_seq_length`` of a sentence-transformers folder, else the tokenizer's limit capped at 8192."""
    config = Path(name) / "sentence_bert_config.json"
    if config.is_file():
        value = json.loads(config.read_text(encoding="utf-8")).get("max_seq_length")
        if isinstance(value, int) and value > 0:
            return value
    # Tokenizers without a known limit report a huge sentinel (about 1e30).
    return int(min(tokenizer.model_max_length, _MAX_LENGTH_CAP))


def _count_tokens(tokenizer, texts: Sequence[str], on_step: Callable[[float], None]) -> list[int]:
    """Length of each text in tokens, in batches of :data:`_TOKEN_BATCH`."""
    counts: list[int] = []
    # Counting past the limit is the point, so silence the tokenizer's "longer than the maximum" warning.
    logger = logging.getLogger("transformers.tokenization_utils_base")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        for start in range(0, len(texts), _TOKEN_BATCH):
            batch = list(texts[start:start + _TOKEN_BATCH])
            ids = tokenizer(batch, add_special_tokens=True, truncation=False)["input_ids"]
            counts.extend(len(x) for x in ids)
            on_step(min(1.0, (start + _TOKEN_BATCH) / len(texts)))
    finally:
        logger.setLevel(level)
    return counts


def _share_over(lengths: Sequence[int], limit: int) -> float:
    """Fraction of `lengths` above `limit` (0 when there are none)."""
    return sum(n > limit for n in lengths) / len(lengths) if lengths else 0.0
