"""align_partial_fgw (REALIGN): structure products, POT partial OT / exact partial FGW, constraints."""

from __future__ import annotations

import numpy as np
import ot
import pytest
import torch
from ot_dense import laplace_dense, to_np
from solver_args import realign

from vasot_dist.ot import partial_fgw_objective
from vasot_dist.ot.partial_fgw import square_loss_product


def _smooth_pair(n, m, seed):
    """Two random-walk 'videos' and their normalised Euclidean cost (structure that GW can use)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g, dtype=torch.float64).cumsum(0)
    y = torch.randn(m, 4, generator=g, dtype=torch.float64).cumsum(0)
    c = torch.cdist(x, y)
    return (c / c.max())[None]


def _square_loss_dense(t, c1, c2):
    return np.einsum("ikjl,kl->ij", (c1[:, :, None, None] - c2[None, None, :, :]) ** 2, t)


def _dense_objective(t, cost, c1, c2, alpha):
    return (1 - alpha) * np.sum(cost * t) + alpha * np.sum(_square_loss_dense(t, c1, c2) * t)


@pytest.mark.parametrize(("n", "m", "radius"), [(9, 7, 0.3), (1, 4, 0.5), (16, 16, 1.0), (20, 3, 0.05)])
def test_square_loss_product_equals_dense(n, m, radius):
    t = torch.rand(2, n, m, dtype=torch.float64)
    out = square_loss_product(t, torch.full((2,), n * radius, dtype=torch.float64), torch.full((2,), m * radius, dtype=torch.float64))
    c1, c2 = laplace_dense(n, radius), laplace_dense(m, radius)
    for i in range(2):
        np.testing.assert_allclose(to_np(out[i]), _square_loss_dense(to_np(t[i]), c1, c2), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("n_iters", [1, 4])
def test_alpha_zero_is_pot_entropic_partial(n_iters):
    cost = _smooth_pair(12, 9, seed=0)
    plan = realign(cost, mass=0.6, eps=0.05, alpha=0.0, radius=0.2, n_iters=n_iters, inner_iters=500)
    ref = ot.partial.entropic_partial_wasserstein(np.full(12, 1 / 12), np.full(9, 1 / 9), to_np(cost[0]), reg=0.05, m=0.6, numItermax=500)
    np.testing.assert_allclose(to_np(plan[0]) / 12, ref, atol=1e-5)


def test_steps_equal_dense_pgd_with_pot_inner_solver_and_virtual_frame():
    """Each outer step = POT entropic partial OT on (1-a)C + 2a L(x)T_k; the virtual frame is outside GW."""
    n, m, alpha, radius, eps, mass, zeta = 8, 6, 0.5, 0.3, 0.05, 0.7, 0.4
    cost = _smooth_pair(n, m, seed=1)
    aug = np.full((n + 1, m + 1), zeta)
    aug[1:, 1:] = to_np(cost[0])
    c1, c2 = laplace_dense(n, radius), laplace_dense(m, radius)
    p, q = np.full(n + 1, 1 / (n + 1)), np.full(m + 1, 1 / (m + 1))
    t = np.outer(p, q) * mass
    for _ in range(3):
        grad = (1 - alpha) * aug
        grad[1:, 1:] += 2 * alpha * _square_loss_dense(t[1:, 1:], c1, c2)
        t = ot.partial.entropic_partial_wasserstein(p, q, grad, reg=eps, m=mass, numItermax=1000)
    plan = realign(cost, mass=mass, eps=eps, alpha=alpha, radius=radius, virtual_cost=zeta, n_iters=3, inner_iters=1000)
    np.testing.assert_allclose(to_np(plan[0]), t[1:, 1:] * (n + 1), atol=1e-6)


@pytest.mark.parametrize("seed", [0, 3, 4])
def test_small_eps_matches_or_beats_pot_exact_partial_fgw(seed):
    n, m, alpha, radius, mass = 12, 10, 0.5, 0.3, 0.7
    cost = _smooth_pair(n, m, seed)
    c1, c2 = laplace_dense(n, radius), laplace_dense(m, radius)
    p, q = np.full(n, 1 / n), np.full(m, 1 / m)
    ref = ot.gromov.partial_fused_gromov_wasserstein(to_np(cost[0]), c1, c2, p, q, m=mass, alpha=alpha, loss_fun="square_loss")
    plan = realign(cost, mass=mass, eps=2e-3, alpha=alpha, radius=radius, n_iters=40, inner_iters=100) / n
    ours = _dense_objective(to_np(plan[0]), to_np(cost[0]), c1, c2, alpha)
    pot = _dense_objective(ref, to_np(cost[0]), c1, c2, alpha)
    assert ours <= pot * (1 + 1e-3)
    # the library's dense-free objective agrees with the dense one
    assert float(partial_fgw_objective(plan, cost, alpha=alpha, radius=radius, eps=0.0, temporal_prior=0.0)) == pytest.approx(ours, rel=1e-9)
    # partial constraints
    assert float(plan.sum()) == pytest.approx(mass, abs=1e-6)
    assert torch.all(plan.sum(2) <= 1 / n + 1e-6) and torch.all(plan.sum(1) <= 1 / m + 1e-6)


def test_log_objective_is_the_regularised_objective_and_decreases():
    cost = _smooth_pair(20, 16, seed=2)
    kw = dict(mass=0.8, eps=0.02, alpha=0.4, radius=0.2, temporal_prior=0.2)
    plan, log = realign(cost, n_iters=15, inner_iters=200, return_log=True, **kw)
    obj = log["objective"][0]
    assert log["objective"].shape == (1, 15)
    direct = partial_fgw_objective(plan / 20, cost, eps=0.02, alpha=0.4, radius=0.2, temporal_prior=0.2)
    assert float(obj[-1]) == pytest.approx(float(direct), rel=1e-9)
    assert obj[-1] <= obj[0] and torch.all(obj[1:] <= obj[:-1] + 1e-6)


@pytest.mark.parametrize("virtual_cost", [None, 0.5])
def test_padded_batch_equals_each_pair_alone(virtual_cost):
    sizes = [(16, 12), (9, 12), (16, 4), (1, 1)]
    g = torch.Generator().manual_seed(0)
    cost = torch.rand(len(sizes), 16, 12, generator=g, dtype=torch.float64)
    mask_x = torch.stack([torch.arange(16) < n for n, _ in sizes])
    mask_y = torch.stack([torch.arange(12) < m for _, m in sizes])
    kw = dict(mass=0.5, eps=0.05, alpha=0.5, radius=0.3, temporal_prior=0.1, virtual_cost=virtual_cost, n_iters=3, inner_iters=30)
    batched = realign(cost, mask_x, mask_y, **kw)
    for i, (n, m) in enumerate(sizes):
        alone = realign(cost[i : i + 1, :n, :m], **kw)
        torch.testing.assert_close(batched[i, :n, :m], alone[0], rtol=1e-8, atol=1e-11)
        assert batched[i, n:].abs().sum() == 0 and batched[i, :, m:].abs().sum() == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mass": 0.0}, "mass"),
        ({"mass": 1.1}, "mass"),
        ({"eps": -1.0}, "eps"),
        ({"alpha": -0.5}, "alpha"),
        ({"radius": 0.0}, "radius"),
        ({"inner_iters": 0}, "inner_iters"),
    ],
)
def test_validation(kwargs, match):
    base = dict(mass=0.5, eps=0.1, alpha=0.5, radius=0.2)
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        realign(torch.rand(1, 5, 4), **base)
