"""Check the negatives: before an export, the mined hard negatives most likely to be false negatives, for the team.

FlagEmbedding #850: the "hard negatives" mined for a user's data were "almost all false negatives". The export's
mining (:func:`studio.dataset.mining.mine`) skips the top ranks and drops near copies of a positive, but a document
that answers the query in other words passes both filters and is trained on as a negative. This module picks the
mined candidates that look most like the query's positives, so that people rate them before the export does.

The rule, for each query with a gold positive (label 2; label 1 too with ``partial="positive"``):

1. Mine exactly as the export does, with the export's options (:class:`~studio.dataset.triplets.ExportOptions`:
   method ``hybrid``, rank window 10–100, the false-negative guard, model ★ by default). The window candidates are
   the documents the export may write as this query's negatives.
2. Keep the unjudged ones: drop every document with a gold label for the query (0 included) and those in
   `exclude` (the caller's list of pairs the project has already, see :func:`pick_negatives_to_check`).
3. Score each with the dense model: ``margin = cos(query, doc) − min over positives p of cos(query, p)``, how close
   the candidate scores to the query's weakest positive. A margin ≥ 0 means it outscores a document the team
   called relevant: the signature of a false negative that positive-aware mining filters on (NV-Retriever, 2024;
   sentence-transformers' ``relative_margin``).
4. Take the `per_query` highest margins (ties: the mining's rank order). All picks come back highest margin first,
   across queries: the order the team is served them.

The dense model scores whatever the mining method, because BM25 scores do not compare across queries. With
``hard_negatives="none"`` nothing is mined, so there is nothing to check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from studio.records import GoldSet
from studio.dataset.mining import mine
from studio.dataset.triplets import ExportOptions
from studio.errors import StudioError
from studio.retrieval.dense import cached_encode, encode

SOURCE = "check-negatives"  # the source name of the pairs this check adds to the project
PER_QUERY = 2
MAX_PER_QUERY = 20


@dataclass(frozen=True)
class NegativeToCheck:
    """A mined negative for the team to rate: query and document keys, its dense score for the query, and its
    margin to the query's weakest positive (score − that positive's score; ≥ 0: it outscores a positive)."""

    query: str
    document: str
    score: float
    margin: float


def pick_negatives_to_check(gold: GoldSet, *, per_query: int = PER_QUERY, options: ExportOptions | None = None,
                            exclude: Mapping[str, set[str]] | None = None,
                            progress: Callable[[float, str], None] | None = None) -> list[NegativeToCheck]:
    """The `per_query` mined negatives of each query with a positive that score closest to its positives.

    Args:
        gold: The gold labels and the whole corpus (what the export reads).
        per_query: How many to pick per query, 1 to :data:`MAX_PER_QUERY`.
        options: The export's options (mining method, rank window, guard, partial mode, model: None = ★); the
            defaults are the export's.
        exclude: Query key → document keys not to pick (already judged or queued some other way).
        progress: Called with (fraction, "mining") and (fraction, "scoring").

    Returns:
        The picks, highest margin first (ties: query key, document key); empty when nothing is mined.

    Raises:
        StudioError: ``bad_per_query``; ``no_positives_to_check`` when no query has a gold positive.
    """
    if not isinstance(per_query, int) or isinstance(per_query, bool) or not 1 <= per_query <= MAX_PER_QUERY:
        raise StudioError("bad_per_query", value=per_query, max=MAX_PER_QUERY)
    options = options or ExportOptions()
    options.validate()
    partial_pos = options.partial == "positive"
    queries = sorted(q for q in gold.labels if gold.positives(q, partial_pos))
    if not queries:
        raise StudioError("no_positives_to_check")
    if options.hard_negatives == "none":
        return []
    report = progress or (lambda fraction, stage: None)
    mined = mine(gold, queries, method=options.hard_negatives, model=options.model,
                 rank_window=tuple(options.rank_window), max_similarity=options.max_similarity,
                 partial_as_positive=partial_pos, progress=lambda f, _: report(0.8 * f, "mining"))
    exclude = exclude or {}
    open_by_query = {q: [d for d in mined.candidates.get(q, [])
                         if d not in gold.labels.get(q, {}) and d not in exclude.get(q, ())] for q in queries}
    asked = [q for q in queries if open_by_query[q]]
    if not asked:
        return []
    report(0.85, "scoring")
    doc_keys = sorted(gold.corpus)  # the order mining encodes the corpus in: the embedding cache is shared
    position = {d: i for i, d in enumerate(doc_keys)}
    docs, query_vectors = _vectors(gold, doc_keys, asked, options.model)
    picks = []
    for qi, q in enumerate(asked):
        candidates = open_by_query[q]
        scores = docs[[position[d] for d in candidates]] @ query_vectors[qi]
        weakest = float(np.min(docs[[position[d] for d in gold.positives(q, partial_pos)]] @ query_vectors[qi]))
        best = sorted(range(len(candidates)), key=lambda i: -scores[i])[:per_query]  # stable: mining rank on ties
        picks += [NegativeToCheck(q, candidates[i], round(float(scores[i]), 6), round(float(scores[i]) - weakest, 6))
                  for i in best]
    report(1.0, "scoring")
    return sorted(picks, key=lambda c: (-c.margin, c.query, c.document))


def _vectors(gold: GoldSet, doc_keys: list[str], queries: list[str], model) -> tuple[np.ndarray, np.ndarray]:
    """Normalised embeddings of the corpus (cached, as mining's) and of `queries`."""
    return cached_encode([gold.corpus[d] for d in doc_keys], model), encode([gold.queries[q] for q in queries], model)
