"""Batched structured optimal-transport solvers (torch only).

Every solver takes a batched cost ``(B, N, M)`` with optional boolean masks ``(B, N)`` / ``(B, M)``,
solves in float32 (float64 inputs stay float64) with autocast disabled, has no Python loop over the
batch, never builds an N x N prior matrix, and returns the coupling ``(B, N, M)`` -- plus a log
with the objective per iteration when ``return_log=True``.  Formulations and the project's settings:
``docs/methods.md`` (one section per method); the papers and POT functions each solver matches are named in
its docstring.  Every method setting (eps, alpha, radius, lambdas, temporal prior, mass, iteration counts...)
is a required keyword, as ``reg`` is in POT: the values live once, in the methods' settings.

Speed: each solver iteration is one function, run compiled by inductor when a shape recurs (a training
loop) and eagerly otherwise (``_compile.FusedIteration``; ``VASOT_OT_COMPILE`` / :func:`set_compile`).
Non-finite costs raise ValueError naming the batch index (``validate=None``, the default: CPU tensors;
``True``: any tensor, at the price of a device read; ``False``: unchecked, as the training losses call them,
relying on the trainer's non-finite step guard).
"""

from ._compile import compile_mode, set_compile
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
    "compile_mode",
    "laplace_kernel_apply",
    "mult_ca",
    "mult_cv",
    "mult_cy",
    "partial_fgw_objective",
    "partial_wasserstein",
    "segment_asot",
    "set_compile",
    "sinkhorn",
    "sinkhorn_unbalanced",
    "sliced_wasserstein",
    "temporal_prior",
]
