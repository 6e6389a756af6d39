"""CUDA: the same plans as on CPU, and float32 solves under bf16 autocast."""

from __future__ import annotations

import pytest
import torch
from solver_args import asot, realign, vaot

from vasot_dist.ot import (
    partial_wasserstein,
    sinkhorn,
    sinkhorn_unbalanced,
)

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

SOLVERS = {
    "segment_asot": lambda c, m: asot(c, m, temporal_prior=0.2),
    "segment_asot_balanced": lambda c, m: asot(c, m, unbalanced_actions=False),
    "align_fgw": lambda c, m: vaot(c, m, virtual_cost=0.5, temporal_prior=0.35),
    "align_partial_fgw": lambda c, m: realign(c, m, mass=0.7, eps=0.05, alpha=0.5, radius=0.2, n_iters=5, inner_iters=50),
    "sinkhorn": lambda c, m: sinkhorn(c, eps=0.05, mask_x=m, n_iters=200, tol=None),
    "sinkhorn_unbalanced": lambda c, m: sinkhorn_unbalanced(c, eps=0.05, reg_m=(float("inf"), 0.1), mask_x=m, n_iters=200, tol=None),
    "partial_wasserstein": lambda c, m: partial_wasserstein(c, mass=0.5, eps=0.05, mask_x=m, n_iters=200, tol=None),
}


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_cpu_and_cuda_plans_agree(name):
    g = torch.Generator().manual_seed(0)
    cost = torch.rand(3, 120, 40, generator=g)
    mask = torch.arange(120)[None, :] < torch.tensor([120, 77, 5])[:, None]
    cpu = SOLVERS[name](cost, mask)
    gpu = SOLVERS[name](cost.cuda(), mask.cuda())
    assert gpu.is_cuda and gpu.dtype == torch.float32
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_bf16_autocast_input_still_solves_in_float32(name):
    cost = torch.rand(2, 64, 19, device="cuda")
    mask = torch.ones(2, 64, dtype=torch.bool, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        half = cost @ torch.eye(19, device="cuda")  # a bf16 tensor produced under autocast
        assert half.dtype == torch.bfloat16
        out = SOLVERS[name](half, mask)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, SOLVERS[name](half.float(), mask), rtol=1e-5, atol=1e-7)
