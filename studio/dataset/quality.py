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

# Cells of one sparse similarity block in the near-duplicate scan (rows per chunk × labelled documents).
_BLOCK_CELLS = 4_000_000
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
    """Documents with another at cosine >= 0.95 or with the same normalised text.

    Row blocks of ``X · Xᵀ`` stay sparse and bounded (:data:`_BLOCK_CELLS`), so no dense n × n matrix is built.
    """
    n = len(doc_texts)
    same_text = Counter(_normalise(t) for t in doc_texts)
    flagged = np.array([same_text[_normalise(t)] > 1 for t in doc_texts], dtype=bool)
    transposed = vectors.T.tocsc()
    chunk = max(1, _BLOCK_CELLS // max(n, 1))
    for start in range(0, n, chunk):
        block = (vectors[start:start + chunk] @ transposed).tocoo()
        hit = (block.data >= THRESHOLDS["near_duplicate_cosine"]) & (block.row + start != block.col)
        flagged[block.row[hit] + start] = True
        on_step(min(1.0, (start + chunk) / n))
    return int(flagged.sum())


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
