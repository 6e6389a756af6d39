"""Hungarian matching against brute force over every one-to-one assignment."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from vasot_dist.eval.hungarian import count_matrix, hungarian_mapping, relabel


def brute_counts(pred, gt):
    pu, gu = sorted(set(pred.tolist())), sorted(set(gt.tolist()))
    c = np.zeros((len(pu), len(gu)), dtype=int)
    for p, g in zip(pred, gt):
        c[pu.index(p), gu.index(g)] += 1
    return c, pu, gu


def brute_best_total(pred, gt):
    """Max over all injective maps between the smaller and the larger label set of the matched frame count."""
    c, _, _ = brute_counts(pred, gt)
    n_p, n_g = c.shape
    best = 0
    if n_p <= n_g:
        for cols in itertools.permutations(range(n_g), n_p):
            best = max(best, sum(c[i, j] for i, j in enumerate(cols)))
    else:
        for rows in itertools.permutations(range(n_p), n_g):
            best = max(best, sum(c[i, j] for j, i in enumerate(rows)))
    return best


def matched_total(pred, gt, mapping):
    return sum(int(np.sum((pred == p) & (gt == g))) for p, g in mapping.items())


def test_count_matrix_matches_loops():
    rng = np.random.default_rng(0)
    pred = rng.integers(-1, 4, 300)
    gt = rng.integers(2, 7, 300)
    c, pu, gu = count_matrix(pred, gt)
    c_ref, pu_ref, gu_ref = brute_counts(pred, gt)
    np.testing.assert_array_equal(c, c_ref)
    assert pu.tolist() == pu_ref and gu.tolist() == gu_ref


@pytest.mark.parametrize("n_pred,n_gt", [(3, 3), (2, 4), (5, 3), (4, 4), (1, 3)])
def test_hungarian_is_optimal_against_permutation_search(n_pred, n_gt):
    rng = np.random.default_rng(n_pred * 10 + n_gt)
    for _ in range(5):
        gt = rng.integers(0, n_gt, 120)
        # correlated predictions, so the optimum is not trivially uniform
        noise = rng.integers(0, n_pred, 120)
        pred = np.where(rng.random(120) < 0.6, (gt * 7 + 3) % n_pred, noise)
        mapping = hungarian_mapping(pred, gt)
        assert matched_total(pred, gt, mapping) == brute_best_total(pred, gt)
        # one-to-one, and as many pairs as the smaller label set
        assert len(set(mapping.values())) == len(mapping) == min(len(np.unique(pred)), len(np.unique(gt)))


def test_permuted_consistent_clustering_maps_back_exactly():
    gt = np.repeat([0, 1, 2, 3], 5)
    perm = {0: 7, 1: 2, 2: 9, 3: 4}
    pred = np.array([perm[g] for g in gt])
    assert hungarian_mapping(pred, gt) == {v: k for k, v in perm.items()}


def test_relabel_gives_unmatched_clusters_fresh_distinct_labels():
    pred = np.array([5, 5, 6, 8, 9, 9])
    out = relabel(pred, {5: 0, 8: 1}, unmatched_start=10)
    np.testing.assert_array_equal(out, [0, 0, 10, 1, 11, 11])


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="pred has 3 frames but gt has 2"):
        hungarian_mapping(np.array([0, 1, 2]), np.array([0, 1]))
    with pytest.raises(ValueError, match="integer labels"):
        hungarian_mapping(np.array([0.5, 1.0]), np.array([0, 1]))
