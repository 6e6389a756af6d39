"""Segmentation metrics against brute-force confusion matrices, hand cases and known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import binom

from vasot_dist.eval.hungarian import hungarian_mapping
from vasot_dist.eval.segmentation import sampled_f1, segmentation_metrics


def confusion(pred, gt):
    pu, gu = sorted(set(pred.tolist())), sorted(set(gt.tolist()))
    c = np.zeros((len(pu), len(gu)), dtype=int)
    for p, g in zip(pred.tolist(), gt.tolist()):
        c[pu.index(p), gu.index(g)] += 1
    return c, pu, gu


def brute_mof_miou(pred, gt):
    """Best matching by trying every injective map; returns (MoF, mIoU, optimum_is_unique)."""
    c, pu, gu = confusion(pred, gt)
    n_p, n_g = c.shape
    maps = []
    if n_p <= n_g:
        for cols in itertools.permutations(range(n_g), n_p):
            maps.append(list(enumerate(cols)))
    else:
        for rows in itertools.permutations(range(n_p), n_g):
            maps.append([(i, j) for j, i in enumerate(rows)])
    totals = [sum(c[i, j] for i, j in m) for m in maps]
    best = max(totals)
    unique = totals.count(best) == 1
    m = maps[totals.index(best)]
    ious = [c[i, j] / (c[i, :].sum() + c[:, j].sum() - c[i, j]) for i, j in m]
    return best / len(gt), sum(ious) / n_g, unique


def random_case(rng, n_videos=3, n_gt=4, n_pred=4, length=(30, 60)):
    gts, preds = [], []
    for _ in range(n_videos):
        t = int(rng.integers(*length))
        g = np.sort(rng.integers(0, n_gt, t))
        p = np.where(rng.random(t) < 0.7, (g + 1) % n_pred, rng.integers(0, n_pred, t))
        gts.append(g)
        preds.append(p)
    return preds, gts


def test_full_mof_miou_against_brute_force():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(40):
        preds, gts = random_case(rng, n_pred=int(rng.integers(2, 6)))
        cat_p, cat_g = np.concatenate(preds), np.concatenate(gts)
        ref_mof, ref_miou, unique = brute_mof_miou(cat_p, cat_g)
        out = segmentation_metrics(preds, gts, mode="full")
        assert out["MoF"] == pytest.approx(ref_mof * 100)
        if unique:  # mIoU depends on which optimum is chosen when there are ties
            assert out["mIoU"] == pytest.approx(ref_miou * 100)
            checked += 1
    assert checked >= 20


def test_per_video_is_unweighted_mean_of_video_scores():
    rng = np.random.default_rng(1)
    preds, gts = random_case(rng, n_videos=4)
    refs = [brute_mof_miou(p, g) for p, g in zip(preds, gts)]
    assert all(u for _, _, u in refs)
    out = segmentation_metrics(preds, gts, mode="per_video")
    assert out["MoF"] == pytest.approx(np.mean([r[0] for r in refs]) * 100)
    assert out["mIoU"] == pytest.approx(np.mean([r[1] for r in refs]) * 100)


def test_full_and_per_video_differ_when_videos_use_clusters_differently():
    gts = [np.array([0] * 6 + [1] * 4), np.array([0] * 6 + [1] * 4)]
    preds = [np.array([5] * 6 + [6] * 4), np.array([6] * 6 + [5] * 4)]  # swapped in video 2
    per = segmentation_metrics(preds, gts, mode="per_video")
    full = segmentation_metrics(preds, gts, mode="full")
    assert per["MoF"] == pytest.approx(100.0)
    # full: one map for both videos; counts (5,0)=6, (5,1)=4, (6,0)=6, (6,1)=4 -> any matching gets
    # 6 + 4 = 10 of 20 frames
    assert full["MoF"] == pytest.approx(50.0)


@pytest.mark.parametrize("mode", ["full", "per_video"])
def test_perfect_permuted_predictions_score_100(mode):
    order = [0, 1, 2]
    gts = [np.repeat(order, [20, 25, 30]), np.repeat(order, [30, 20, 25])]
    preds = [np.array([{0: 8, 1: 3, 2: 5}[g] for g in gt]) for gt in gts]
    out = segmentation_metrics(preds, gts, mode=mode)
    for key in ("MoF", "mIoU", "Edit", "F1@10", "F1@25", "F1@50", "F1_recall", "F1_precision", "F1"):
        assert out[key] == pytest.approx(100.0, abs=1e-4), key


def test_constant_prediction_gives_majority_class_mof():
    gts = [np.array([0] * 5 + [1] * 12 + [2] * 3), np.array([1] * 4 + [2] * 6)]
    preds = [np.full(20, 4), np.full(10, 4)]
    out = segmentation_metrics(preds, gts, mode="full")
    assert out["MoF"] == pytest.approx(16 / 30 * 100)
    # matched pair (4, class 1): IoU = 16 / 30; three ground-truth classes
    assert out["mIoU"] == pytest.approx(16 / 30 / 3 * 100)


def test_exclude_cls_removes_frames_before_everything():
    rng = np.random.default_rng(3)
    preds, gts = random_case(rng, n_videos=3)
    # put a background label -1 into the ground truth with arbitrary predictions on those frames
    gts_bg, preds_bg = [], []
    for p, g in zip(preds, gts):
        mask = rng.random(len(g)) < 0.3
        gts_bg.append(np.where(mask, -1, g))
        preds_bg.append(np.where(mask, rng.integers(0, 4, len(g)), p))
    dropped_p = [p[g != -1] for p, g in zip(preds_bg, gts_bg)]
    dropped_g = [g[g != -1] for g in gts_bg]
    for mode in ("full", "per_video"):
        with_excl = segmentation_metrics(preds_bg, gts_bg, mode=mode, exclude_cls=-1, seed=7)
        by_hand = segmentation_metrics(dropped_p, dropped_g, mode=mode, seed=7)
        assert with_excl == pytest.approx(by_hand)
        assert segmentation_metrics(preds_bg, gts_bg, mode=mode, seed=7)["MoF"] != pytest.approx(
            with_excl["MoF"]
        )


def test_sampled_f1_precision_uses_videos_times_actions():
    # one video that repeats action 0: 3 segments all right, 2 actions -> precision 3 / (1 * 2) = 1.5 (ASOT quirk)
    gt = np.array([0] * 20 + [1] * 20 + [0] * 20)
    f1, precision, recall = sampled_f1(gt, gt, {0: 0, 1: 1}, n_videos=1, rng=np.random.default_rng(0))
    assert precision == pytest.approx(1.5)
    assert recall == pytest.approx(1.0)
    assert f1 == pytest.approx(2 * 1.5 / 2.5, rel=1e-6)
    # two videos, 3 actions: denominator n_videos * n_actions
    gts = [np.repeat([0, 1, 2], 20)] * 2
    out = segmentation_metrics(gts, gts, mode="full")
    assert out["F1_precision"] == pytest.approx(100.0)


def test_sampled_f1_unmatched_class_never_true_positive():
    gt = np.array([0] * 10 + [1] * 10)
    f1, precision, recall = sampled_f1(np.zeros(20, dtype=int), gt, {0: 0}, 1, np.random.default_rng(0))
    # segment of class 0 is [0, 10] inclusive (10 of 11 frames predicted 0) -> TP; class 1 unmatched
    assert recall == pytest.approx(0.5)
    assert precision == pytest.approx(0.5)


def test_sampled_f1_matches_binomial_expectation_with_inclusive_upper_bound():
    # gt 0 1 1 1 1 1: segment 0 is [0, 1] inclusive -> samples frames 0 and 1, half of them predicted 0:
    # P(TP) = P(Bin(15, 1/2) >= 8) = 1/2 (an exclusive bound would give 1). The last segment [1, 5] ends at
    # T - 1 and is all 1 -> P(TP) = 1. Expected precision = (1/2 + 1) / (1 video * 2 actions).
    gt = np.array([0, 1, 1, 1, 1, 1])
    n_rep = 20000
    _, precision, recall = sampled_f1(gt, gt, {0: 0, 1: 1}, 1, np.random.default_rng(5), n_repeats=n_rep)
    q = binom.sf(7, 15, 0.5)
    assert q == pytest.approx(0.5)
    sd = np.sqrt(q * (1 - q) / n_rep) / 2.0
    assert abs(precision - (q + 1.0) / 2.0) < 5 * sd
    assert recall == pytest.approx(precision)  # 2 segments, 2 actions, 1 video


def test_sampled_f1_is_seeded():
    rng = np.random.default_rng(9)
    preds, gts = random_case(rng)
    a = segmentation_metrics(preds, gts, seed=1)
    b = segmentation_metrics(preds, gts, seed=1)
    assert a == b


def test_edit_and_f1k_use_the_hungarian_map_and_bg_class():
    gt = np.array([0] * 4 + [1] * 6 + [2] * 6 + [0] * 4)  # 0 = background
    pred = np.array([7] * 4 + [3] * 6 + [3] * 3 + [9] * 3 + [7] * 4)
    mapping = hungarian_mapping(pred, gt)
    assert mapping == {7: 0, 3: 1, 9: 2}
    out = segmentation_metrics([pred], [gt], bg_class=0)
    # mapped pred segments (bg dropped): 1 [4,13), 2 [13,16) ; gt: 1 [4,10), 2 [10,16)
    # IoU(1) = 6/9, IoU(2) = 3/6 -> F1@50: 2 TP; edit 100
    assert out["Edit"] == pytest.approx(100.0)
    assert out["F1@50"] == pytest.approx(100.0)
    out_nobg = segmentation_metrics([pred], [gt])
    assert out_nobg["Edit"] == pytest.approx(100.0)  # same sequences with 0 at both ends
    # unmatched clusters become their own segments and never match
    pred2 = np.array([7] * 4 + [3] * 6 + [5] * 6 + [7] * 4)
    gt2 = np.array([0] * 4 + [1] * 6 + [1] * 6 + [0] * 4)
    out2 = segmentation_metrics([pred2], [gt2], bg_class=0)
    # mapped: 1 [4,10), fresh [10,16) vs gt 1 [4,16): P = [1, x], Y = [1] -> edit 50; IoU(1) = 6/12 -> TP at 50
    assert out2["Edit"] == pytest.approx(50.0)
    assert out2["F1@50"] == pytest.approx(2 * 0.5 * 1 / 1.5 * 100)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"video 1: preds\[1\] has 3 frames but gts\[1\] has 4"):
        segmentation_metrics([np.zeros(2, int), np.zeros(3, int)], [np.zeros(2, int), np.zeros(4, int)])
    with pytest.raises(ValueError, match="preds has 1 videos but gts has 2"):
        segmentation_metrics([np.zeros(2, int)], [np.zeros(2, int), np.zeros(4, int)])
    with pytest.raises(ValueError, match="mode"):
        segmentation_metrics([np.zeros(2, int)], [np.zeros(2, int)], mode="video")
    with pytest.raises(ValueError, match="wrap it in a list"):
        segmentation_metrics(np.zeros(2, int), np.zeros(2, int))
    with pytest.raises(ValueError, match="no frames left"):
        segmentation_metrics([np.zeros(2, int)], [np.full(2, -1)], exclude_cls=-1)
