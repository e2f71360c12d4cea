"""Agreement metrics: kappa against scikit-learn, hand-computed examples, bands, gate and the report."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from studio.agreement import (
    KAPPA_GATE, LABELS, RatingRow, agreement_report, cohen_kappa, confusion_matrix, gwet_ac1,
    landis_koch_band, passes_gate, percent_agreement,
)

# Hand example on all three levels: confusion rows (a) 3, 2, 1 and columns (b) 2, 2, 2 over n = 6.
HAND_A = [0, 0, 0, 1, 1, 2]
HAND_B = [0, 0, 1, 1, 2, 2]


def _sklearn_kappa(a, b, weights):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cohen_kappa_score(a, b, labels=list(LABELS), weights=weights)


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
@pytest.mark.parametrize("seed", range(40))
def test_kappa_matches_sklearn_on_random_ratings(seed, weights):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 120))
    skewed = seed % 2 == 0
    p = [0.9, 0.05, 0.05] if skewed else None
    a = rng.choice(3, size=n, p=p).tolist()
    # The second rater mostly copies the first, so kappa spans the whole range across seeds.
    copy = rng.random(n) < rng.random()
    b = np.where(copy, a, rng.choice(3, size=n, p=p)).tolist()

    ours = cohen_kappa(a, b, weights)
    expected = _sklearn_kappa(a, b, weights)
    if math.isnan(expected):
        assert ours is None
    else:
        assert ours == pytest.approx(expected, abs=1e-12)


def test_kappa_on_textbook_two_category_example():
    # 50 items: both "yes" 20, a yes/b no 5, a no/b yes 10, both "no" 15: p_o = 0.7, p_e = 0.5, kappa = 0.4.
    a = [2] * 20 + [2] * 5 + [0] * 10 + [0] * 15
    b = [2] * 20 + [0] * 5 + [2] * 10 + [0] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    # With a single gap size, weighting scales both disagreements alike and leaves kappa unchanged.
    assert cohen_kappa(a, b, "linear") == pytest.approx(0.4)
    assert cohen_kappa(a, b, "quadratic") == pytest.approx(0.4)


def test_weighted_kappa_credits_near_misses_on_hand_example():
    # p_o = 2/3, p_e = 1/3 -> 0.5; linear: 1 - (1/3)/(8/9) = 5/8; quadratic: 1 - (1/3)/(4/3) = 3/4.
    assert cohen_kappa(HAND_A, HAND_B) == pytest.approx(0.5)
    assert cohen_kappa(HAND_A, HAND_B, "linear") == pytest.approx(5 / 8)
    assert cohen_kappa(HAND_A, HAND_B, "quadratic") == pytest.approx(3 / 4)


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
@pytest.mark.parametrize("label", LABELS)
def test_kappa_is_none_not_nan_when_both_raters_use_one_category(label, weights):
    assert math.isnan(_sklearn_kappa([label] * 7, [label] * 7, weights))
    assert cohen_kappa([label] * 7, [label] * 7, weights) is None


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_kappa_is_none_for_empty_input(weights):
    assert cohen_kappa([], [], weights) is None


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="length"):
        cohen_kappa([0, 1], [0])
    with pytest.raises(ValueError, match="length"):
        percent_agreement([0, 1], [0])
    with pytest.raises(ValueError, match="length"):
        gwet_ac1([0], [])


def test_label_outside_the_scale_raises():
    with pytest.raises(ValueError, match="3"):
        cohen_kappa([0, 3], [0, 1])


def test_unknown_weights_raise():
    with pytest.raises(ValueError, match="weights"):
        cohen_kappa([0, 1], [0, 1], "cubic")


def test_confusion_matrix_rows_are_first_rater():
    assert confusion_matrix(HAND_A, HAND_B) == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert confusion_matrix([2], [0]) == [[0, 0, 0], [0, 0, 0], [1, 0, 0]]


def test_ac1_on_hand_example():
    # pi = (5/12, 4/12, 3/12); p_e = (35 + 32 + 27)/144 / 2 = 47/144; p_a = 96/144 -> AC1 = 49/97.
    assert gwet_ac1(HAND_A, HAND_B) == pytest.approx(49 / 97)


def test_ac1_stays_defined_where_kappa_is_not():
    # Everyone "irrelevant": kappa is undefined, but AC1 reports the perfect agreement.
    assert cohen_kappa([0] * 5, [0] * 5) is None
    assert gwet_ac1([0] * 5, [0] * 5) == pytest.approx(1.0)
    assert gwet_ac1([], []) is None


def test_percent_agreement():
    assert percent_agreement([0, 1, 2, 2], [0, 1, 1, 2]) == pytest.approx(0.75)
    assert percent_agreement(HAND_A, HAND_B) == pytest.approx(4 / 6)
    assert percent_agreement([], []) is None


@pytest.mark.parametrize("kappa, band", [
    (-0.1, "poor"), (0.0, "slight"), (0.2, "slight"), (0.21, "fair"), (0.6, "moderate"),
    (0.61, "substantial"), (0.8, "substantial"), (0.81, "almost_perfect"), (1.0, "almost_perfect"),
    (None, "undefined"),
])
def test_landis_koch_band_boundaries(kappa, band):
    assert landis_koch_band(kappa) == band


def test_gate_at_exactly_point_six():
    assert KAPPA_GATE == 0.6
    assert passes_gate(0.6) is True
    assert passes_gate(0.5999) is False
    assert passes_gate(None) is False


def _rows(*triples):
    return [RatingRow(pair_id=p, annotator=who, rating=r) for p, who, r in triples]


def test_report_on_three_annotators():
    rows = _rows(  # in rating-time order; pairs interleave and pair 5 comes before pair 1
        (5, "carol", 0), (1, "bob", 2), (2, "alice", 0), (1, "alice", 1), (5, "bob", 2),
        (3, "alice", 2), (2, "bob", 0), (4, "carol", 1), (6, "alice", 2), (3, "bob", 2),
        (4, "alice", 1), (7, "bob", 1),
    )
    report = agreement_report(rows)

    assert report.double_rated == 5
    assert report.single_rated == 2
    assert report.disagreements == [1, 5]

    pooled = report.pooled
    assert pooled.annotators == ("*", "*")
    assert pooled.n == 5
    # First vs second rating per pair: (2,1) (0,0) (2,2) (1,1) (0,2).
    assert pooled.confusion == [[1, 0, 1], [0, 1, 0], [0, 1, 1]]
    assert pooled.observed == pytest.approx(3 / 5)

    assert [s.annotators for s in report.by_pair] == [
        ("alice", "bob"), ("alice", "carol"), ("bob", "carol")]
    assert [s.n for s in report.by_pair] == [3, 1, 1]

    ab = report.by_pair[0]
    # Rows are alice (alphabetically first) even though bob rated pair 1 first: alice 1, bob 2.
    assert ab.confusion == [[1, 0, 0], [0, 0, 1], [0, 0, 1]]
    # p_o = 2/3, p_e = (1*1 + 1*0 + 1*2)/9 = 1/3 -> kappa 0.5: moderate, below the gate.
    assert ab.kappa == pytest.approx(0.5)
    assert ab.band == "moderate"
    assert ab.passes_gate is False

    ac = report.by_pair[1]
    assert ac.kappa is None and ac.band == "undefined" and ac.passes_gate is False
    assert ac.observed == 1.0

    bc = report.by_pair[2]
    assert bc.confusion[2][0] == 1  # bob said 2, carol said 0


def test_report_with_no_overlap_lists_no_pairs():
    report = agreement_report(_rows((1, "alice", 2), (2, "bob", 0)))
    assert report.by_pair == []
    assert report.single_rated == 2 and report.double_rated == 0


def test_report_on_empty_input():
    report = agreement_report([])
    p = report.pooled
    assert p.n == 0
    assert (p.observed, p.kappa, p.kappa_linear, p.kappa_quadratic, p.ac1) == (None,) * 5
    assert p.band == "undefined"
    assert p.passes_gate is False
    assert p.confusion == [[0, 0, 0], [0, 0, 0], [0, 0, 0]]
    assert report.by_pair == [] and report.disagreements == []
    assert report.double_rated == 0 and report.single_rated == 0


def test_report_rejects_a_pair_with_three_ratings():
    rows = _rows((1, "alice", 0), (1, "bob", 0), (42, "alice", 2), (42, "bob", 1), (42, "carol", 2))
    with pytest.raises(ValueError, match=r"\b42\b"):
        agreement_report(rows)


def test_report_rejects_a_pair_rated_twice_by_one_annotator():
    with pytest.raises(ValueError, match=r"\b9\b.*alice"):
        agreement_report(_rows((9, "alice", 0), (9, "alice", 1)))
