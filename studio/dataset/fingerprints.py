"""Fingerprints of query texts: what a fine-tune records about the queries it learned from (``studio_model.json``),
so an evaluation can leave them out after the training files are rewritten or deleted
(:mod:`studio.evaluation.heldout`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def fingerprint(text: str) -> str:
    """A query text's fingerprint: the first 16 hex digits of its SHA-1 (collisions are out of reach at any
    realistic number of queries, and the texts themselves stay out of the model folder)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def file_fingerprints(path: str | Path | None) -> list[str]:
    """Sorted fingerprints of the distinct query texts of one FlagEmbedding JSONL file ([] for None)."""
    if not path:
        return []
    with open(path, encoding="utf-8") as f:
        return sorted({fingerprint(json.loads(line)["query"]) for line in f if line.strip()})
