"""The hand-written CPU kernels (``vasot_dist/ot/_cpu_kernels.py``) give the plans of the compiled/eager path, and
are used exactly when their policy says."""

from __future__ import annotations

import logging

import pytest
import torch

import vasot_dist.ot as vot
from vasot_dist.ot import _compile, _cpu_kernels
from vasot_dist.ot._cpu_kernels import CpuKernel


@pytest.fixture
def compile_mode():
    old = _compile.compile_mode()
    yield _compile.set_compile
    _compile.set_compile(old)


@pytest.fixture
def eager_iterations(monkeypatch):
    """Keep the Python path eager under ``always`` (an inductor compile per case would only slow these tests)."""
    monkeypatch.setattr(_compile.FusedIteration, "select", lambda self, key, like, numel: self.fn)


@pytest.fixture
def kernel_calls(monkeypatch):
    """Count the built kernels' calls (the solvers fall back silently, so a test must see the kernel ran)."""
    calls: list[str] = []
    original = CpuKernel.select

    def select(self, constants, like):
        kernel = original(self, constants, like)
        if kernel is None:
            return None

        def counted(*args):
            calls.append(self.name)
            return kernel(*args)

        return counted

    monkeypatch.setattr(CpuKernel, "select", select)
    return calls


ASOT = dict(eps=0.07, alpha=0.3, radius=0.04, lambda_frames=0.1, lambda_actions=0.1, unbalanced_frames=False,
            unbalanced_actions=True, temporal_prior=1.0, n_iters=25, inner_iters=1)
VAOT = dict(eps=0.07, alpha=0.3, radius=0.02, lambda_x=0.05, lambda_y=0.05, unbalanced_x=False, unbalanced_y=False,
            temporal_prior=0.35, virtual_cost=0.5, n_iters=25, inner_iters=1)
SOLVERS = {"segment_asot": (vot.segment_asot, ASOT), "align_fgw": (vot.align_fgw, VAOT)}


@pytest.mark.parametrize(
    ("name", "shape", "changes"),
    [
        ("segment_asot", (4, 256, 19), {}),  # the training shape: full vectors, w = 10
        ("segment_asot", (3, 50, 7), {"radius": 0.3, "temporal_prior": 0.0}),  # 50 frames: a vector tail; w = 15
        ("segment_asot", (2, 40, 5), {"radius": 0.03, "step_size": 0.5, "alpha": 0.0}),  # w = 1, fixed step, no GW
        ("segment_asot", (2, 20, 3), {"eps": 0.02, "lambda_actions": 0.5, "n_iters": 7, "radius": 0.2}),
        ("align_fgw", (3, 256, 256), {}),  # the training shape: 257 x 257 with the virtual frame, w = 5 both sides
        ("align_fgw", (2, 60, 45), {"radius": 0.1, "virtual_cost": None}),  # no virtual frame: w = 6 and 4
        ("align_fgw", (2, 50, 70), {"radius": 0.2, "inner_iters": 3, "temporal_prior": 0.0, "eps": 0.03}),
        ("align_fgw", (2, 20, 33), {"radius": 0.3, "alpha": 0.0, "n_iters": 4, "virtual_cost": 2.0}),
    ],
)
def test_cpu_kernels_give_the_python_plans(compile_mode, kernel_calls, name, shape, changes):
    solve, defaults = SOLVERS[name]
    g = torch.Generator().manual_seed(sum(shape))
    cost = torch.rand(shape, generator=g)
    kw = {**defaults, **changes}
    compile_mode("never")
    expected = solve(cost, **kw)
    compile_mode("always")
    got = solve(cost, **kw)
    assert kernel_calls == [name]
    torch.testing.assert_close(got, expected, rtol=2e-4, atol=2e-6)
    assert got.shape == cost.shape


def test_segment_asot_kernel_is_kept_out_of_cases_it_does_not_cover(compile_mode, kernel_calls, eager_iterations):
    compile_mode("always")
    cost = torch.rand(2, 40, 5)
    mask = torch.ones(2, 40, dtype=torch.bool)
    vot.segment_asot(cost, mask, **ASOT)  # a mask: per-problem band widths on the device
    vot.segment_asot(cost, **{**ASOT, "unbalanced_frames": True})  # another branch of the solver
    vot.segment_asot(cost, **{**ASOT, "radius": 0.5})  # w = 20: wider than the shifted-read band
    vot.segment_asot(cost, **{**ASOT, "radius": 0.01})  # w = 0: no band
    vot.segment_asot(cost.double(), **ASOT)
    vot.segment_asot(cost, **ASOT, return_log=True)
    assert kernel_calls == []
    vot.segment_asot(cost, **ASOT)
    assert kernel_calls == ["segment_asot"]


def test_auto_policy_builds_a_kernel_for_a_recurring_large_problem_only(compile_mode, monkeypatch):
    built = []
    monkeypatch.setattr(CpuKernel, "_build", lambda self, key, constants: built.append(key) or (lambda *a: None))
    compile_mode("auto")
    kernel = CpuKernel("probe", [])
    large, small = torch.zeros(1, 1 << 18), torch.zeros(2, 8, 8)
    assert kernel.select({"N": 1}, large) is None and kernel.select({"N": 1}, large) is not None
    assert kernel.select({"N": 2}, small) is None and kernel.select({"N": 2}, small) is None
    grad = torch.zeros(1, 1 << 18, requires_grad=True)
    assert kernel.select({"N": 3}, grad) is None and kernel.select({"N": 3}, grad) is None
    assert kernel.select({"N": 4}, large.double()) is None and kernel.select({"N": 4}, large.double()) is None
    compile_mode("never")
    assert kernel.select({"N": 1}, large) is None
    assert len(built) == 1


def test_a_failing_build_falls_back_to_the_python_path_with_one_warning(compile_mode, monkeypatch, caplog,
                                                                         eager_iterations):
    from torch._inductor.codecache import CppPythonBindingsCodeCache

    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(CppPythonBindingsCodeCache, "load_pybinding", broken)
    monkeypatch.setattr(_cpu_kernels, "SEGMENT_ASOT", CpuKernel("segment_asot", _cpu_kernels.SEGMENT_ASOT.argtypes))
    compile_mode("always")
    cost = torch.rand(2, 30, 4)
    with caplog.at_level(logging.WARNING, logger="vasot_dist.ot"):
        got = vot.segment_asot(cost, **{**ASOT, "radius": 0.1})
        again = vot.segment_asot(cost, **{**ASOT, "radius": 0.1})
    compile_mode("never")
    torch.testing.assert_close(got, vot.segment_asot(cost, **{**ASOT, "radius": 0.1}))
    torch.testing.assert_close(again, got)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "RuntimeError: no C++ compiler" in warnings[0].getMessage()


def test_align_fgw_kernel_is_kept_out_of_cases_it_does_not_cover(compile_mode, kernel_calls, eager_iterations):
    compile_mode("always")
    cost = torch.rand(2, 40, 30)
    mask = torch.ones(2, 40, dtype=torch.bool)
    vot.align_fgw(cost, mask, None, **{**VAOT, "radius": 0.1})  # a mask
    vot.align_fgw(cost, **{**VAOT, "radius": 0.1, "unbalanced_x": True})  # the unbalanced branch
    vot.align_fgw(cost, **{**VAOT, "radius": 0.45})  # w = 18: wider than the shifted-read band
    vot.align_fgw(cost, **VAOT)  # w = 0 at 31 frames and r = 0.02
    vot.align_fgw(cost.double(), **{**VAOT, "radius": 0.1})
    vot.align_fgw(cost, **{**VAOT, "radius": 0.1}, return_log=True)
    assert kernel_calls == []
    vot.align_fgw(cost, **{**VAOT, "radius": 0.1})
    assert kernel_calls == ["align_fgw"]
