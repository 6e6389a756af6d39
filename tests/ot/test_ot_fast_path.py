"""The fast path: compiled iterations equal the eager ones, the policy that picks them, scaling-domain sweeps,
non-finite costs rejected by every solver."""

from __future__ import annotations

import pytest
import torch
from solver_args import asot, realign, vaot

import vasot_dist.ot as vot
from vasot_dist.ot import _common, _compile, partial, priors, sinkhorn, sinkhorn_unbalanced


@pytest.fixture
def compile_mode():
    """Set the compile policy for one test (the suite runs eagerly: VASOT_OT_COMPILE is 'auto' and its problems
    are small or one-off)."""
    old = _compile.compile_mode()
    yield _compile.set_compile
    _compile.set_compile(old)


def _batch(n, m, seed=0):
    g = torch.Generator().manual_seed(seed)
    cost = torch.rand(3, n, m, generator=g, dtype=torch.float64)
    mask_x = torch.arange(n)[None] < torch.tensor([[n], [n - 5], [7]])
    return cost, mask_x


SOLVES = {
    "segment_asot": lambda c, mx: asot(c, mx, temporal_prior=0.2, radius=0.1),
    "align_fgw": lambda c, mx: vaot(c, mx, None, virtual_cost=0.5, temporal_prior=0.35, radius=0.1),
    # no masks: host-known band widths, so the compiled bodies sum the bands by shifted reads of a padded copy
    "align_fgw dense": lambda c, mx: vaot(c, None, None, virtual_cost=0.5, temporal_prior=0.35, radius=0.2),
    "segment_asot dense": lambda c, mx: asot(c, None, temporal_prior=0.2, radius=0.2),
    "align_partial_fgw": lambda c, mx: realign(c, mx, mass=0.7, eps=0.05, alpha=0.4, radius=0.2, virtual_cost=0.5,
                                               n_iters=3, inner_iters=25),
    "sinkhorn": lambda c, mx: sinkhorn(c, eps=0.05, mask_x=mx, n_iters=30, tol=None),
}


@pytest.mark.slow  # nine inductor compiles, ~50 s on the 2-core CI machine (less with inductor's disk cache)
def test_compiled_iterations_give_the_eager_plans(compile_mode):
    """One small shape per solver family, float64: the inductor-compiled bodies reorder sums, nothing else."""
    torch._dynamo.reset()
    for name, solve in SOLVES.items():
        cost, mask_x = _batch(24, 9 if name == "segment_asot" else 20)
        compile_mode("never")
        eager = solve(cost, mask_x)
        compile_mode("always")
        compiled = solve(cost, mask_x)
        torch.testing.assert_close(compiled, eager, rtol=1e-9, atol=1e-12, msg=name)


def test_set_compile_rejects_unknown_modes():
    with pytest.raises(ValueError, match="compile mode must be one of"):
        _compile.set_compile("sometimes")


def test_scaling_domain_sweeps_equal_log_domain_sweeps(monkeypatch):
    """Blocks of 20 sweeps (one log-domain, 19 scaling-domain) = all sweeps in the log domain, warm start included."""
    g = torch.Generator().manual_seed(3)
    cost = torch.rand(4, 30, 25, generator=g, dtype=torch.float64)
    mask_y = torch.arange(25)[None] < torch.tensor([[25], [25], [11], [25]])
    kw = dict(mass=0.6, eps=0.03, alpha=0.5, radius=0.2, virtual_cost=0.5, n_iters=4, inner_iters=47)
    blocks = realign(cost, None, mask_y, **kw)
    monkeypatch.setattr(partial, "BLOCK", 1)
    log_domain = realign(cost, None, mask_y, **kw)
    torch.testing.assert_close(blocks, log_domain, rtol=1e-10, atol=1e-13)


def test_cpu_chunks_split_the_batch_evenly_by_cache_size(monkeypatch):
    monkeypatch.setattr(_common, "CPU_CHUNK_ELEMENTS", 1000)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    cpu = torch.device("cpu")
    assert _common.cpu_chunks(64, 66049, cpu) == [slice(i, i + 1) for i in range(64)]
    assert _common.cpu_chunks(7, 400, cpu) == [slice(0, 4), slice(4, 7)]  # at most 5 per chunk, evened out
    assert _common.cpu_chunks(7, 100, cpu) == [slice(0, 7)]
    assert _common.cpu_chunks(7, 400, torch.device("meta")) == [slice(0, 7)]  # not a CPU: the whole batch


def test_solves_in_cache_sized_chunks_equal_one_chunk(monkeypatch):
    cost, mask_x = _batch(20, 16, seed=5)
    kw = dict(mass=0.8, eps=0.05, alpha=0.3, radius=0.1, n_iters=3, inner_iters=20)
    whole = realign(cost, mask_x, **kw)
    vaot_kw = dict(virtual_cost=0.5, temporal_prior=0.35, radius=0.1, return_log=True)
    whole_vaot, whole_log = vaot(cost, mask_x, None, **vaot_kw)
    monkeypatch.setattr(_common, "CPU_CHUNK_ELEMENTS", 1)  # one problem per chunk
    torch.testing.assert_close(realign(cost, mask_x, **kw), whole, rtol=1e-12, atol=1e-15)
    chunked, log = vaot(cost, mask_x, None, **vaot_kw)
    torch.testing.assert_close(chunked, whole_vaot, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(log["objective"], whole_log["objective"], rtol=1e-12, atol=1e-15)


def test_long_axes_use_the_fft_and_agree_with_the_dense_kernel(monkeypatch):
    g = torch.Generator().manual_seed(0)
    t = torch.rand(2, 33, 17, generator=g, dtype=torch.float64)
    scale = torch.tensor([4.0, 9.5], dtype=torch.float64)
    dense = [priors.laplace_kernel_apply(t, scale, dim) for dim in (1, 2)]
    monkeypatch.setattr(priors, "DENSE_LAPLACE_MAX", 0)
    assert priors.laplace_kernel(scale, 33, 1, t.dtype).dense is None
    for dim in (1, 2):
        torch.testing.assert_close(priors.laplace_kernel_apply(t, scale, dim), dense[dim - 1], rtol=1e-10, atol=1e-12)


NAN_SOLVERS = {
    "segment_asot": lambda c, mx: asot(c, mx),
    "align_fgw": lambda c, mx: vaot(c, mx, None, virtual_cost=0.5),
    "align_partial_fgw": lambda c, mx: realign(c, mx, mass=0.5, eps=0.1, alpha=0.3, radius=0.2, n_iters=2,
                                               inner_iters=5),
    "sinkhorn": lambda c, mx: sinkhorn(c, eps=0.1, mask_x=mx, n_iters=5, tol=None),
    "sinkhorn_unbalanced": lambda c, mx: sinkhorn_unbalanced(c, eps=0.1, reg_m=0.5, mask_x=mx, n_iters=5, tol=None),
    "partial_wasserstein": lambda c, mx: vot.partial_wasserstein(c, mass=0.5, eps=0.1, mask_x=mx, n_iters=5, tol=None),
}


@pytest.mark.parametrize("name", sorted(NAN_SOLVERS))
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_costs_are_rejected_naming_the_problem(name, bad):
    cost = torch.rand(3, 10, 6)
    mask_x = torch.ones(3, 10, dtype=torch.bool)
    mask_x[2, 8:] = False
    cost[2, 9, 0] = bad  # a masked entry may hold anything
    NAN_SOLVERS[name](cost, mask_x)
    cost[1, 4, 3] = bad
    with pytest.raises(ValueError, match=r"cost has NaN or inf entries in batch index 1; an OT cost must be finite"):
        NAN_SOLVERS[name](cost, mask_x)


@pytest.mark.parametrize("name", ["segment_asot", "align_fgw", "align_partial_fgw"])
def test_without_masks_a_non_finite_cost_is_rejected_and_an_overflowing_sum_is_not(name):
    # the check sums each batch first; entries near float32's largest value overflow that sum, yet are finite
    cost = torch.rand(3, 10, 6)
    cost[0, :, 0] = 3e38
    NAN_SOLVERS[name](cost, None)
    cost[1, 4, 3] = float("nan")
    with pytest.raises(ValueError, match=r"cost has NaN or inf entries in batch index 1; an OT cost must be finite"):
        NAN_SOLVERS[name](cost, None)


def test_validate_false_leaves_non_finite_costs_to_the_caller():
    # the training losses' setting: the trainer's non-finite guard skips the step instead
    cost = torch.rand(2, 6, 4)
    cost[1, 2, 3] = float("nan")
    with pytest.raises(ValueError, match="batch index 1"):  # validate=None: a CPU cost is checked
        asot(cost, None)
    # unchecked, it solves; the clean problem's plan is what it is alone (no NaN crosses the batch)
    torch.testing.assert_close(asot(cost, None, validate=False)[0], asot(cost[:1], None)[0])
    plan = sinkhorn(cost, eps=0.1, n_iters=5, tol=None, validate=False)
    torch.testing.assert_close(plan[0], sinkhorn(cost[:1], eps=0.1, n_iters=5, tol=None)[0])


def test_non_finite_points_are_rejected_by_the_sliced_costs():
    x = torch.randn(2, 5, 3)
    x[1, 2, 0] = float("nan")
    with pytest.raises(ValueError, match="x has NaN or inf entries in batch index 1"):
        vot.sliced_wasserstein(x, torch.randn(2, 4, 3), p=2, n_projections=4)
    with pytest.raises(ValueError, match="x has NaN or inf entries in batch index 1"):
        vot.circular_sw_cost(x, torch.randn(4, 3), radius=2.0, n_projections=4)
    with pytest.raises(ValueError, match="exactly one of n_projections"):
        vot.sliced_wasserstein(x, x, p=2)
