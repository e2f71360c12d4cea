"""Quick checks people run after swapping in a fine-tuned model: how alike two texts are, and how a handful of
documents rank for one query — per embedder, and by a cross-encoder when one is given."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from studio.retrieval.dense import encode
from studio.retrieval.rerank import score

# The classic trap: the fruit text shares the keyword 苹果, the useful answer does not.
KEYWORD_TRAP = (
    "苹果手机掉水里怎么办？",
    [
        "苹果是一种常见水果，富含膳食纤维和维生素C，每天吃一个苹果有助于肠道健康。",
        "手机进水后应立即关机，不要充电，擦干表面后放在通风处晾干，尽快送到官方售后检测。",
        "iPhone 的 IP68 防水等级并不覆盖长时间浸泡，进水损坏通常不在保修范围内。",
    ],
)


def similarity(a: str, b: str, models: Sequence[str]) -> dict[str, float]:
    """Cosine similarity of `a` and `b` under each embedder."""
    out = {}
    for model in models:
        va, vb = encode([a, b], model)
        out[model] = float(np.dot(va, vb))
    return out


def score_documents(query: str, documents: Sequence[str], models: Sequence[str],
                    reranker: str | None = None) -> dict[str, list[float]]:
    """Each model's score of every document for `query` (cosine for embedders, the cross-encoder's logit)."""
    out = {}
    for model in models:
        vectors = encode([query, *documents], model)
        out[model] = [float(x) for x in vectors[1:] @ vectors[0]]
    if reranker:
        out[reranker] = score(reranker, query, list(documents))
    return out
