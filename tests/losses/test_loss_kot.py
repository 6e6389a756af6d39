"""KOT baseline: plan = POT's Sinkhorn, gradient of a constant-plan CE, no structure, preference."""

from __future__ import annotations

import numpy as np
import ot
import pytest
import torch
import torch.nn.functional as F
from loss_helpers import assert_same_gradients, loop_soft_ce, pad_batch, padded_step, unit

from vasot_dist.config.methods import KOTConfig
from vasot_dist.losses import KOTLoss

D = 8


def test_value_and_gradient_equal_the_ce_of_the_pot_sinkhorn_plan():
    gen = torch.Generator().manual_seed(0)
    videos = [unit(7, D, gen=gen), unit(10, D, gen=gen), unit(5, D, gen=gen), unit(4, D, gen=gen)]
    loss_fn = KOTLoss(KOTConfig(eps=0.1, n_iters=5000, tol=1e-9, symmetric=True))
    out, emb, leaves = padded_step(loss_fn, videos, 10)

    xy, yx = [], []
    for p in range(2):
        x, y = leaves[2 * p], leaves[2 * p + 1]
        n, m = x.shape[0], y.shape[0]
        cost = (1 - x @ y.T).detach().double().numpy()
        plan = ot.sinkhorn(
            np.full(n, 1 / n), np.full(m, 1 / m), cost, reg=0.1, numItermax=100000, stopThr=1e-12
        )
        plan = torch.from_numpy(plan).float()
        sim = x @ y.T / 0.1
        xy.append((plan * n, sim))
        yx.append((plan.T * m, sim.T))
    ref = loop_soft_ce(xy) + loop_soft_ce(yx)
    ref.backward()
    assert out.loss.item() == pytest.approx(ref.item(), abs=1e-4)
    assert_same_gradients(emb, leaves, atol=1e-4)
    assert torch.allclose(out.couplings["align"][0, :7, :10], xy[0][0], atol=1e-4)


def test_has_no_temporal_structure_shuffling_y_leaves_the_loss_unchanged():
    gen = torch.Generator().manual_seed(1)
    x, y = unit(9, D, gen=gen), unit(9, D, gen=gen)
    loss_fn = KOTLoss()
    perm = torch.randperm(9, generator=gen)
    a = loss_fn(*pad_batch([x, y])).loss
    b = loss_fn(*pad_batch([x, y[perm]])).loss
    assert a.item() == pytest.approx(b.item(), abs=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_prefers_a_matching_video_to_an_unrelated_one(seed):
    gen = torch.Generator().manual_seed(seed)
    x = unit(16, 16, gen=gen)
    y_match = F.normalize(x + 0.1 * torch.randn(16, 16, generator=gen), dim=-1)
    y_other = unit(16, 16, gen=gen)
    loss_fn = KOTLoss()
    assert loss_fn(*pad_batch([x, y_match])).loss < loss_fn(*pad_batch([x, y_other])).loss
