"""VAOT loss: value/gradient against independent per-pair solves, symmetry, IDM, padding, preference."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from loss_helpers import (
    assert_same_gradients,
    loop_idm,
    loop_soft_ce,
    ordered_and_shuffled_pair,
    pad_batch,
    padded_step,
    unit,
)

from vasot_dist.config.methods import VAOTConfig
from vasot_dist.losses import VAOTLoss
from vasot_dist.ot import align_fgw

D = 8


@pytest.mark.parametrize("symmetric,weight", [(False, 0.0), (True, 0.5)])
def test_value_and_gradient_equal_the_ce_of_constant_plans_solved_per_pair(symmetric, weight):
    gen = torch.Generator().manual_seed(0)
    lengths = [(8, 11), (6, 5)]  # (n, m) per pair, padded into one batch of T = 11
    videos = [unit(n, D, gen=gen) for pair in lengths for n in pair]
    loss_fn = VAOTLoss(VAOTConfig(symmetric=symmetric, contrastive_weight=weight, idm_window=0.15))
    out, emb, leaves = padded_step(loss_fn, videos, 11)
    kw = dataclasses.asdict(loss_fn.settings.align)
    assert kw["virtual_cost"] == 0.5 and not kw["unbalanced_x"] and not kw["unbalanced_y"]
    xy, yx, plans = [], [], []
    for p in range(2):
        x, y = leaves[2 * p], leaves[2 * p + 1]
        plan = align_fgw((1 - x @ y.T).detach().unsqueeze(0), **kw)[0]  # virtual frame prepended, dropped
        plans.append(plan)
        sim = x @ y.T / 0.1
        xy.append((plan, sim))
        yx.append((plan.T * (y.shape[0] + 1) / (x.shape[0] + 1), sim.T))
    ref = loop_soft_ce(xy)
    if symmetric:
        ref = ref + loop_soft_ce(yx)
    if weight:
        idm = [loop_idm(v, 0.15, 2.0) for v in leaves]
        ref = ref + weight * ((idm[0] + idm[1]) + (idm[2] + idm[3])) / 2
    ref.backward()
    assert out.loss.item() == pytest.approx(ref.item(), abs=1e-5)
    assert_same_gradients(emb, leaves)
    assert torch.allclose(out.couplings["align"][0, :8, :11], plans[0], atol=1e-6)


def test_virtual_frame_is_prepended_so_identical_videos_align_on_the_diagonal():
    gen = torch.Generator().manual_seed(2)
    x = unit(12, 16, gen=gen)
    out = VAOTLoss()(*pad_batch([x, x]))
    assert out.couplings["align"][0].argmax(-1).tolist() == list(range(12))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_prefers_aligned_pairs_to_pairs_with_y_shuffled_in_time(seed):
    x, y, y_shuffled, _ = ordered_and_shuffled_pair(torch.Generator().manual_seed(seed))
    loss_fn = VAOTLoss()
    assert loss_fn(*pad_batch([x, y])).loss < loss_fn(*pad_batch([x, y_shuffled])).loss


def test_needs_an_even_batch():
    with pytest.raises(ValueError, match="even batch"):
        VAOTLoss()(torch.zeros(3, 4, D), torch.ones(3, 4, dtype=torch.bool))
