"""Split gold queries into training and validation sets without leaking positives across the split."""

from __future__ import annotations

import random

from studio.dataset.gold import GoldSet


def query_groups(gold: GoldSet, partial_as_positive: bool) -> list[list[str]]:
    """Queries with at least one positive, grouped so that queries sharing a positive document are together.

    Returns:
        Groups of query keys, each sorted, the groups in order of their first key.
    """
    parent: dict[str, str] = {}

    def find(q: str) -> str:
        while parent[q] != q:
            parent[q] = parent[parent[q]]  # path halving keeps the trees flat
            q = parent[q]
        return q

    owner: dict[str, str] = {}  # positive document → the first query seen with it
    for qid in sorted(gold.labels):
        positives = gold.positives(qid, partial_as_positive)
        if not positives:
            continue
        parent[qid] = qid
        for doc in positives:
            if doc in owner:
                a, b = find(owner[doc]), find(qid)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                owner[doc] = qid
    groups: dict[str, list[str]] = {}
    for qid in sorted(parent):
        groups.setdefault(find(qid), []).append(qid)
    return sorted(groups.values())


def split_by_query(gold: GoldSet, valid_fraction: float, seed: int,
                   partial_as_positive: bool) -> tuple[list[str], list[str]]:
    """Split the queries that have a positive into training and validation keys.

    Queries that share a positive document form one group and land on the same side, so neither a query nor a
    positive document is on both sides. Groups are shuffled with `seed` and moved to validation until it holds
    about `valid_fraction` of the queries; training always keeps at least one group. Queries without a positive
    are in neither list (they make no training line).

    Returns:
        (train query keys, validation query keys), each sorted.
    """
    groups = query_groups(gold, partial_as_positive)
    total = sum(len(g) for g in groups)
    if valid_fraction <= 0 or len(groups) < 2:
        return sorted(q for g in groups for q in g), []
    target = max(1, round(valid_fraction * total))
    order = list(range(len(groups)))
    random.Random(seed).shuffle(order)
    valid: set[int] = set()
    size = 0
    for i in order:
        if size + len(groups[i]) <= target:
            valid.add(i)
            size += len(groups[i])
    if not valid:
        # Every group is larger than the target: take the smallest one (first in shuffled order) rather than none.
        valid.add(min(order, key=lambda i: len(groups[i])))
    train = sorted(q for i, g in enumerate(groups) if i not in valid for q in g)
    return train, sorted(q for i in valid for q in groups[i])
