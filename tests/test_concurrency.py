"""Several processes rate at once, as a team of annotators with browser tabs would."""

import multiprocessing as mp
import random

from studio.store import connect
from studio.store.annotators import ensure_annotator
from studio.store.imports import import_batch
from tests.conftest import make_batch

N_PAIRS = 40
WORKERS = ["alice", "bob", "carol", "dave", "alice", "bob"]  # alice and bob each have two tabs open


def annotate_until_done(db_path: str, annotator: str, seed: int, results) -> None:
    from studio.errors import RuleError
    from studio.store.ratings import next_pair, submit_rating

    rng = random.Random(seed)
    db = connect(db_path)
    acknowledged, refused = [], 0
    while (view := next_pair(db, annotator)) is not None:
        rating = rng.choice([0, 1, 2])
        try:
            submit_rating(db, annotator, view.pair_id, rating)
            acknowledged.append((annotator, view.pair_id, rating))
        except RuleError:
            refused += 1
    results.put((acknowledged, refused))


def test_concurrent_annotators_lose_nothing_and_break_no_rule(db_path):
    db = connect(db_path)
    import_batch(db, make_batch(N_PAIRS))
    for name in set(WORKERS):
        ensure_annotator(db, name)
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=annotate_until_done, args=(str(db_path), name, i, results))
             for i, name in enumerate(WORKERS)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0

    assert sum(refused for _, refused in outcomes) == 0, "no annotator was offered a pair that was already full"
    # The last acknowledged rating of each (annotator, pair) is exactly what the database holds.
    expected = {}
    for acknowledged, _ in outcomes:
        for annotator, pair, rating in acknowledged:
            expected[(annotator, pair)] = rating  # a second tab re-rating the same pair replaces it
    stored = {(r["name"], r["pair_id"]): r["rating"] for r in db.query(
        "SELECT a.name, r.pair_id, r.rating FROM ratings r JOIN annotators a ON a.id = r.annotator_id")}
    assert stored.keys() == expected.keys()
    per_pair = list(db.query("SELECT pair_id, count(*) AS n, count(DISTINCT annotator_id) AS raters "
                             "FROM ratings GROUP BY pair_id"))
    assert len(per_pair) == N_PAIRS, "the queue is drained: every pair was rated"
    assert all(row["n"] == 2 and row["raters"] == 2 for row in per_pair), "exactly two different raters per pair"
