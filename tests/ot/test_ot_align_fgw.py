"""align_fgw (VAOT): reference iteration with {Cx, Cy}, virtual frame, POT at convergence, padding."""

from __future__ import annotations

import functools

import numpy as np
import ot
import pytest
import torch
from ot_dense import (
    cv_dense,
    cy_dense,
    dense_fgw_objective,
    reference_fgw_iteration,
    temporal_prior_dense,
    to_np,
)
from solver_args import VAOT, objective_args, vaot

from vasot_dist.ot import align_fgw_objective, fgw


def _cost(n, m, seed, batch=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, n, m, generator=g, dtype=torch.float64)


@pytest.mark.parametrize(("ub_x", "ub_y"), [(False, False), (False, True), (True, False)])
@pytest.mark.parametrize(("n", "m", "radius"), [(30, 25, 0.1), (12, 40, 0.2), (1, 5, 0.5)])
def test_reproduces_reference_iteration(ub_x, ub_y, n, m, radius):
    cost = _cost(n, m, seed=n * m)
    ref = reference_fgw_iteration(
        to_np(cost[0]), cv_dense(n, radius), cy_dense(m, radius), eps=0.07, alpha=0.3, ub_x=ub_x, ub_y=ub_y,
        lambda_x=0.05, lambda_y=0.05, n_iters=25,
    )  # fmt: skip
    plan = vaot(cost, eps=0.07, alpha=0.3, radius=radius, unbalanced_x=ub_x, unbalanced_y=ub_y)
    np.testing.assert_allclose(to_np(plan[0]) / n, ref, rtol=1e-7, atol=1e-12)


def test_virtual_frame_is_prepended_and_takes_part_in_the_band():
    n, m, radius, zeta, rho = 20, 16, 0.1, 0.5, 0.35
    cost = _cost(n, m, seed=1)
    cost_hat = to_np(cost[0]) + rho * temporal_prior_dense(n, m)
    aug = np.full((n + 1, m + 1), zeta)
    aug[1:, 1:] = cost_hat
    ref = reference_fgw_iteration(
        aug, cv_dense(n + 1, radius), cy_dense(m + 1, radius), eps=0.07, alpha=0.3, ub_x=False, ub_y=False,
        lambda_x=0.0, lambda_y=0.0, n_iters=25,
    )  # fmt: skip
    plan = vaot(cost, radius=radius, temporal_prior=rho, virtual_cost=zeta)
    assert plan.shape == (1, n, m)
    np.testing.assert_allclose(to_np(plan[0]), ref[1:, 1:] * (n + 1), rtol=1e-7, atol=1e-12)
    # real rows keep what they did not send to the virtual column
    np.testing.assert_allclose(to_np(plan[0].sum(1)), (ref[1:, :].sum(1) - ref[1:, 0]) * (n + 1), rtol=1e-7)


def test_balanced_converges_to_pot_entropic_fgw():
    n, m, eps, alpha, radius = 15, 12, 0.1, 0.3, 0.2
    cost = _cost(n, m, seed=4)
    plan = vaot(cost, eps=eps, alpha=alpha, radius=radius, n_iters=120, inner_iters=60)
    ref = ot.gromov.entropic_fused_gromov_wasserstein(
        to_np(cost[0]), cv_dense(n, radius), -cy_dense(m, radius) / 2, np.full(n, 1 / n), np.full(m, 1 / m),
        "square_loss", epsilon=2 * eps / (2 - alpha), alpha=alpha / (2 - alpha), max_iter=2000, tol=1e-13,
    )  # fmt: skip
    np.testing.assert_allclose(to_np(plan[0]) / n, ref, atol=1e-5)


@pytest.mark.parametrize("rows_first", [True, False])
def test_a_frame_priced_far_above_every_other_keeps_its_mass_in_float32(rows_first, monkeypatch):
    """float32, one frame priced 10 above every other frame's best at eps 0.05: exp(-140) is 0 in float32, so a
    linear-domain Sinkhorn pass (the reference's) would lose that frame of the second side (a y frame when rows
    go first, an x frame otherwise); the log-domain pass shifts each slice by its own max.  The columns-first
    pass is the rows-first pass of the transposed problem."""
    n, m, eps = 16, 12, 0.05
    cost = _cost(n, m, seed=5).float()
    if rows_first:
        cost[:, :, 3] += 10.0
    else:
        cost[:, 3, :] += 10.0
        monkeypatch.setattr(fgw, "fgw_mirror_descent", functools.partial(fgw.fgw_mirror_descent, rows_first=False))
    c = to_np(cost[0]).astype(np.float64)
    dense = dict(eps=eps, alpha=0.3, ub_x=False, ub_y=False, lambda_x=0.0, lambda_y=0.0, n_iters=25)
    if rows_first:
        ref = reference_fgw_iteration(c, cv_dense(n, 0.1), cy_dense(m, 0.1), **dense)
    else:
        ref = reference_fgw_iteration(c.T, cy_dense(m, 0.1), cv_dense(n, 0.1), **dense).T
    lost = ref[:, 3] if rows_first else ref[3, :]
    assert lost.sum() == pytest.approx(1 / m if rows_first else 1 / n)
    kw = dict(eps=eps, alpha=0.3, radius=0.1, inner_iters=1)
    plan = vaot(cost, **kw)
    np.testing.assert_allclose(to_np(plan[0]) / n, ref, rtol=2e-4, atol=1e-9)


@pytest.mark.parametrize("virtual_cost", [None, 0.5])
@pytest.mark.parametrize(("ub_x", "ub_y"), [(False, False), (False, True), (True, True)])
def test_padded_batch_equals_each_pair_alone(virtual_cost, ub_x, ub_y):
    sizes = [(30, 22), (11, 22), (30, 5), (1, 1)]
    cost = _cost(30, 22, seed=8, batch=len(sizes))
    mask_x = torch.stack([torch.arange(30) < n for n, _ in sizes])
    mask_y = torch.stack([torch.arange(22) < m for _, m in sizes])
    kw = dict(radius=0.1, temporal_prior=0.35, virtual_cost=virtual_cost, unbalanced_x=ub_x, unbalanced_y=ub_y)
    batched, log = vaot(cost, mask_x, mask_y, return_log=True, **kw)
    for i, (n, m) in enumerate(sizes):
        alone, log_alone = vaot(cost[i : i + 1, :n, :m], return_log=True, **kw)
        torch.testing.assert_close(batched[i, :n, :m], alone[0], rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(log["objective"][i], log_alone["objective"][0], rtol=1e-9, atol=1e-12)
        assert batched[i, n:].abs().sum() == 0 and batched[i, :, m:].abs().sum() == 0


@pytest.mark.parametrize(("ub_x", "ub_y"), [(False, False), (True, False), (True, True)])
def test_logged_objective_equals_dense_objective(ub_x, ub_y):
    n, m, rho, radius = 18, 14, 0.3, 0.15
    cost = _cost(n, m, seed=2, batch=2)
    kw = dict(eps=0.07, alpha=0.5, radius=radius, lambda_x=0.08, lambda_y=0.06,
              unbalanced_x=ub_x, unbalanced_y=ub_y, temporal_prior=rho)  # fmt: skip
    _, log = vaot(cost, n_iters=5, return_log=True, **kw)
    for iters in (1, 5):
        plan = vaot(cost, n_iters=iters, **kw) / n
        for i in range(2):
            dense = dense_fgw_objective(
                to_np(plan[i]), to_np(cost[i]) + rho * temporal_prior_dense(n, m), cv_dense(n, radius),
                cy_dense(m, radius), eps=0.07, alpha=0.5, lambda_x=0.08, lambda_y=0.06, ub_x=ub_x, ub_y=ub_y,
            )  # fmt: skip
            assert float(log["objective"][i, iters - 1]) == pytest.approx(dense, rel=1e-9, abs=1e-12)
        torch.testing.assert_close(align_fgw_objective(plan, cost, **objective_args(VAOT, **kw)), log["objective"][:, iters - 1], rtol=1e-9, atol=1e-12)


def test_alignment_of_a_video_with_itself_is_near_diagonal():
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(1, 40, 16, generator=g).cumsum(1), dim=-1)
    cost = 1 - x @ x.transpose(1, 2)
    plan = vaot(cost, eps=0.05, temporal_prior=0.35)
    assert (plan[0].argmax(1) - torch.arange(40)).abs().max() <= 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"eps": 0.0}, "eps"),
        ({"alpha": 2.0}, "alpha"),
        ({"radius": -0.1}, "radius"),
        ({"virtual_cost": float("nan")}, "virtual_cost"),
        ({"mask_x": torch.ones(1, 8, dtype=torch.bool)}, "mask_x"),
        ({"mask_y": torch.ones(1, 8, dtype=torch.bool)}, "mask_y"),
        ({"lambda_y": -1.0}, "lambda_y"),
    ],
)
def test_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        vaot(torch.rand(1, 9, 6), **kwargs)
