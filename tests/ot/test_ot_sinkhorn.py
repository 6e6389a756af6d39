"""sinkhorn / sinkhorn_unbalanced / partial_wasserstein against POT (float64, 1e-5)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import ot
import pytest
import torch
from ot_dense import to_np

from vasot_dist.ot import partial_wasserstein, sinkhorn, sinkhorn_unbalanced

INF = float("inf")
SIZES = [(1, 1), (5, 3), (17, 11), (30, 64)]


def _problem(n, m, seed, batch=2):
    g = torch.Generator().manual_seed(seed)
    cost = torch.rand(batch, n, m, generator=g, dtype=torch.float64)
    a = torch.rand(batch, n, generator=g, dtype=torch.float64) + 0.1
    b = torch.rand(batch, m, generator=g, dtype=torch.float64) + 0.1
    return cost, a / a.sum(1, keepdim=True), b / b.sum(1, keepdim=True)


@pytest.mark.parametrize(("n", "m"), SIZES)
@pytest.mark.parametrize("eps", [0.05, 0.5])
def test_sinkhorn_matches_pot(n, m, eps):
    cost, a, b = _problem(n, m, seed=n * 100 + m)
    plan = sinkhorn(cost, a, b, eps=eps, n_iters=20000, tol=1e-13)
    for i in range(cost.shape[0]):
        ref = ot.sinkhorn(to_np(a[i]), to_np(b[i]), to_np(cost[i]), reg=eps, numItermax=50000, stopThr=1e-14)
        np.testing.assert_allclose(to_np(plan[i]), ref, atol=1e-5)
    np.testing.assert_allclose(to_np(plan.sum(2)), to_np(a), atol=1e-9)


@pytest.mark.parametrize(("n", "m"), SIZES)
@pytest.mark.parametrize("reg_m", [0.3, (INF, 0.2), (1.5, 0.4), (0.2, INF)])
def test_sinkhorn_unbalanced_matches_pot_entropy(n, m, reg_m):
    cost, a, b = _problem(n, m, seed=7 * n + m)
    plan = sinkhorn_unbalanced(cost, a, b, eps=0.1, reg_m=reg_m, n_iters=20000, tol=1e-13)
    for i in range(cost.shape[0]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = ot.unbalanced.sinkhorn_unbalanced(
                to_np(a[i]), to_np(b[i]), to_np(cost[i]), reg=0.1, reg_m=reg_m, reg_type="entropy",
                numItermax=50000, stopThr=1e-15,
            )  # fmt: skip
        np.testing.assert_allclose(to_np(plan[i]), ref, atol=1e-5)


@pytest.mark.parametrize(("n", "m"), SIZES)
@pytest.mark.parametrize("mass", [0.3, 0.8, 0.99])
def test_partial_matches_pot(n, m, mass):
    cost, a, b = _problem(n, m, seed=3 * n + m)
    plan = partial_wasserstein(cost, a, b, mass=mass, eps=0.05, n_iters=3000, tol=1e-14)
    for i in range(cost.shape[0]):
        ref = ot.partial.entropic_partial_wasserstein(to_np(a[i]), to_np(b[i]), to_np(cost[i]), reg=0.05, m=mass, numItermax=3000)
        np.testing.assert_allclose(to_np(plan[i]), ref, atol=1e-5)
    # constraints: rows <= a, cols <= b, total mass
    assert torch.all(plan.sum(2) <= a + 1e-9) and torch.all(plan.sum(1) <= b + 1e-9)
    np.testing.assert_allclose(to_np(plan.sum((1, 2))), mass, atol=1e-9)


def test_partial_small_eps_is_finite_and_matches_log_pot():
    cost, a, b = _problem(12, 9, seed=1, batch=1)
    plan = partial_wasserstein(cost, a, b, mass=0.5, eps=1e-3, n_iters=5000, tol=1e-13)
    ref = ot.partial.entropic_partial_wasserstein(
        to_np(a[0]), to_np(b[0]), to_np(cost[0]), reg=1e-3, m=0.5, numItermax=5000, method="sinkhorn_log"
    )
    assert torch.isfinite(plan).all()
    np.testing.assert_allclose(to_np(plan[0]), ref, atol=1e-5)


@pytest.mark.parametrize("solver", ["sinkhorn", "unbalanced", "partial"])
def test_padded_batch_equals_problems_alone(solver):
    g = torch.Generator().manual_seed(0)
    sizes = [(9, 7), (4, 7), (9, 2), (1, 1)]
    cost = torch.rand(len(sizes), 9, 7, generator=g, dtype=torch.float64)
    mask_x = torch.stack([torch.arange(9) < n for n, _ in sizes])
    mask_y = torch.stack([torch.arange(7) < m for _, m in sizes])
    cost = torch.where(mask_x[:, :, None] & mask_y[:, None, :], cost, torch.full_like(cost, 1e9))

    def run(c, mx=None, my=None):
        if solver == "sinkhorn":
            return sinkhorn(c, eps=0.1, n_iters=500, tol=None, mask_x=mx, mask_y=my)
        if solver == "unbalanced":
            return sinkhorn_unbalanced(c, eps=0.1, reg_m=(INF, 0.3), n_iters=500, tol=None, mask_x=mx, mask_y=my)
        return partial_wasserstein(c, mass=0.6, eps=0.1, n_iters=500, tol=None, mask_x=mx, mask_y=my)

    batched = run(cost, mask_x, mask_y)
    for i, (n, m) in enumerate(sizes):
        alone = run(cost[i : i + 1, :n, :m])
        torch.testing.assert_close(batched[i, :n, :m], alone[0], atol=1e-12, rtol=1e-10)
        outside = batched[i].clone()
        outside[:n, :m] = 0
        assert torch.all(outside == 0)  # no mass on padding


def test_sinkhorn_default_marginals_are_uniform_over_unmasked_and_log():
    cost = torch.rand(2, 6, 4, dtype=torch.float64)
    mask_x = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    plan, log = sinkhorn(cost, eps=0.2, mask_x=mask_x, n_iters=2000, tol=1e-12, return_log=True)
    np.testing.assert_allclose(to_np(plan.sum(2))[1, :3], 1 / 3, atol=1e-9)
    np.testing.assert_allclose(to_np(plan.sum(1)), 0.25, atol=1e-9)
    assert log["objective"].shape == (2, log["n_iters"]) and log["n_iters"] < 2000
    # logged objective of the final iterate = <C, T> - eps H(T) evaluated directly
    t = to_np(plan[0])
    direct = np.sum(t * to_np(cost[0])) + 0.2 * np.sum(t * (np.log(t) - 1))
    assert float(log["objective"][0, -1]) == pytest.approx(direct, rel=1e-9)


def test_solvers_stay_finite_with_tiny_eps_and_huge_costs():
    cost = torch.rand(2, 30, 20) * 1e4
    for plan in (
        sinkhorn(cost, eps=1e-3, n_iters=50, tol=1e-9),
        sinkhorn_unbalanced(cost, eps=1e-3, reg_m=0.1, n_iters=50, tol=1e-9),
        partial_wasserstein(cost, mass=0.5, eps=1e-3, n_iters=50, tol=1e-9),
    ):
        assert plan.dtype == torch.float32 and torch.isfinite(plan).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"eps": -1.0}, "eps"),
        ({"eps": 0.0}, "eps"),
        ({"eps": math.nan}, "eps"),
        ({"eps": 0.1, "n_iters": 0}, "n_iters"),
        ({"eps": 0.1, "tol": -1.0}, "tol"),
        ({"eps": 0.1, "mask_x": torch.ones(2, 5, dtype=torch.bool)}, "mask_x"),
        ({"eps": 0.1, "mask_y": torch.ones(2, 3)}, "mask_y"),
        ({"eps": 0.1, "a": torch.ones(2, 3)}, "a must have shape"),
    ],
)
def test_sinkhorn_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sinkhorn(torch.rand(2, 4, 3), **{"n_iters": 10, "tol": None, **kwargs})


def test_shape_and_parameter_validation():
    with pytest.raises(ValueError, match=r"shape \(B, N, M\)"):
        sinkhorn(torch.rand(4, 3), eps=0.1, n_iters=10, tol=None)
    with pytest.raises(ValueError, match="mass"):
        partial_wasserstein(torch.rand(1, 4, 3), mass=1.5, eps=0.1, n_iters=10, tol=None)
    with pytest.raises(ValueError, match="mass"):
        partial_wasserstein(torch.rand(1, 4, 3), mass=0.0, eps=0.1, n_iters=10, tol=None)
    with pytest.raises(ValueError, match="infeasible"):
        partial_wasserstein(torch.rand(1, 4, 3), torch.full((1, 4), 0.1), mass=0.9, eps=0.1, n_iters=10, tol=None)
    with pytest.raises(ValueError, match="reg_m"):
        sinkhorn_unbalanced(torch.rand(1, 4, 3), eps=0.1, reg_m=-1.0, n_iters=10, tol=None)
