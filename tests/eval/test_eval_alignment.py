"""Alignment protocol metrics against independent computations and known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau

from vasot_dist.eval.alignment import (
    alignment_accuracy,
    alignment_progress_error,
    gt_match_from_progress,
    kendalls_tau,
    matches_from_plan,
    num_videos_for_fraction,
    phase_classification,
    phase_progression,
    progression_targets,
    retrieval_ap,
)

# ---------------------------------------------------------------- phase classification


def onehot_embs(labels, n_classes, rng, scale=3.0, noise=0.05):
    return np.eye(n_classes)[labels] * scale + rng.normal(0, noise, (len(labels), n_classes))


@pytest.mark.parametrize(
    "frac,n,expected", [(0.1, 10, 1), (0.5, 10, 5), (1.0, 10, 10), (0.1, 5, 1), (0.5, 7, 3), (0.1, 30, 3)]
)
def test_num_videos_for_fraction(frac, n, expected):
    assert num_videos_for_fraction(frac, n) == expected


def test_phase_classification_separable_data_is_perfect():
    rng = np.random.default_rng(0)
    labels = [np.repeat([0, 1, 2, 3], rng.integers(3, 8, 4)) for _ in range(6)]
    embs = [onehot_embs(lab, 4, rng) for lab in labels]
    out = phase_classification(embs, labels, embs, labels)  # protocol "lav": test == train
    assert out == {0.1: 1.0, 0.5: 1.0, 1.0: 1.0}


def test_phase_classification_fits_on_the_first_n_videos():
    # train video v holds classes 2v and 2v+1 only; class c has c+1 test frames. With n videos the SVM knows
    # classes 0..2n-1, so test accuracy = sum_{c<2n}(c+1) / sum_c(c+1) when it uses exactly the FIRST n.
    rng = np.random.default_rng(1)
    n_cls = 20
    train_labels = [np.repeat([2 * v, 2 * v + 1], 6) for v in range(10)]
    train_embs = [onehot_embs(lab, n_cls, rng) for lab in train_labels]
    test_labels = [np.repeat(np.arange(n_cls), np.arange(n_cls) + 1)]
    test_embs = [onehot_embs(test_labels[0], n_cls, rng)]
    out = phase_classification(train_embs, train_labels, test_embs, test_labels, fractions=(0.1, 0.5, 1.0))
    total = sum(range(1, n_cls + 1))
    for frac, n in ((0.1, 1), (0.5, 5), (1.0, 10)):
        assert out[frac] == pytest.approx(sum(c + 1 for c in range(2 * n)) / total)


def test_phase_classification_single_class_falls_back_to_constant():
    rng = np.random.default_rng(2)
    train_labels = [np.zeros(5, int), np.repeat([0, 1], 5)]
    train_embs = [onehot_embs(lab, 2, rng) for lab in train_labels]
    test_labels = [np.array([0, 0, 0, 1])]
    out = phase_classification(
        train_embs, train_labels, [onehot_embs(test_labels[0], 2, rng)], test_labels, fractions=(0.5,)
    )
    assert out[0.5] == pytest.approx(0.75)


def test_phase_classification_errors():
    rng = np.random.default_rng(0)
    e = [rng.normal(size=(4, 3))]
    with pytest.raises(
        ValueError, match=r"video 0: train_embs\[0\] has 4 frames but train_labels\[0\] has 3"
    ):
        phase_classification(e, [np.zeros(3, int)], e, [np.zeros(4, int)])
    with pytest.raises(ValueError, match="D=3 but test_embs have D=2"):
        phase_classification(e, [np.arange(4) % 2], [rng.normal(size=(4, 2))], [np.zeros(4, int)])
    with pytest.raises(ValueError, match="fraction"):
        phase_classification(e, [np.arange(4) % 2], e, [np.zeros(4, int)], fractions=(0.0,))


# ---------------------------------------------------------------- phase progression


def test_progression_targets_hand_case():
    t = progression_targets(np.array([0, 0, 1, 1, 2]), key_events=[0, 1, 3])
    np.testing.assert_allclose(t[:, 0], [-0.2, 0.0, 0.2, 0.4, 0.6])  # t_0 = 1
    np.testing.assert_allclose(t[:, 1], [-0.6, -0.4, -0.2, 0.0, 0.2])  # t_1 = 3
    np.testing.assert_allclose(t[:, 2], [0.2, 0.4, 0.6, 0.8, 1.0])  # absent -> t_e = -1 (LAV/VAOT)


def progression_videos(rng, n_videos, n_classes=4, noise_dims=3):
    labels, embs = [], []
    for _ in range(n_videos):
        lab = np.repeat(np.arange(n_classes), rng.integers(4, 9, n_classes))
        targets = progression_targets(lab, list(range(n_classes - 1)))
        embs.append(np.concatenate([targets, rng.normal(size=(len(lab), noise_dims))], axis=1))
        labels.append(lab)
    return embs, labels


def test_progression_is_one_when_embeddings_encode_progress_linearly():
    rng = np.random.default_rng(3)
    tr_e, tr_l = progression_videos(rng, 6)
    te_e, te_l = progression_videos(rng, 3)
    # an invertible linear mix of the targets is still a linear encoding
    mix = rng.normal(size=(6, 6))
    tr_e = [e @ mix for e in tr_e]
    te_e = [e @ mix for e in te_e]
    out = phase_progression(tr_e, tr_l, te_e, te_l, fractions=(0.5, 1.0))
    assert out[1.0] == pytest.approx(1.0, abs=1e-9)
    assert out[0.5] == pytest.approx(1.0, abs=1e-9)


def test_progression_r2_matches_least_squares_by_hand():
    rng = np.random.default_rng(4)
    tr_l = [np.repeat([0, 1, 2], rng.integers(5, 9, 3)) for _ in range(4)]
    te_l = [np.repeat([0, 1, 2], rng.integers(5, 9, 3)) for _ in range(2)]
    tr_e = [rng.normal(size=(len(lab), 3)) for lab in tr_l]
    te_e = [rng.normal(size=(len(lab), 3)) for lab in te_l]
    got = phase_progression(tr_e, tr_l, te_e, te_l)[1.0]
    x = np.concatenate(tr_e)
    xa = np.c_[x, np.ones(len(x))]
    xt = np.concatenate(te_e)
    xta = np.c_[xt, np.ones(len(xt))]
    r2 = []
    for e in (0, 1):  # C = 3 classes -> key events 0, 1
        y = np.concatenate([progression_targets(lab, [e])[:, 0] for lab in tr_l])
        yt = np.concatenate([progression_targets(lab, [e])[:, 0] for lab in te_l])
        w = np.linalg.lstsq(xa, y, rcond=None)[0]
        r2.append(1 - np.sum((yt - xta @ w) ** 2) / np.sum((yt - yt.mean()) ** 2))
    assert got == pytest.approx(np.mean(r2))


# ---------------------------------------------------------------- Kendall's tau


def test_kendalls_tau_identical_and_reversed_videos():
    base = np.linspace(0, 1, 41)[:, None] * np.ones((1, 3))  # 41: strided reversal hits the same grid
    assert kendalls_tau([base, base.copy(), base + 1e-3], stride=1) == pytest.approx(1.0)
    assert kendalls_tau([base, base[::-1]], stride=5) == pytest.approx(-1.0)


def test_kendalls_tau_hand_case_against_scipy():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([[0.0], [2.0], [1.0], [3.0]])
    # nn of x in y: [0, 2, 1, 3]; nn of y in x: [0, 2, 1, 3]; 5 concordant, 1 discordant of 6 -> 4/6
    nn = np.array([0, 2, 1, 3])
    assert kendalltau(np.arange(4), nn).statistic == pytest.approx(4 / 6)
    assert kendalls_tau([x, y], stride=1) == pytest.approx(4 / 6)


def test_kendalls_tau_random_against_loop_with_scipy_and_nan_dropping():
    rng = np.random.default_rng(5)
    videos = [rng.normal(size=(int(rng.integers(20, 40)), 4)) for _ in range(3)]
    videos.append(np.zeros((25, 4)))  # constant: every query's nn is 0 -> NaN tau when queried, dropped
    taus = []
    for i, q in enumerate(videos):
        for j, c in enumerate(videos):
            if i == j:
                continue
            qs, cs = q[::3], c[::3]
            nn = [int(np.argmin([np.sum((a - b) ** 2) for b in cs])) for a in qs]
            taus.append(kendalltau(np.arange(len(nn)), nn).statistic)
    taus = np.array(taus)
    assert np.isnan(taus).sum() >= 3
    assert kendalls_tau(videos, stride=3) == pytest.approx(np.nanmean(taus))


def test_kendalls_tau_errors():
    with pytest.raises(ValueError, match="at least 2 videos"):
        kendalls_tau([np.zeros((3, 2))])
    with pytest.raises(ValueError, match="different embedding sizes"):
        kendalls_tau([np.zeros((3, 2)), np.zeros((3, 4))])


# ---------------------------------------------------------------- retrieval


def brute_ap(embs, labels, k, within_video):
    if within_video:
        per_video = []
        for e, lab in zip(embs, labels):
            vals = []
            for i in range(len(e)):
                d = [np.linalg.norm(e[i] - e[j]) for j in range(len(e))]
                nn = np.argsort(d)[:k]
                vals.append(np.mean([lab[j] == lab[i] for j in nn]))
            per_video.append(np.mean(vals))
        return np.mean(per_video)
    total, count = 0.0, 0
    for v, (e, lab) in enumerate(zip(embs, labels)):
        sup = [(embs[w][j], labels[w][j]) for w in range(len(embs)) if w != v for j in range(len(embs[w]))]
        for i in range(len(e)):
            d = [np.linalg.norm(e[i] - s) for s, _ in sup]
            nn = np.argsort(d)[:k]
            total += np.mean([sup[j][1] == lab[i] for j in nn])
            count += 1
    return total / count


@pytest.mark.parametrize("within_video", [False, True])
def test_retrieval_ap_against_brute_force(within_video):
    rng = np.random.default_rng(6)
    labels = [rng.integers(0, 3, int(rng.integers(18, 26))) for _ in range(3)]
    embs = [rng.normal(size=(len(lab), 3)) + lab[:, None] * 0.7 for lab in labels]
    out = retrieval_ap(embs, labels, ks=(5, 10, 15), within_video=within_video)
    for k in (5, 10, 15):
        assert out[k] == pytest.approx(brute_ap(embs, labels, k, within_video))


def test_retrieval_ap_clustered_phases_is_one_and_errors():
    rng = np.random.default_rng(7)
    labels = [np.repeat([0, 1], 20) for _ in range(3)]
    embs = [onehot_embs(lab, 2, rng) for lab in labels]
    assert retrieval_ap(embs, labels) == {5: 1.0, 10: 1.0, 15: 1.0}
    with pytest.raises(ValueError, match="k=30 exceeds the 20 frames of video 0"):
        retrieval_ap([e[:20] for e in embs], [lab[:20] for lab in labels], ks=(30,), within_video=True)
    with pytest.raises(ValueError, match="at least 2 videos"):
        retrieval_ap(embs[:1], labels[:1])


# ---------------------------------------------------------------- synthetic alignment accuracy


def test_alignment_accuracy_hand_case():
    labels_y = np.array([0, 0, 1, 1, 2])
    gt_match = np.array([0, 1, 2, 4, -1])
    pred_match = np.array([1, 3, 2, -1, 0])
    # frame 0: pred in step 0 == gt step 0 -> right; 1: pred step 1 vs gt step 0 -> wrong;
    # 2: right; 3: unmatched -> wrong; 4: no counterpart -> not scored
    assert alignment_accuracy(pred_match, gt_match, labels_y) == pytest.approx(2 / 4)
    assert alignment_accuracy(gt_match, gt_match, labels_y) == 1.0
    assert np.isnan(alignment_accuracy(pred_match, np.full(5, -1), labels_y))
    with pytest.raises(ValueError, match="pred_match has 2 frames but gt_match has 5"):
        alignment_accuracy(pred_match[:2], gt_match, labels_y)
    with pytest.raises(ValueError, match="pred_match: frame indices"):
        alignment_accuracy(np.array([0, 1, 2, 3, 5]), gt_match, labels_y)


def test_progress_error_and_gt_match_from_progress():
    px = np.array([0.0, 0.5, np.nan, 1.0])
    py = np.array([0.0, 0.4, np.nan, 0.9, 1.0])
    np.testing.assert_array_equal(gt_match_from_progress(px, py), [0, 1, -1, 4])
    # errors: |0-0.4|, |0.5-0.5|... pred [1, -1, 0, 2]: 0.4, 1 (unmatched), skip (nan x), 1 (nan y)
    assert alignment_progress_error(np.array([1, -1, 0, 2]), px, py) == pytest.approx((0.4 + 1 + 1) / 3)
    assert alignment_progress_error(gt_match_from_progress(px, py), px, py) == pytest.approx(0.1 / 3)
    with pytest.raises(ValueError, match="progress_x: progress values must lie in"):
        alignment_progress_error(np.array([0]), np.array([1.5]), py)


def test_matches_from_plan():
    plan = np.array([[0.1, 0.7, 0.2], [0.5, 0.1, 0.4], [0.0, 0.1, 0.9]])
    np.testing.assert_array_equal(matches_from_plan(plan), [1, 0, 2])
    np.testing.assert_array_equal(matches_from_plan(plan, virtual_col=True), [1, 0, -1])
