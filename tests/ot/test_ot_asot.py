"""segment_asot: the authors' iteration, POT oracles at convergence, objective, padding, ablations."""

from __future__ import annotations

import warnings

import numpy as np
import ot
import pytest
import torch
from ot_dense import (
    ca_dense,
    cv_dense,
    dense_fgw_objective,
    reference_fgw_iteration,
    temporal_prior_dense,
    to_np,
)
from solver_args import ASOT, asot, objective_args

from vasot_dist.ot import asot_objective

INF = float("inf")


def _cost(n, k, seed, batch=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, n, k, generator=g, dtype=torch.float64)


@pytest.mark.parametrize(
    ("ub_frames", "ub_actions"), [(False, True), (True, False), (True, True), (False, False)]
)
@pytest.mark.parametrize(("n", "k", "alpha", "radius"), [(40, 6, 0.3, 0.04), (25, 4, 0.6, 0.2), (7, 3, 1.0, 0.5)])
def test_reproduces_reference_iteration(ub_frames, ub_actions, n, k, alpha, radius):
    """25 reference iterations (dense, linear domain, 1e-12 floors, eta = 4/max grad) give the same plan."""
    cost = _cost(n, k, seed=n + k)
    eps, lf, la = 0.07, 0.1, 0.05
    ref = reference_fgw_iteration(
        to_np(cost[0]), cv_dense(n, radius), ca_dense(k), eps=eps, alpha=alpha, ub_x=ub_frames, ub_y=ub_actions,
        lambda_x=lf, lambda_y=la, n_iters=25,
    )  # fmt: skip
    plan = asot(
        cost, eps=eps, alpha=alpha, radius=radius, lambda_frames=lf, lambda_actions=la,
        unbalanced_frames=ub_frames, unbalanced_actions=ub_actions,
    )  # fmt: skip
    np.testing.assert_allclose(to_np(plan[0]) / n, ref, rtol=1e-7, atol=1e-12)
    if not ub_frames:
        np.testing.assert_allclose(to_np(plan.sum(2)), 1.0, atol=1e-9 if ub_actions else 5.0)


def test_reproduces_reference_with_temporal_prior_and_several_inner_passes():
    n, k, rho = 30, 5, 0.25
    cost = _cost(n, k, seed=3)
    cost_hat = to_np(cost[0]) + rho * temporal_prior_dense(n, k)
    ref = reference_fgw_iteration(
        cost_hat, cv_dense(n, 0.1), ca_dense(k), eps=0.1, alpha=0.3, ub_x=False, ub_y=False,
        lambda_x=0.0, lambda_y=0.0, n_iters=25, inner_iters=4,
    )  # fmt: skip
    plan = asot(
        cost, eps=0.1, alpha=0.3, radius=0.1, unbalanced_actions=False, temporal_prior=rho, inner_iters=4
    )
    np.testing.assert_allclose(to_np(plan[0]) / n, ref, rtol=1e-7, atol=1e-12)


def test_alpha_zero_converges_to_pot_semi_relaxed_sinkhorn():
    n, k, eps, lam = 30, 5, 0.07, 0.05
    cost = _cost(n, k, seed=11, batch=2)
    plan = asot(cost, eps=eps, alpha=0.0, lambda_actions=lam, n_iters=3000) / n
    for i in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = ot.unbalanced.sinkhorn_unbalanced(
                np.full(n, 1 / n), np.full(k, 1 / k), to_np(cost[i]), reg=eps, reg_m=(INF, lam),
                reg_type="entropy", numItermax=100000, stopThr=1e-15,
            )  # fmt: skip
        np.testing.assert_allclose(to_np(plan[i]), ref, atol=1e-5)


@pytest.mark.parametrize(("alpha", "radius"), [(0.3, 0.15), (0.6, 0.3)])
def test_balanced_converges_to_pot_entropic_fgw(alpha, radius):
    """Balanced, many inner+outer iterations = entropic FGW on (C, Cv, -Ca/2), alpha/(2-alpha), 2eps/(2-alpha)."""
    n, k, eps = 20, 5, 0.1
    cost = _cost(n, k, seed=5)
    plan = asot(
        cost, eps=eps, alpha=alpha, radius=radius, unbalanced_actions=False, n_iters=120, inner_iters=60
    )
    ref = ot.gromov.entropic_fused_gromov_wasserstein(
        to_np(cost[0]), cv_dense(n, radius), -ca_dense(k) / 2, np.full(n, 1 / n), np.full(k, 1 / k),
        "square_loss", epsilon=2 * eps / (2 - alpha), alpha=alpha / (2 - alpha), max_iter=2000, tol=1e-13,
    )  # fmt: skip
    np.testing.assert_allclose(to_np(plan[0]) / n, ref, atol=1e-5)


def _row_dispersion(plan, cost, *, eps, alpha, radius, lam):
    """T-weighted spread of the gradient of G within each row (0 at a stationary point of G s.t. T1 = p)."""
    n, k = cost.shape
    t = plan / n
    col = t.sum(0, keepdims=True)
    grad = alpha * cv_dense(n, radius) @ t @ ca_dense(k) + (1 - alpha) * cost + eps * np.log(t)
    grad = grad + lam * (np.log(col * k) + 1)
    w = t / t.sum(1, keepdims=True)
    mean = (w * grad).sum(1, keepdims=True)
    return float(np.max((w * (grad - mean) ** 2).sum(1)))


def test_unbalanced_gw_reaches_stationarity():
    n, k, eps, alpha, radius, lam = 30, 4, 0.1, 0.3, 0.1, 0.05
    cost = _cost(n, k, seed=2)
    kw = dict(eps=eps, alpha=alpha, radius=radius, lambda_actions=lam)
    short = to_np(asot(cost, n_iters=25, **kw)[0])
    long = to_np(asot(cost, n_iters=3000, step_size=1.0, **kw)[0])
    d_short = _row_dispersion(short, to_np(cost[0]), eps=eps, alpha=alpha, radius=radius, lam=lam)
    d_long = _row_dispersion(long, to_np(cost[0]), eps=eps, alpha=alpha, radius=radius, lam=lam)
    assert d_long < 1e-10 < d_short


@pytest.mark.parametrize(
    ("ub_frames", "ub_actions"), [(False, True), (True, False), (True, True), (False, False)]
)
def test_logged_objective_equals_dense_objective(ub_frames, ub_actions):
    n, k, rho = 24, 5, 0.2
    cost = _cost(n, k, seed=9, batch=2)
    kw = dict(eps=0.08, alpha=0.4, radius=0.1, lambda_frames=0.1, lambda_actions=0.07,
              unbalanced_frames=ub_frames, unbalanced_actions=ub_actions, temporal_prior=rho)  # fmt: skip
    _, log = asot(cost, n_iters=6, return_log=True, **kw)
    assert log["objective"].shape == (2, 6) and log["n_iters"] == 6
    for iters in (1, 3, 6):
        plan = asot(cost, n_iters=iters, **kw) / n
        for i in range(2):
            dense = dense_fgw_objective(
                to_np(plan[i]), to_np(cost[i]) + rho * temporal_prior_dense(n, k), cv_dense(n, 0.1), ca_dense(k),
                eps=0.08, alpha=0.4, lambda_x=0.1, lambda_y=0.07, ub_x=ub_frames, ub_y=ub_actions,
            )  # fmt: skip
            assert float(log["objective"][i, iters - 1]) == pytest.approx(dense, rel=1e-9, abs=1e-12)
        public = asot_objective(plan, cost, **objective_args(ASOT, **kw))
        torch.testing.assert_close(public, log["objective"][:, iters - 1], rtol=1e-9, atol=1e-12)


def test_objective_decreases_over_iterations():
    cost = _cost(200, 8, seed=4, batch=3).float()
    # the reference step (4 / max grad) on the default settings
    _, log = asot(cost, n_iters=25, return_log=True)
    obj = log["objective"]
    assert torch.all(obj[:, -1] < obj[:, 0])
    assert torch.all(obj[:, 1:] <= obj[:, :-1] + 1e-6)
    # a small fixed step decreases monotonically for every flag combination with a projection
    for flags in [(False, True), (True, False)]:
        _, log = asot(cost, n_iters=40, step_size=0.5, unbalanced_frames=flags[0],
                              unbalanced_actions=flags[1], return_log=True)  # fmt: skip
        assert torch.all(log["objective"][:, 1:] <= log["objective"][:, :-1] + 1e-6)


@pytest.mark.parametrize(
    ("ub_frames", "ub_actions"), [(False, True), (True, False), (True, True), (False, False)]
)
def test_padded_batch_equals_each_video_alone(ub_frames, ub_actions):
    lengths = [50, 31, 1, 17]
    k = 6
    cost = _cost(50, k, seed=21, batch=len(lengths))
    mask = torch.arange(50)[None, :] < torch.tensor(lengths)[:, None]
    cost = torch.where(mask[:, :, None], cost, torch.full_like(cost, 7.0))  # garbage on padding
    kw = dict(unbalanced_frames=ub_frames, unbalanced_actions=ub_actions, temporal_prior=0.2, radius=0.1)
    batched, log = asot(cost, mask, return_log=True, **kw)
    for i, n in enumerate(lengths):
        alone, log_alone = asot(cost[i : i + 1, :n], return_log=True, **kw)
        torch.testing.assert_close(batched[i, :n], alone[0], rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(log["objective"][i], log_alone["objective"][0], rtol=1e-9, atol=1e-12)
        assert torch.all(batched[i, n:] == 0)


def _noisy_segments(n, k, seed):
    """Piecewise-constant ground truth (k segments in order) + noise: cost = 1 - noisy affinity."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.div(torch.arange(n) * k, n, rounding_mode="floor")
    aff = torch.nn.functional.one_hot(labels, k).float() * 0.5 + 0.6 * torch.rand(n, k, generator=g)
    return (1 - aff)[None], labels


def _n_segments(labels):
    return int((labels[1:] != labels[:-1]).sum()) + 1


def test_ablation_alpha_zero_loses_temporal_consistency():
    cost, _ = _noisy_segments(300, 6, seed=0)
    kw = dict(eps=0.04, radius=0.04, lambda_actions=0.05)
    seg_gw = _n_segments(asot(cost, alpha=0.3, **kw)[0].argmax(1))
    seg_nogw = _n_segments(asot(cost, alpha=0.0, **kw)[0].argmax(1))
    assert seg_nogw > 3 * seg_gw


def test_ablation_balanced_spreads_frames_evenly_over_actions():
    cost, _ = _noisy_segments(240, 6, seed=1)
    cost[:, :, 0] -= 0.5  # action 0 looks best everywhere
    kw = dict(eps=0.05, alpha=0.3, radius=0.04)
    counts_ub = torch.bincount(asot(cost, **kw)[0].argmax(1), minlength=6)
    counts_bal = torch.bincount(asot(cost, unbalanced_actions=False, **kw)[0].argmax(1), minlength=6)
    assert counts_ub.max() > 80  # unbalanced: the favoured action takes > 2x its share of 40 frames
    assert counts_bal.min() >= 30 and counts_bal.max() <= 50  # balanced: close to 40 frames each


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"eps": 0.0}, "eps"),
        ({"eps": -0.1}, "eps"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": -0.1}, "alpha"),
        ({"radius": 0.0}, "radius"),
        ({"radius": 1.2}, "radius"),
        ({"lambda_actions": -1.0}, "lambda_actions"),
        ({"n_iters": 0}, "n_iters"),
        ({"mask": torch.ones(2, 9, dtype=torch.bool)}, "mask"),
        ({"mask": torch.ones(2, 10, dtype=torch.int64)}, "mask"),
    ],
)
def test_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        asot(torch.rand(2, 10, 3), **kwargs)


def test_validation_of_cost():
    with pytest.raises(ValueError, match="cost must be a torch.Tensor"):
        asot(np.zeros((1, 10, 3)))
    with pytest.raises(ValueError, match="cost"):
        asot(torch.rand(10, 3))
    with pytest.raises(ValueError, match="cost"):
        asot(torch.ones(1, 10, 3, dtype=torch.int64))


def test_half_inputs_solve_in_float32_under_autocast():
    cost = torch.rand(2, 40, 5)
    ref = asot(cost)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = asot(cost.bfloat16())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, asot(cost.bfloat16().float()))
    assert (out.argmax(2) == ref.argmax(2)).float().mean() > 0.9
