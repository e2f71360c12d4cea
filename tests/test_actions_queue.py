"""The annotation queue's strategies, through the actions layer: admins choose, everyone is served in that order."""

from __future__ import annotations

import pytest

from actors import ADMIN, ANNOTATOR, EXPERT, assert_refused
from studio.actions import Actor, Project, annotate, queue
from studio.store import opened


@pytest.fixture
def p(db_path) -> Project:
    from studio.demo import load_demo

    with opened(db_path) as db:
        load_demo(db)
    return Project(db_path)


def untouched_order(p: Project) -> list[int]:
    from studio.store.queue import serving_order

    with opened(p.db_path) as db:
        return serving_order(db, 1000)


def test_the_default_is_imported_order_and_makeup_adds_up(p):
    m = queue.makeup(p, ADMIN)
    assert m["strategy"] == "imported" and m["queued"] == 180 and m["double_rated"] == 100
    assert m["untouched"] + m["half_taken"] + m["double_rated"] <= m["queued"]
    order = untouched_order(p)
    assert len(order) == m["untouched"] == 80 and order == sorted(order)


def test_random_order_is_a_seeded_permutation_and_imported_restores_the_order(p):
    before = untouched_order(p)
    queue.set_strategy(p, ADMIN, "random", seed=1)
    shuffled = untouched_order(p)
    assert sorted(shuffled) == sorted(before) and shuffled != before
    queue.set_strategy(p, ADMIN, "random", seed=1)
    assert untouched_order(p) == shuffled, "the same seed gives the same order"
    queue.set_strategy(p, ADMIN, "imported")
    assert untouched_order(p) == before


def test_systems_serves_what_some_system_ranks_highest_first_and_disagreements_before_agreement(p):
    m = queue.set_strategy(p, ADMIN, "systems")
    assert m["strategy"] == "systems"
    with opened(p.db_path) as db:
        entry = next(db.query("SELECT actor, after FROM audit_log WHERE action = 'queue.strategy' ORDER BY id DESC"))
    assert entry["actor"] == "root" and '"bm25"' in entry["after"]
    from studio import queue as strategies
    from studio.queue.ranks import system_ranks
    from studio.store import pairs as store_pairs
    from studio.store.queue import untouched_pairs

    with opened(p.db_path) as db:
        pairs, docs, qs = untouched_pairs(db), store_pairs.corpus(db), store_pairs.queries(db)
    ranks = system_ranks(pairs, docs, qs, ["default"], None)
    best = {pair["id"]: min(int(ranks["bm25"][i]), int(ranks["default"][i])) for i, pair in enumerate(pairs)}
    spread = {pair["id"]: abs(int(ranks["bm25"][i]) - int(ranks["default"][i])) for i, pair in enumerate(pairs)}
    order = untouched_order(p)
    keys = [(best[i], spread[i]) for i in order]
    assert keys == sorted(keys), "the best rank any system gives first, agreement first at the same depth"
    first = annotate.start(p, Actor("newcomer", "annotator", signed_in=True)).pair.pair_id
    assert first == order[0], "what the strategy put first is what an annotator gets"


def test_disagree_serves_top_ranked_pairs_the_systems_contradict_first(p):
    from studio import queue as strategies
    from studio.queue.ranks import system_ranks
    from studio.store import pairs as store_pairs
    from studio.store.queue import untouched_pairs

    with opened(p.db_path) as db:
        pairs, docs, qs = untouched_pairs(db), store_pairs.corpus(db), store_pairs.queries(db)
    ranks = system_ranks(pairs, docs, qs, ["default"], None)
    queue.set_strategy(p, ADMIN, "disagree")
    info = {pair["id"]: (min(int(ranks["bm25"][i]), int(ranks["default"][i])),
                         abs(int(ranks["bm25"][i]) - int(ranks["default"][i]))) for i, pair in enumerate(pairs)}
    order = untouched_order(p)
    top = [info[i] for i in order if info[i][0] <= strategies.TOP]
    assert [info[i] for i in order[:len(top)]] == top, "some system's top 10 first"
    assert [s for _, s in top] == sorted((s for _, s in top), reverse=True), "widest disagreement first"


def test_uncertain_calibrates_its_threshold_on_the_gold_labels(p):
    queue.set_strategy(p, ADMIN, "uncertain")
    with opened(p.db_path) as db:
        after = next(db.query("SELECT after FROM audit_log WHERE action = 'queue.strategy'"))["after"]
    assert '"threshold_from": "max_f1"' in after
    assert len(untouched_order(p)) == 80


def test_pairs_added_after_a_strategy_wait_in_imported_order_and_are_counted(p):
    from conftest import make_batch
    from studio.store.imports import import_batch

    queue.set_strategy(p, ADMIN, "random")
    with opened(p.db_path) as db:
        import_batch(db, make_batch(3))
    m = queue.makeup(p, ADMIN)
    assert m["untouched_unordered"] == 3 and untouched_order(p)[-3:] == sorted(untouched_order(p)[-3:])


@pytest.mark.parametrize("actor", [ANNOTATOR, EXPERT], ids=lambda a: a.role)
def test_only_admins_see_or_change_the_queue_strategy(p, actor):
    before = untouched_order(p)
    assert_refused(p, actor, queue.set_strategy, "random")
    assert_refused(p, actor, queue.set_strategy, "negatives")
    assert_refused(p, actor, queue.check_negatives)  # queue.check_negatives: adds pairs, so admins only too
    assert_refused(p, actor, queue.makeup)
    assert untouched_order(p) == before
    with opened(p.db_path) as db:
        assert next(db.query("SELECT count(*) AS n FROM pairs WHERE source = 'check-negatives'"))["n"] == 0
