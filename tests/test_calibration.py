"""Score thresholds from gold labels, checked by hand."""

import pytest

from studio.evaluation.calibration import for_precision, max_f1

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
