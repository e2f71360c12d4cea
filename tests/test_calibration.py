"""Score thresholds from gold labels, checked by hand: on plain scores, then a dense model's and a reranker's scores
of the demo project's gold pairs."""

import numpy as np
import pytest

from studio.errors import StudioError
from studio.evaluation.calibration import calibrate, gold_pairs
from studio.evaluation.thresholds import for_precision, max_f1
from studio.store import opened
from studio.store.gold import gold_set

SCORES = [0.1, 0.4, 0.35, 0.8, 0.9]
RELEVANT = [False, False, True, True, True]


def test_max_f1_picks_the_threshold_with_the_best_f1():
    t = max_f1(SCORES, RELEVANT)
    # >= 0.35: 3 relevant of 4 kept (P 0.75, R 1.0, F1 6/7); >= 0.8: P 1, R 2/3, F1 0.8
    assert t.threshold == 0.35 and t.precision == 0.75 and t.recall == 1.0 and t.f1 == pytest.approx(6 / 7)
    assert (t.positives, t.negatives) == (3, 2)


def test_a_target_precision_gives_the_most_recall_that_reaches_it():
    assert for_precision(SCORES, RELEVANT, 0.99).threshold == 0.8
    assert for_precision(SCORES, RELEVANT, 0.7).threshold == 0.35
    assert for_precision([0.9, 0.1], [False, True], 0.9) is None


def test_one_class_cannot_be_calibrated():
    with pytest.raises(ValueError):
        max_f1([0.1, 0.2], [True, True])


# ------------------------------------------------------------------------------ a model on the project's gold labels

@pytest.fixture
def demo_gold(db_path):
    """The demo's gold labels, made by its raters' ratings through the real import: 23 relevant, 41 irrelevant and
    16 partially relevant pairs over 20 queries."""
    from studio.demo import load_demo

    with opened(db_path) as db:
        load_demo(db)
        return gold_set(db)


def by_hand(scores, relevant, threshold) -> tuple[float, float]:
    """Precision and recall of "score >= threshold is relevant"."""
    kept = np.asarray(scores) >= threshold
    hits = int((kept & np.asarray(relevant)).sum())
    return hits / kept.sum(), hits / sum(relevant)


def assert_thresholds_hold_by_hand(cal):
    """Each threshold's precision and recall are what the scored pairs give; none scores a better F1, and no
    threshold that reaches the target precision recalls more."""
    scores, relevant = cal.scores, cal.relevant
    assert len(scores) == len(relevant) == cal.pairs == cal.positives + cal.negatives
    assert (sum(relevant), len(relevant) - sum(relevant)) == (cal.positives, cal.negatives)
    assert cal.best.precision == pytest.approx(by_hand(scores, relevant, cal.best.threshold)[0])
    assert cal.best.recall == pytest.approx(by_hand(scores, relevant, cal.best.threshold)[1])
    every = [(t, *by_hand(scores, relevant, t)) for t in sorted(set(scores))]
    assert cal.best.f1 == pytest.approx(max(2 * p * r / (p + r) for _, p, r in every if p + r))
    reaching = [r for _, p, r in every if p >= cal.target_precision]
    if not reaching:
        assert cal.at_precision is None
        return
    p, r = by_hand(scores, relevant, cal.at_precision.threshold)
    assert (cal.at_precision.precision, cal.at_precision.recall) == (pytest.approx(p), pytest.approx(r))
    assert p >= cal.target_precision and r == pytest.approx(max(reaching))


def test_a_dense_model_is_calibrated_on_the_gold_pairs_by_cosine_similarity(demo_gold, tmp_path, monkeypatch):
    from studio import config
    from studio.retrieval import cache
    from studio.retrieval.dense import encode

    monkeypatch.setattr(cache, "CACHE_DIR", tmp_path / "cache")
    model = str(config.embedded_model_path())
    cal = calibrate(demo_gold, model, target_precision=0.8)
    assert (cal.kind, cal.pairs, cal.positives, cal.negatives, cal.partial) == ("dense", 64, 23, 41, 16)
    assert_thresholds_hold_by_hand(cal)
    assert 0 < cal.best.recall <= 1 and cal.best.f1 > 2 * 23 / (23 + 64), "better than calling every pair relevant"
    pairs, relevant, _ = gold_pairs(demo_gold)
    (q, d), i = pairs[0], 0
    query, doc = encode([demo_gold.queries[q], demo_gold.corpus[d]], model)
    # bfloat16 on a CPU: a text padded to another batch's length moves its cosines by < 1e-3
    assert cal.scores[i] == pytest.approx(float(query @ doc), abs=1e-3) and cal.relevant[i] == relevant[i]
    corpus = cache.corpus_fingerprint(list(demo_gold.corpus.values()))
    assert [f.name.endswith(f"{corpus}.npy") for f in (tmp_path / "cache").iterdir()] == [True], \
        "the whole corpus is cached, as ⑧'s evaluation on the gold labels caches it"
    assert cal.as_dict()["best"]["threshold"] == cal.best.threshold and "scores" not in cal.as_dict()


def test_a_reranker_is_recognised_and_calibrated_on_its_cross_encoder_scores(demo_gold, tiny_reranker):
    from studio.retrieval.rerank import load_reranker

    cal = calibrate(demo_gold, str(tiny_reranker), target_precision=0.5)
    assert cal.kind == "reranker" and cal.pairs == 64
    assert_thresholds_hold_by_hand(cal)
    pairs, _, _ = gold_pairs(demo_gold)
    q, d = pairs[-1]
    [expected] = np.atleast_1d(load_reranker(str(tiny_reranker)).compute_score([[demo_gold.queries[q],
                                                                                 demo_gold.corpus[d]]]))
    assert cal.scores[-1] == pytest.approx(float(expected), abs=1e-4)


def test_a_training_files_queries_and_partial_labels_are_left_out(demo_gold):
    held = sorted(demo_gold.queries)[:5]
    left = {(q, d) for q in held for d, label in demo_gold.labels[q].items() if label in (0, 2)}
    pairs, relevant, partial = gold_pairs(demo_gold, {demo_gold.queries[q] for q in held})
    whole, _, all_partial = gold_pairs(demo_gold)
    assert set(pairs) == set(whole) - left and len(pairs) == 64 - len(left)
    assert all(demo_gold.labels[q][d] == (2 if r else 0) for (q, d), r in zip(pairs, relevant))
    assert all_partial == 16 and partial == 16 - sum(label == 1 for q in held for label in demo_gold.labels[q].values())


def test_one_kind_of_gold_pair_is_refused_before_any_model_loads(db):
    from conftest import make_batch
    from studio.store.imports import import_batch

    agreed = [(i, who, 2) for i in range(2) for who in ("alice", "bob")] + [(2, "alice", 1), (2, "bob", 1)]
    import_batch(db, make_batch(3, ratings=agreed))
    with pytest.raises(StudioError) as err:
        calibrate(gold_set(db), "/no/such/model")
    assert err.value.code == "calibration_needs_both"
    assert "there are 2 relevant and 0 irrelevant" in err.value.message("en")
    assert "2 个相关、0 个不相关" in err.value.message("zh-CN")


@pytest.mark.parametrize("target", [0, 1.5])
def test_a_target_precision_outside_0_to_1_is_refused(demo_gold, target):
    with pytest.raises(StudioError) as err:
        calibrate(demo_gold, "/no/such/model", target_precision=target)
    assert err.value.code == "bad_precision"
