"""The compile policy (``vasot_dist/ot/_compile.py``): a key compiles only once its eager time has paid for a
compile, never inside ``eager()``, and a failing compile gives the eager plans back with one warning.

No real compile runs here: ``torch.compile`` is replaced by a recorder (or by one that raises) and the policy's
clock by a fake one.
"""

from __future__ import annotations

import logging

import pytest
import torch
from solver_args import asot

import vasot_dist.ot as vot
from vasot_dist.ot import _compile
from vasot_dist.ot._compile import FusedIteration


@pytest.fixture
def policy(monkeypatch):
    """Auto mode, no compile measured yet, a fake clock (``tick`` seconds per reading pair) and a recording
    ``torch.compile`` whose compiled function is the eager one."""
    old = _compile.set_compile("auto")
    monkeypatch.setattr(_compile, "_compile_seconds", [])
    monkeypatch.setattr(_compile, "_broken", False)
    now = [0.0]
    compiled: list[str] = []

    def clock() -> float:
        now[0] += 0.5  # each reading advances half a second: a call between two readings lasts 0.5 s
        return now[0]

    def fake_compile(fn, **kwargs):
        compiled.append(getattr(fn, "__name__", repr(fn)))
        return fn

    monkeypatch.setattr(_compile, "_clock", clock)
    monkeypatch.setattr(torch, "compile", fake_compile)
    yield compiled
    _compile.set_compile(old)


def _double(x):
    return x * 2


def test_a_one_off_shape_never_compiles(policy, monkeypatch):
    monkeypatch.setattr(_compile, "COMPILE_COST_S", 1.0)
    it = FusedIteration(_double)
    large = torch.ones(1, 1 << 18)
    assert torch.equal(it.select("one-off", large, large.numel())(large), large * 2)
    assert policy == [] and [k["compiled"] for k in _compile.compile_stats()["keys"] if k["iteration"] == "double"] == [
        False]


def test_a_key_compiles_once_its_eager_time_reaches_the_expected_compile_cost(policy, monkeypatch):
    monkeypatch.setattr(_compile, "COMPILE_COST_S", 1.2)  # 0.5 s per eager call: the 4th call compiles
    it = FusedIteration(_double)
    x = torch.ones(1, 1 << 18)
    for _ in range(3):
        it.select("k", x, x.numel())(x)
    assert policy == [] and it.stats[("k", "cpu", torch.float32)].eager_s == pytest.approx(1.5)
    it.select("k", x, x.numel())(x)
    stats = it.stats[("k", "cpu", torch.float32)]
    assert policy == ["_double"] and stats.compiled and stats.eager_calls == 3 and stats.compile_s == pytest.approx(0.5)
    assert _compile.expected_compile_seconds() == pytest.approx(0.5)  # the measured compile replaces the constant
    summary = _compile.compile_stats()
    assert summary["compiles"] >= 1 and {"iteration": "double", "key": repr(("k", "cpu", torch.float32)),
                                         "eager_calls": 3, "eager_s": 1.5, "compiled": True,
                                         "compile_s": 0.5} in summary["keys"]
    it.select("k", x, x.numel())(x)
    assert policy == ["_double"]  # once per key


def test_small_cpu_problems_and_never_stay_eager(policy, monkeypatch):
    monkeypatch.setattr(_compile, "COMPILE_COST_S", 0.0)
    it = FusedIteration(_double)
    small = torch.ones(2, 8, 8)
    for _ in range(3):
        it.select("small", small, small.numel())(small)
    _compile.set_compile("never")
    large = torch.ones(1, 1 << 18)
    assert it.select("large", large, large.numel()) is it.fn
    assert policy == []


def test_the_second_long_decode_inside_eager_does_not_compile(policy, monkeypatch):
    """Issue 25: decoding a long video twice under ``auto`` compiled at the second call (a 161 s stall).  Here a
    compile costs nothing and any problem counts as large, so outside ``eager()`` the second decode compiles;
    inside it neither decode does, and the plans are the eager ones."""
    monkeypatch.setattr(_compile, "COMPILE_COST_S", 0.0)
    monkeypatch.setattr(_compile, "CPU_MIN_ELEMENTS", 0)
    cost = torch.rand(1, 40, 5, generator=torch.Generator().manual_seed(0))
    _compile.set_compile("never")
    reference = asot(cost)
    _compile.set_compile("auto")
    with vot.eager():
        plans = [asot(cost), asot(cost)]
    assert policy == []
    torch.testing.assert_close(plans[0], reference, rtol=0, atol=0)
    torch.testing.assert_close(plans[1], reference, rtol=0, atol=0)
    asot(cost)
    asot(cost)
    assert "_mirror_step" in policy  # the same decodes outside eager(): compiled at the second


def test_always_still_obeys_eager(policy):
    _compile.set_compile("always")
    it = FusedIteration(_double)
    x = torch.ones(3)
    with vot.eager():
        it.select("k", x, x.numel())(x)
    assert policy == []
    it.select("k", x, x.numel())(x)
    assert policy == ["_double"]


@pytest.mark.parametrize("broken", ["compile", "dynamo_config"])
def test_a_failing_compile_gives_the_eager_plans_and_one_warning(broken, monkeypatch, caplog):
    def fail(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    old = _compile.set_compile("never")
    try:
        g = torch.Generator().manual_seed(1)
        costs = [torch.rand(2, 30, 4, generator=g), torch.rand(3, 20, 20, generator=g)]
        reference = (asot(costs[0]), vot.align_fgw(costs[1], eps=0.07, alpha=0.3, radius=0.1))
        monkeypatch.setattr(torch, "compile", fail)
        if broken == "dynamo_config":  # a torch without dynamo's config name: the patch itself raises
            monkeypatch.setattr(_compile, "_LIMIT_NAME", "no_such_limit")
            monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)
        monkeypatch.setattr(_compile, "_broken", False)
        _compile.set_compile("always")
        with caplog.at_level(logging.WARNING, logger="vasot_dist.ot"):
            plans = (asot(costs[0]), vot.align_fgw(costs[1], eps=0.07, alpha=0.3, radius=0.1))
            again = asot(costs[0])
    finally:
        _compile.set_compile(old)
    for plan, ref in zip((*plans, again), (*reference, reference[0])):
        torch.testing.assert_close(plan, ref, rtol=0, atol=0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and ("RuntimeError: no C++ compiler" if broken == "compile" else "no_such_limit") in \
        warnings[0], warnings
    assert "every solver iteration runs eagerly from now on" in warnings[0]
