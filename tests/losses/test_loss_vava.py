"""VAVA: the psi schedule, prior, plan and every loss term against hand-computed and loop-based values.

The released ``vava.py`` does not run (UnboundLocalError), so nothing is reproduced numerically from it; the
terms are checked against the formulas written out scalar by scalar (``docs/methods.md#vava``).
"""

from __future__ import annotations

import math

import numpy as np
import ot
import pytest
import torch
from loss_helpers import assert_same_gradients, ordered_and_shuffled_pair, pad_batch, padded_step, unit

from vasot_dist.config.methods import VAVAConfig
from vasot_dist.losses import VAVALoss, vava_psi
from vasot_dist.losses.vava import vava_intra_contrastive, vava_prior


def _g(dist: float, sigma: float = 2.0) -> float:
    return math.exp(-(dist**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))


def test_psi_schedule_hand_values():
    assert vava_psi(0) == pytest.approx(0.999)  # 0.999^1, at the upper clip
    assert vava_psi(2) == pytest.approx(0.999)  # floor(sqrt(3)) = 1
    assert vava_psi(3) == pytest.approx(0.999**2)  # floor(sqrt(4)) = 2
    assert vava_psi(8) == pytest.approx(0.999**3)
    assert vava_psi(99) == pytest.approx(0.999**10)
    assert vava_psi(10**8) == pytest.approx(0.001)  # 0.999^10000 = 4.5e-5, clipped
    with pytest.raises(ValueError, match="step"):
        vava_psi(-1)


def _prior_loops(x: np.ndarray, y: np.ndarray, psi: float, lam1: float = 1.0, vd: float = 5.0):
    """The reference's double loop (1-based augmented indices), nearest neighbour at its own index (nn + 2)."""
    n, m = len(x), len(y)
    lam1 = lam1 * (n + m)
    d = ((x[:, None] - y[None]) ** 2).sum(-1)
    nn = d.argmin(1)
    na, ma = n + 1, m + 1
    mid = math.sqrt(1 / na**2 + 1 / ma**2)
    thr = 2 * vd / (na + ma)
    p = np.zeros((na, ma))
    s = np.zeros((na, ma))
    for i in range(1, na + 1):
        for j in range(1, ma + 1):
            sc = abs(i / na - j / ma)
            so = abs(j / ma - (nn[i - 2] + 2) / ma) if i > 1 else abs(j / ma - 1 / ma)
            p[i - 1, j - 1] = psi * _g(sc / mid) + (1 - psi) * _g(so / mid)
            s[i - 1, j - 1] = lam1 * (psi / (sc**2 + 1) + (1 - psi) / (so**2 + 1))
            if (i == 1 or j == 1) and i != j:
                p[i - 1, j - 1] = _g(thr * 1.5 / mid)
                s[i - 1, j - 1] = lam1 / ((thr * 1.5) ** 2 + 1)
    return p, s


def test_prior_and_bonus_hand_values_and_loops_with_padding():
    gen = torch.Generator().manual_seed(0)
    x, y = unit(2, 3, gen=gen), unit(3, 3, gen=gen)
    psi = 0.9
    emb, mask = pad_batch([x, y], 5)
    d = torch.cdist(emb[0:1], emb[1:2]) ** 2
    prior, bonus = vava_prior(d, mask[0:1], mask[1:2], psi)
    # hand: n = 2, m = 3, mid = sqrt(1/9 + 1/16) = 5/12, virtual distance 1.5 * 2 * 5 / 7 = 15/7
    assert prior[0, 0, 1].item() == pytest.approx(_g((15 / 7) / (5 / 12)), rel=1e-5)
    assert bonus[0, 1, 0].item() == pytest.approx(5 / ((15 / 7) ** 2 + 1), rel=1e-6)
    # corner: s_c = |1/3 - 1/4| = 1/12, s_o = 0 (the virtual row's optimal match is the virtual column)
    assert bonus[0, 0, 0].item() == pytest.approx(5 * (0.9 / (1 / 144 + 1) + 0.1), rel=1e-6)
    assert prior[0, 0, 0].item() == pytest.approx(0.9 * _g((1 / 12) / (5 / 12)) + 0.1 * _g(0.0), rel=1e-6)
    p_ref, s_ref = _prior_loops(x.numpy().astype(np.float64), y.numpy().astype(np.float64), psi)
    assert np.allclose(prior[0, :3, :4].numpy(), p_ref, rtol=1e-5)
    assert np.allclose(bonus[0, :3, :4].numpy(), s_ref, rtol=1e-5)


def _vava_reference(x, y, plan, gamma=0.5, window=15, margin=2.0, temperature=0.5, zeta=0.5):
    """Loss of one pair with the plan T (n+1, m+1) held constant, term by term with loops."""
    n, m, dim = x.shape[0], y.shape[0], x.shape[1]
    d_aug = torch.full((n + 1, m + 1), zeta)
    d_aug[1:, 1:] = ((x[:, None] - y[None]) ** 2).sum(-1)
    ot_term = (plan * d_aug).sum() / (n * m)

    def intra(v):
        k = v.shape[0]
        total = torch.zeros(())
        for i in range(k):
            for j in range(k):
                dx = ((v[i] - v[j]) ** 2).mean()
                total = total + (torch.relu(margin - dx) if abs(i - j) > window else dx / ((i - j) ** 2 + 1))
        return total / k**2

    real = plan[1:, 1:]
    mean_sq = lambda a, b: ((a - b) ** 2).sum() / dim  # noqa: E731
    best = sum(mean_sq(x[i], y[int(real[i].argmax())]) for i in range(n)) / n
    best = best + sum(mean_sq(x[int(real[:, j].argmax())], y[j]) for j in range(m)) / m
    worst = sum(mean_sq(x[i], y[int(real[i].argmin())]) for i in range(n)) / n
    worst = worst + sum(mean_sq(x[int(real[:, j].argmin())], y[j]) for j in range(m)) / m
    inter = torch.nn.functional.softplus((best - worst) / temperature)
    return ot_term + gamma * (intra(x) + intra(y) + inter)


def test_plan_is_pots_sinkhorn_on_the_modified_cost_and_loss_gradient_matches_terms():
    gen = torch.Generator().manual_seed(1)
    lengths = [(6, 4), (3, 6)]
    videos = [unit(n, 4, gen=gen) for pair in lengths for n in pair]
    step = 50
    psi = vava_psi(step)
    out, emb, leaves = padded_step(VAVALoss(VAVAConfig(window=2, n_iters=5000, tol=1e-9)), videos, 6, step=step)
    assert out.metrics["vava/psi"].item() == pytest.approx(psi)

    refs = []
    for p in range(2):
        x, y = leaves[2 * p], leaves[2 * p + 1]
        n, m = x.shape[0], y.shape[0]
        xn, yn = x.detach().double().numpy(), y.detach().double().numpy()
        prior, bonus = _prior_loops(xn, yn, psi)
        d_aug = np.full((n + 1, m + 1), 0.5)
        d_aug[1:, 1:] = ((xn[:, None] - yn[None]) ** 2).sum(-1)
        lam2 = 0.1 * n * m / 4
        plan = ot.sinkhorn(
            np.full(n + 1, 1 / (n + 1)), np.full(m + 1, 1 / (m + 1)), d_aug - bonus - lam2 * np.log(prior),
            reg=lam2, method="sinkhorn_log", numItermax=100000, stopThr=1e-13,
        )  # fmt: skip
        plan = torch.from_numpy(plan).float()
        if p == 0:
            assert torch.allclose(out.couplings["align"][0, :n, :m], plan[1:, 1:] * (n + 1), atol=1e-4)
        refs.append(_vava_reference(x, y, plan, window=2))
    ref = (refs[0] + refs[1]) / 2
    ref.backward()
    assert out.loss.item() == pytest.approx(ref.item(), abs=1e-5)
    assert_same_gradients(emb, leaves)


def test_intra_contrastive_hand_case():
    # Dx: (0,1) = (1 + 1)/2 = 1, (0,2) = 0, (1,2) = 1; window 1: four pulls of 1/2, two pushes of 2 - 0
    v = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]])
    got = vava_intra_contrastive(v, torch.ones(1, 3, dtype=torch.bool), window=1, margin=2.0)
    assert got.item() == pytest.approx((4 * 0.5 + 2 * 2.0) / 9)


def test_prefers_aligned_pairs_to_pairs_with_y_shuffled_in_time():
    gen = torch.Generator().manual_seed(2)
    wins = 0
    for _ in range(4):
        x, y, y_shuffled, _ = ordered_and_shuffled_pair(gen)
        loss_fn = VAVALoss()
        wins += int(loss_fn(*pad_batch([x, y])).loss < loss_fn(*pad_batch([x, y_shuffled])).loss)
    assert wins == 4
