"""Batched structured optimal-transport solvers (torch only).

Every solver takes a batched cost ``(B, N, M)`` with optional boolean masks ``(B, N)`` / ``(B, M)``,
solves in float32 (float64 inputs stay float64) with autocast disabled, has no Python loop over the
batch, never builds an N x N prior matrix, and returns the coupling ``(B, N, M)`` -- plus a log
with the objective per iteration when ``return_log=True``.  Formulations: ``shared/METHODS.md``.
"""

from .fgw import align_fgw, segment_asot
from .objectives import align_fgw_objective, asot_objective
from .partial import partial_wasserstein
from .partial_fgw import align_partial_fgw, partial_fgw_objective
from .priors import (
    band_sum,
    band_width,
    laplace_kernel_apply,
    mult_ca,
    mult_cv,
    mult_cy,
    temporal_prior,
)
from .sinkhorn import sinkhorn, sinkhorn_unbalanced
from .sliced import circular_sw_cost, sliced_wasserstein

__all__ = [
    "align_fgw",
    "align_fgw_objective",
    "align_partial_fgw",
    "asot_objective",
    "band_sum",
    "band_width",
    "circular_sw_cost",
    "laplace_kernel_apply",
    "mult_ca",
    "mult_cv",
    "mult_cy",
    "partial_fgw_objective",
    "partial_wasserstein",
    "segment_asot",
    "sinkhorn",
    "sinkhorn_unbalanced",
    "sliced_wasserstein",
    "temporal_prior",
]
