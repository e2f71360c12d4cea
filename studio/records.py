"""The records every layer passes around, and how a document's text is formed: a leaf that imports nothing of the
studio, so store/ (which reads them out of SQL) and the domain folders (which compute with them) can both import it.

- :func:`document_text`: a document's text as models see it: the title on the first line, then the body, both
  stripped, an empty part left out, a missing body replaced by the title. The recipe runtime forms it the same way
  from :data:`studio.recipe_runtime.DOCUMENT_TEXT` (it carries its own copy, since it imports nothing of the studio;
  tests/test_recipe.py checks that they agree).
- :class:`GoldSet`: the gold labels as plain data, the one input of the quality report and the triplet export.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


def document_text(title: str | None, text: str | None) -> str:
    """How a document is shown to models: ``title\nbody`` (each stripped; an empty title left out; an empty body is
    the title, as `studio import` stores it).

    Every embedding, BM25 index, cache key and gold fingerprint of the studio reads a document through this one
    function, so one corpus always gets one set of texts.
    """
    title = (title or "").strip()
    body = (text or "").strip() or title
    return "\n".join(part for part in (title, body) if part)


@dataclass
class GoldSet:
    """Gold labels with the texts they refer to.

    Attributes:
        queries: query key → text, for queries that have at least one gold label.
        corpus: document key → text (title and body joined by a newline when there is a title); the whole corpus,
            labelled or not, because hard negatives are mined from all of it.
        labels: query key → {document key → gold label 0/1/2}.
        fingerprint: sha256 of the sorted (query, document, label) triples and texts: what a model learned from.
    """

    queries: dict[str, str]
    corpus: dict[str, str]
    labels: dict[str, dict[str, int]]
    fingerprint: str = ""
    kappa: float | None = None
    extra: dict = field(default_factory=dict)

    def positives(self, qid: str, partial_as_positive: bool = False) -> list[str]:
        """Documents labelled 2 (and 1 when `partial_as_positive`) for `qid`, in key order."""
        lowest = 1 if partial_as_positive else 2
        return sorted(d for d, label in self.labels.get(qid, {}).items() if label >= lowest)

    def negatives(self, qid: str) -> list[str]:
        """Documents labelled 0 for `qid`, in key order."""
        return sorted(d for d, label in self.labels.get(qid, {}).items() if label == 0)


def fingerprint(queries: dict[str, str], corpus: dict[str, str], labels: dict[str, dict[str, int]]) -> str:
    """A stable hash of the labelled data (order-independent)."""
    h = hashlib.sha256()
    for qid in sorted(labels):
        h.update(f"Q\t{qid}\t{queries[qid]}\n".encode())
        for did in sorted(labels[qid]):
            h.update(f"D\t{did}\t{labels[qid][did]}\t{corpus[did]}\n".encode())
    return h.hexdigest()
