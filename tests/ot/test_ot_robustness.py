"""Property-based robustness: no NaN/Inf for extreme eps, costs, sizes and masks."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from solver_args import asot, realign, vaot

from vasot_dist.ot import (
    partial_wasserstein,
    sinkhorn,
    sinkhorn_unbalanced,
)

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@st.composite
def problems(draw, max_n=300, max_m=64, max_batch=3):
    bsz = draw(st.integers(1, max_batch))
    n = draw(st.integers(1, max_n))
    m = draw(st.integers(1, max_m))
    scale = draw(st.sampled_from([0.0, 1e-3, 1.0, 2.0, 1e2, 1e4]))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    cost = torch.rand(bsz, n, m, generator=g) * scale
    lengths = draw(st.lists(st.integers(0, n), min_size=bsz, max_size=bsz))
    mask = torch.arange(n)[None, :] < torch.tensor(lengths)[:, None]
    eps = draw(st.floats(1e-3, 1.0))
    return cost, mask, eps


def _check(plan, mask, shape):
    assert plan.shape == shape and plan.dtype == torch.float32
    assert torch.isfinite(plan).all()
    assert torch.all(plan >= 0)
    assert torch.all(plan[~mask] == 0)  # masked (incl. fully masked problems) carry no mass


@settings(max_examples=25, **SETTINGS)
@given(
    problems(),
    st.floats(0.0, 1.0),
    st.floats(1e-3, 1.0),
    st.sampled_from([(False, True), (True, False), (True, True), (False, False)]),
    st.floats(0.0, 0.5),
)
def test_segment_asot_finite(prob, alpha, radius, flags, rho):
    cost, mask, eps = prob
    plan = asot(cost, mask, eps=eps, alpha=alpha, radius=radius, unbalanced_frames=flags[0],
                        unbalanced_actions=flags[1], temporal_prior=rho)  # fmt: skip
    _check(plan, mask, cost.shape)
    if flags == (False, True):
        rows = plan.sum(2)[mask]
        assert torch.allclose(rows, torch.ones_like(rows), atol=1e-4)


@settings(max_examples=4, **SETTINGS)
@given(st.integers(20000, 50000), st.integers(1, 64), st.floats(1e-3, 1.0), st.sampled_from([1.0, 1e4]))
def test_segment_asot_long_videos_finite(n, k, eps, scale):
    g = torch.Generator().manual_seed(n + k)
    cost = torch.rand(1, n, k, generator=g) * scale
    mask = torch.ones(1, n, dtype=torch.bool)
    mask[0, n - 1000 :] = False
    plan = asot(cost, mask, eps=eps, n_iters=5)
    _check(plan, mask, cost.shape)


@settings(max_examples=20, **SETTINGS)
@given(problems(max_n=80, max_m=80), st.floats(0.0, 1.0), st.floats(1e-3, 1.0), st.sampled_from([None, 0.5]),
       st.sampled_from([(False, False), (False, True), (True, True)]))  # fmt: skip
def test_align_fgw_finite(prob, alpha, radius, virtual_cost, flags):
    cost, mask_x, eps = prob
    mask_y = torch.ones(cost.shape[0], cost.shape[2], dtype=torch.bool)
    mask_y[:, -1] = cost.shape[2] == 1  # pad the last column unless it is the only one
    plan = vaot(cost, mask_x, mask_y, eps=eps, alpha=alpha, radius=radius, virtual_cost=virtual_cost,
                     unbalanced_x=flags[0], unbalanced_y=flags[1], temporal_prior=0.3)  # fmt: skip
    _check(plan, mask_x.unsqueeze(2) & mask_y.unsqueeze(1), cost.shape)


@settings(max_examples=15, **SETTINGS)
@given(problems(max_n=60, max_m=40), st.floats(0.0, 1.0), st.floats(0.05, 1.0), st.sampled_from([None, 0.5]))
def test_align_partial_fgw_finite(prob, alpha, mass, virtual_cost):
    cost, mask_x, eps = prob
    plan = realign(cost, mask_x, mass=mass, eps=eps, alpha=alpha, radius=0.2, virtual_cost=virtual_cost,
                             n_iters=3, inner_iters=20)  # fmt: skip
    _check(plan, mask_x.unsqueeze(2).expand_as(cost), cost.shape)


@settings(max_examples=20, **SETTINGS)
@given(problems(max_n=100, max_m=64), st.floats(0.05, 1.0))
def test_sinkhorn_family_finite(prob, mass):
    cost, mask_x, eps = prob
    full = mask_x.unsqueeze(2).expand_as(cost)
    _check(sinkhorn(cost, eps=eps, mask_x=mask_x, n_iters=50, tol=1e-9), full, cost.shape)
    _check(sinkhorn_unbalanced(cost, eps=eps, reg_m=(float("inf"), 0.1), mask_x=mask_x, n_iters=50, tol=1e-9),
           full, cost.shape)
    _check(partial_wasserstein(cost, mass=mass, eps=eps, mask_x=mask_x, n_iters=50, tol=1e-9), full, cost.shape)
