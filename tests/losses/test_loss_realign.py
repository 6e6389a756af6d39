"""REALIGN loss: the documented formula against loops with the partial plan held constant; padding; preference."""

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
    segment_video,
    unit,
)

from vasot_dist.config.methods import PartialAlignSolve, REALIGNConfig
from vasot_dist.losses import REALIGNLoss
from vasot_dist.ot import align_partial_fgw

D = 8
FAST = PartialAlignSolve(n_iters=5, inner_iters=30)  # a short solve keeps the test quick; same code path


def _inter_loop(x, y, t_xy, wx, t_yx, wy, temperature):
    """softplus((d_best - d_worst) / temperature), transported-mass-weighted means, squared Euclidean d."""

    def side(a, b, t, w):
        best = sum(w[i] * ((a[i] - b[int(t[i].argmax())]) ** 2).sum() for i in range(a.shape[0])) / w.sum()
        worst = sum(w[i] * ((a[i] - b[int(t[i].argmin())]) ** 2).sum() for i in range(a.shape[0])) / w.sum()
        return best, worst

    bx, wx_ = side(x, y, t_xy, wx)
    by, wy_ = side(y, x, t_yx, wy)
    return torch.nn.functional.softplus(((bx + by) - (wx_ + wy_)) / temperature)


@pytest.mark.parametrize("weight", [0.0, 0.7])
def test_value_and_gradient_equal_the_documented_formula_with_the_plan_held_constant(weight):
    gen = torch.Generator().manual_seed(0)
    lengths = [(9, 7), (5, 8)]
    videos = [unit(n, D, gen=gen) for pair in lengths for n in pair]
    loss_fn = REALIGNLoss(REALIGNConfig(align=FAST, contrastive_weight=weight, idm_window=0.2))
    out, emb, leaves = padded_step(loss_fn, videos, 9)
    kw = dataclasses.asdict(FAST)
    xy, yx, wxs, wys, extra = [], [], [], [], torch.zeros(())
    for p in range(2):
        x, y = leaves[2 * p], leaves[2 * p + 1]
        n, m = x.shape[0], y.shape[0]
        plan = align_partial_fgw((1 - x @ y.T).detach().unsqueeze(0), **kw)[0]
        t_xy, t_yx = plan, plan.T * (m + 1) / (n + 1)
        wx = torch.where(t_xy.sum(1) >= 1e-3, t_xy.sum(1), torch.zeros(n))
        wy = torch.where(t_yx.sum(1) >= 1e-3, t_yx.sum(1), torch.zeros(m))
        sim = x @ y.T / 0.1
        xy.append((t_xy / t_xy.sum(1, keepdim=True).clamp(min=1e-3), sim))
        yx.append((t_yx / t_yx.sum(1, keepdim=True).clamp(min=1e-3), sim.T))
        wxs.append(wx)
        wys.append(wy)
        if weight:
            inter = _inter_loop(x, y, t_xy, wx, t_yx, wy, 0.5)
            extra = extra + (inter + loop_idm(x, 0.2, 2.0) + loop_idm(y, 0.2, 2.0)) / 2
    ref = loop_soft_ce(xy, wxs) + loop_soft_ce(yx, wys) + weight * extra
    ref.backward()
    assert out.loss.item() == pytest.approx(ref.item(), abs=1e-5)
    assert_same_gradients(emb, leaves)


def test_background_frames_carry_little_mass_and_little_weight():
    gen = torch.Generator().manual_seed(1)
    protos = unit(5, 16, gen=gen)
    x = segment_video([4, 4, 4, 6], protos[torch.tensor([0, 1, 2, 4])], 0.3, gen)  # last 6 frames: background
    y = segment_video([5, 4, 5], protos[:3], 0.3, gen)
    out = REALIGNLoss(REALIGNConfig(align=dataclasses.replace(FAST, mass=0.6)))(*pad_batch([x, y]))
    row_mass = out.couplings["align"][0].sum(-1)
    assert row_mass[12:].mean() < 0.25 * row_mass[:12].mean()
    assert (row_mass[12:] < 0.5).all()  # no background frame counts as matched
    assert out.metrics["realign/matched_frames"].item() == pytest.approx(
        (row_mass > 0.5).float().mean().item()
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prefers_aligned_pairs_to_pairs_with_y_shuffled_in_time(seed):
    x, y, y_shuffled, _ = ordered_and_shuffled_pair(torch.Generator().manual_seed(seed))
    loss_fn = REALIGNLoss(REALIGNConfig(align=FAST))
    assert loss_fn(*pad_batch([x, y])).loss < loss_fn(*pad_batch([x, y_shuffled])).loss
