"""Each public solver called as a POT user would: the problem and its regularisation only, every other setting
from ``vasot_dist/ot/settings.py``; the plan is checked against POT or against a property of the problem."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import warnings

import numpy as np
import ot
import pytest
import torch
from ot_dense import to_np
from solver_args import ASOT, VAOT

import vasot_dist.ot as vot
from vasot_dist.config.methods import AlignSolve, PartialAlignSolve, SegmentSolve
from vasot_dist.ot import settings


def _cost(b, n, m, seed, dtype=torch.float64):
    return torch.rand(b, n, m, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_sinkhorn_defaults_give_pots_plan():
    cost = _cost(2, 12, 9, seed=0)
    plan = vot.sinkhorn(cost, eps=0.1)
    for i in range(2):
        ref = ot.sinkhorn(np.full(12, 1 / 12), np.full(9, 1 / 9), to_np(cost[i]), reg=0.1)
        np.testing.assert_allclose(to_np(plan[i]), ref, atol=1e-7)


def test_sinkhorn_unbalanced_defaults_give_pots_plan():
    cost = _cost(2, 10, 7, seed=1)
    plan = vot.sinkhorn_unbalanced(cost, eps=0.1, reg_m=0.5)
    for i in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = ot.unbalanced.sinkhorn_unbalanced(np.full(10, 0.1), np.full(7, 1 / 7), to_np(cost[i]), reg=0.1,
                                                    reg_m=0.5, reg_type="entropy")
        np.testing.assert_allclose(to_np(plan[i]), ref, atol=1e-5)


def test_partial_wasserstein_defaults_give_pots_plan():
    cost = _cost(2, 10, 8, seed=2)
    plan = vot.partial_wasserstein(cost, mass=0.6, eps=0.05)
    for i in range(2):
        ref = ot.partial.entropic_partial_wasserstein(np.full(10, 0.1), np.full(8, 1 / 8), to_np(cost[i]), reg=0.05,
                                                      m=0.6)
        np.testing.assert_allclose(to_np(plan[i]), ref, atol=1e-5)


def test_segment_asot_defaults_are_the_authors_signature_and_rows_hold():
    cost = _cost(2, 40, 5, seed=3)
    plan = vot.segment_asot(cost, eps=0.07, alpha=0.3, radius=0.1)
    torch.testing.assert_close(plan.sum(2), torch.ones(2, 40, dtype=torch.float64))  # frames hard-constrained
    assert plan.sum(1).std() > 0  # actions KL-relaxed: their mass is not forced to N / K
    torch.testing.assert_close(plan, vot.segment_asot(cost, **{**ASOT, "radius": 0.1}), rtol=0, atol=0)
    # with alpha = 0 the solve is semi-relaxed entropic OT: POT's unbalanced Sinkhorn with reg_m = (inf, lambda)
    flat = vot.segment_asot(cost, eps=0.07, alpha=0.0, radius=0.1, n_iters=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ot.unbalanced.sinkhorn_unbalanced(np.full(40, 1 / 40), np.full(5, 0.2), to_np(cost[0]), reg=0.07,
                                                reg_m=(float("inf"), settings.SEGMENT.lambda_actions),
                                                reg_type="entropy", numItermax=5000, stopThr=1e-12)
    np.testing.assert_allclose(to_np(flat[0]) / 40, ref, atol=2e-4)


def test_align_fgw_defaults_are_vaots_balanced_setting_and_columns_hold():
    cost = _cost(2, 30, 20, seed=4)
    plan = vot.align_fgw(cost, eps=0.07, alpha=0.3, radius=0.1)
    torch.testing.assert_close(plan.sum(1), torch.full((2, 20), 30 / 20, dtype=torch.float64))
    torch.testing.assert_close(plan, vot.align_fgw(cost, **{**VAOT, "radius": 0.1}), rtol=0, atol=0)


def test_align_partial_fgw_defaults_move_the_mass_within_the_marginals():
    cost = _cost(2, 30, 20, seed=5)
    plan = vot.align_partial_fgw(cost, mass=0.7, eps=0.07, alpha=0.3, radius=0.1)
    torch.testing.assert_close(plan.sum((1, 2)), torch.full((2,), 30 * 0.7, dtype=torch.float64), rtol=1e-3, atol=0)
    assert (plan.sum(2) <= 1 + 1e-6).all() and (plan.sum(1) <= 30 / 20 + 1e-6).all()


def test_the_objectives_take_the_solvers_defaults():
    cost = _cost(1, 40, 5, seed=6)
    plan, log = vot.segment_asot(cost, eps=0.07, alpha=0.3, radius=0.1, return_log=True)
    value = vot.asot_objective(plan / 40, cost, eps=0.07, alpha=0.3, radius=0.1)
    torch.testing.assert_close(value, log["objective"][:, -1])
    pair = _cost(1, 20, 15, seed=7)
    plan, log = vot.align_fgw(pair, eps=0.07, alpha=0.3, radius=0.1, return_log=True)
    torch.testing.assert_close(vot.align_fgw_objective(plan / 20, pair, eps=0.07, alpha=0.3, radius=0.1),
                               log["objective"][:, -1])
    plan, log = vot.align_partial_fgw(pair, mass=0.7, eps=0.07, alpha=0.3, radius=0.1, return_log=True)
    torch.testing.assert_close(vot.partial_fgw_objective(plan / 20, pair, eps=0.07, alpha=0.3, radius=0.1),
                               log["objective"][:, -1])


def test_the_methods_settings_build_on_the_solver_defaults():
    """Every field of a method's solve that the solver defaults is either the solver's value or one of the
    published values the config names (ASOT's run-script lambda and temporal prior, VAOT/REALIGN's rho and zeta)."""
    differs = {SegmentSolve: {"lambda_actions": 0.1, "temporal_prior": 0.2},
               AlignSolve: {"temporal_prior": 0.35, "virtual_cost": 0.5},
               PartialAlignSolve: {"temporal_prior": 0.35, "virtual_cost": 0.5}}
    for cls, defaults in ((SegmentSolve, settings.SEGMENT), (AlignSolve, settings.ALIGN),
                          (PartialAlignSolve, settings.PARTIAL_ALIGN)):
        for key, value in dataclasses.asdict(defaults).items():
            assert getattr(cls(), key) == differs[cls].get(key, value), (cls.__name__, key)


def test_the_config_reads_the_defaults_without_torch():
    code = "import sys, vasot_dist.config, vasot_dist.ot.settings; assert 'torch' not in sys.modules, 'torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", vot.__all__)
def test_every_public_name_resolves(name):
    assert callable(getattr(vot, name))
