"""Split gold queries into training and validation sets without leaking positives across the split."""

from __future__ import annotations

import random
from typing import NamedTuple

from studio.records import GoldSet


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


class Split(NamedTuple):
    """Query keys of each side of an export, each sorted: training lines, validation lines (a loss to watch), and
    the test share kept back for evaluation (no line written; named in the manifest)."""

    train: list[str]
    valid: list[str]
    test: list[str]


def split_queries(gold: GoldSet, valid_fraction: float, test_fraction: float, seed: int,
                  partial_as_positive: bool) -> Split:
    """Split the queries that have a positive into training, validation and test keys.

    Queries that share a positive document form one group and land on the same side, so neither a query nor a
    positive document is on two sides. Groups are shuffled with `seed`; the test side takes groups until it holds
    about `test_fraction` of the queries, then the validation side about `valid_fraction`; training always keeps at
    least one group, and a non-zero fraction gets at least one group while two are left (the test side first: a
    fine-tune that cannot be measured is worth less than one without a validation loss). Queries without a positive
    are on no side (they make no training line, and an evaluation cannot score them).
    """
    groups = query_groups(gold, partial_as_positive)
    total = sum(len(g) for g in groups)
    order = list(range(len(groups)))
    random.Random(seed).shuffle(order)
    taken: set[int] = set()

    def take(fraction: float) -> set[int]:
        if fraction <= 0 or len(groups) - len(taken) < 2:
            return set()
        target = max(1, round(fraction * total))
        chosen: set[int] = set()
        size = 0
        for i in order:
            if i not in taken and size + len(groups[i]) <= target and len(groups) - len(taken) - len(chosen) > 1:
                chosen.add(i)
                size += len(groups[i])
        if not chosen:
            # Every group is larger than the target: take the smallest one (first in shuffled order) rather than none.
            chosen.add(min((i for i in order if i not in taken), key=lambda i: len(groups[i])))
        taken.update(chosen)
        return chosen

    test = take(test_fraction)
    valid = take(valid_fraction)
    keys = lambda chosen: sorted(q for i in chosen for q in groups[i])  # noqa: E731
    return Split(sorted(q for i, g in enumerate(groups) if i not in taken for q in g), keys(valid), keys(test))


def split_by_query(gold: GoldSet, valid_fraction: float, seed: int,
                   partial_as_positive: bool) -> tuple[list[str], list[str]]:
    """Training and validation keys without a test share (:func:`split_queries` with ``test_fraction=0``)."""
    train, valid, _ = split_queries(gold, valid_fraction, 0.0, seed, partial_as_positive)
    return train, valid
