"""EgoProceL key-step metrics: hand cases, brute-force matching and known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from vasot_dist.eval.procedure import cluster_keysteps, keystep_metrics, keystep_video_scores


def test_egoprocel_script_example_by_hand():
    # the example at the bottom of EgoProceL evaluate/metrics.py, worked by hand:
    # overlaps gt0-p0 = 4, gt5-p1 = 1 are matched; gt1..gt4 go to empty clusters (M = 30 >= 6 classes).
    # intersection 5, gt frames 10, predicted frames in matched clusters 9 + 1 = 10, union 15
    gt = np.array([0, 0, 0, 0, 1, 2, 3, 4, 5, 5])
    pred = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 0])
    s = keystep_video_scores(pred, gt, n_classes=6, n_clusters=30)
    assert s == pytest.approx({"recall": 0.5, "precision": 0.5, "IoU": 1 / 3})


def brute_force_scores(pred, gt, n_classes, n_clusters):
    """Best one-to-one matching (all classes matched, M >= C) by enumeration; None if the optimum is tied."""
    ov = np.zeros((n_classes, n_clusters))
    for p, g in zip(pred, gt):
        ov[g, p] += 1
    best, arg, ties = -1, None, 0
    for cols in itertools.permutations(range(n_clusters), n_classes):
        tot = sum(ov[g, c] for g, c in enumerate(cols))
        if tot > best:
            best, arg, ties = tot, cols, 1
        elif tot == best:
            ties += 1
    if ties > 1:
        return None
    n_pred = sum(np.sum(pred == c) for c in arg)
    t = len(gt)
    return {"recall": best / t, "precision": best / n_pred, "IoU": best / (t + n_pred - best)}


def test_video_scores_against_brute_force_when_optimum_unique():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(30):
        c, m = 3, int(rng.integers(3, 6))
        gt = rng.integers(0, c, 40)
        pred = np.where(rng.random(40) < 0.6, (gt * 2 + 1) % m, rng.integers(0, m, 40))
        ref = brute_force_scores(pred, gt, c, m)
        if ref is None:
            continue
        assert keystep_video_scores(pred, gt, c, m) == pytest.approx(ref)
        checked += 1
    assert checked >= 10


def test_averages_over_videos_and_f1_from_the_averages():
    gts = [np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1, 2, 2])]
    preds = [np.array([1, 1, 0, 0]), np.array([0, 0, 0, 1, 1, 2])]
    s = [keystep_video_scores(p, g, 3, 3) for p, g in zip(preds, gts)]
    out = keystep_metrics(preds, gts, n_classes=3, n_clusters=3)
    r = np.mean([x["recall"] for x in s])
    p = np.mean([x["precision"] for x in s])
    assert out["MoF"] == pytest.approx(r * 100)
    assert out["precision"] == pytest.approx(p * 100)
    assert out["IoU"] == pytest.approx(np.mean([x["IoU"] for x in s]) * 100)
    assert out["F1"] == pytest.approx(2 * p * r / (p + r) * 100)
    # video 1 is a permutation -> perfect; video 2 by hand: overlaps g0p0 1, g1p0 2, g1p1 1, g2p1 1, g2p2 1;
    # every full matching scores at most 3 of 6 frames (e.g. g1p0 + g2p1 + g0p2 or the identity)
    assert s[0]["recall"] == 1.0
    assert s[1]["recall"] == pytest.approx(3 / 6)


def test_permuted_keysteps_are_perfect_and_background_takes_part():
    gt = np.array([0] * 10 + [1] * 5 + [0] * 4 + [2] * 5)
    pred = np.array([{0: 4, 1: 0, 2: 2}[g] for g in gt])
    out = keystep_metrics([pred], [gt], n_classes=3, n_clusters=5)
    assert out == pytest.approx({"MoF": 100.0, "precision": 100.0, "IoU": 100.0, "F1": 100.0})
    # background merged into step 1's cluster: cluster 0 now holds 14 background + 5 step-1 frames and is
    # matched to background (class 0), step 1 gets an empty cluster: recall = (14 + 5) / 24. If background
    # were left out of the matching, steps 1 and 2 would both be found: 100 %.
    pred_merged = np.where(gt == 0, 0, pred)
    out = keystep_metrics([pred_merged], [gt], n_classes=3, n_clusters=5)
    assert out["MoF"] == pytest.approx(19 / 24 * 100)
    assert out["precision"] == pytest.approx(19 / 24 * 100)


def test_errors():
    with pytest.raises(ValueError, match=r"gts\[0\]: labels must lie in \[0, n_classes=2\)"):
        keystep_metrics([np.array([0, 1, 2])], [np.array([0, 1, 2])], n_classes=2)
    with pytest.raises(ValueError, match=r"preds\[0\]: ids must lie"):
        keystep_metrics([np.array([0, -1])], [np.array([0, 1])])
    with pytest.raises(ValueError, match="preds has 1 videos but gts has 2"):
        keystep_metrics([np.array([0])], [np.array([0]), np.array([1])])


def test_cluster_keysteps_recovers_blobs():
    rng = np.random.default_rng(2)
    truth = np.repeat(np.arange(4), 15)
    centres = rng.normal(size=(4, 8)) * 10
    embs = centres[truth] + rng.normal(0, 0.1, (60, 8))
    pred = cluster_keysteps(embs, k=4, seed=0)
    assert pred.shape == (60,) and set(pred.tolist()) == {0, 1, 2, 3}
    assert keystep_metrics([pred], [truth])["MoF"] == pytest.approx(100.0)
    np.testing.assert_array_equal(pred, cluster_keysteps(embs, k=4, seed=0))
    with pytest.raises(ValueError, match="3 frames cannot form k=7 clusters"):
        cluster_keysteps(embs[:3], k=7)
