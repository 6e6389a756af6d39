"""MS-TCN Edit and F1@k on hand-worked cases."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from vasot_dist.eval.mstcn import edit_score, f1_from_counts, f1_overlap_counts, label_runs, levenshtein


def test_label_runs_hand_case_and_background():
    lab = np.array([3, 3, 0, 0, 0, 5, 3, 3])
    runs, starts, ends = label_runs(lab)
    assert runs.tolist() == [3, 0, 5, 3]
    assert starts.tolist() == [0, 2, 5, 6] and ends.tolist() == [2, 5, 6, 8]
    runs, starts, ends = label_runs(lab, bg_class=0)
    assert runs.tolist() == [3, 5, 3] and starts.tolist() == [0, 5, 6] and ends.tolist() == [2, 6, 8]


def test_levenshtein_hand_cases():
    # kitten -> sitting: 3 edits, written as ints
    assert levenshtein([10, 8, 19, 19, 4, 13], [18, 8, 19, 19, 8, 13, 6]) == 3
    assert levenshtein([], [1, 2]) == 2
    assert levenshtein([1, 2, 3], [1, 2, 3]) == 0


def test_levenshtein_against_recursive_definition():
    rng = np.random.default_rng(1)

    def ref(a, b):
        @functools.cache
        def d(i, j):
            if i == 0:
                return j
            if j == 0:
                return i
            return min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] != b[j - 1]))

        return d(len(a), len(b))

    for _ in range(30):
        a = tuple(rng.integers(0, 3, rng.integers(0, 7)).tolist())
        b = tuple(rng.integers(0, 3, rng.integers(0, 7)).tolist())
        assert levenshtein(a, b) == ref(a, b)


def test_edit_score_hand_case():
    pred = np.array([1, 1, 2, 2, 3, 3])  # segments 1 2 3
    gt = np.array([1, 1, 1, 3, 3, 3])  # segments 1 3 -> one deletion, max len 3
    assert edit_score(pred, gt) == pytest.approx((1 - 1 / 3) * 100)
    assert edit_score(gt, gt) == 100.0
    # background segments ignored: 0 0 1 1 0 2 vs 1 2 -> identical label sequences
    assert edit_score(np.array([0, 0, 1, 1, 0, 2]), np.array([1, 1, 1, 2, 2, 2]), bg_class=0) == 100.0
    assert edit_score(np.array([0, 0]), np.array([0, 0]), bg_class=0) == 100.0


def test_f1_overlap_hand_cases():
    gt = np.array([0] * 10 + [1] * 10)
    pred = np.array([0] * 5 + [1] * 15)
    # IoU(pred0, gt0) = 5/10 = 0.5, IoU(pred1, gt1) = 10/15
    assert f1_overlap_counts(pred, gt, 0.5) == (2, 0, 0)
    assert f1_overlap_counts(pred, gt, 0.6) == (1, 1, 1)
    assert f1_from_counts(1, 1, 1) == pytest.approx(50.0)
    # two predicted segments of label 0 on one gt segment: the second is a false positive
    gt2 = np.zeros(10, dtype=int)
    pred2 = np.array([0] * 4 + [1] * 2 + [0] * 4)
    assert f1_overlap_counts(pred2, gt2, 0.25) == (1, 2, 0)
    assert f1_from_counts(1, 2, 0) == pytest.approx(2 * (1 / 3) * 1 / (1 / 3 + 1) * 100)
    # background excluded from both sides
    assert f1_overlap_counts(np.array([9, 9, 1, 1]), np.array([9, 9, 1, 1]), 0.5, bg_class=9) == (1, 0, 0)
    assert f1_from_counts(0, 0, 0) == 0.0


def test_f1_rejects_bad_overlap():
    with pytest.raises(ValueError, match="overlap"):
        f1_overlap_counts(np.zeros(3, dtype=int), np.zeros(3, dtype=int), 10)
