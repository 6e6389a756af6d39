"""Batched structured optimal-transport solvers (torch only), callable alone as POT's are.

Every solver takes a batched cost ``(B, N, M)`` with optional boolean masks ``(B, N)`` / ``(B, M)``,
solves in float32 (float64 inputs stay float64) with autocast disabled, has no Python loop over the
batch, never builds an N x N prior matrix, and returns the coupling ``(B, N, M)`` -- plus a log
with the objective per iteration when ``return_log=True``.  A caller gives the problem and its
regularisation (``eps``; ``alpha`` and ``radius`` for the fused-GW solvers; ``mass`` for partial OT;
``reg_m`` for unbalanced Sinkhorn), as ``reg`` in POT; iteration counts, tolerances, unbalanced flags and
weights, the temporal prior and the virtual frame have defaults, all in :mod:`vasot_dist.ot.settings`
(the methods' settings build on them).  User guide with runnable examples: ``docs/ot.md``; formulations:
``docs/methods.md``; the papers and POT functions each solver matches are named in its docstring.

Speed: each solver iteration is one function, run eagerly or compiled by inductor once the eager time spent
on a shape has paid for a compile (``_compile``: the payback rule, :func:`set_compile`, :func:`eager` for
evaluation paths, :func:`compile_stats`).  Non-finite costs raise ValueError naming the batch index
(``validate=None``, the default: CPU tensors; ``True``: any tensor, at the price of a device read; ``False``:
unchecked, as the training losses call them, relying on the trainer's non-finite step guard).

The package imports its submodules on first use (``__getattr__``): ``vasot_dist.ot.settings`` is read by the
config package without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the submodule that defines it
_EXPORTS = {
    "compile_mode": "_compile", "compile_stats": "_compile", "eager": "_compile", "set_compile": "_compile",
    "align_fgw": "fgw", "segment_asot": "fgw",
    "align_fgw_objective": "objectives", "asot_objective": "objectives",
    "partial_wasserstein": "partial",
    "align_partial_fgw": "partial_fgw", "partial_fgw_objective": "partial_fgw",
    "band_sum": "priors", "band_width": "priors", "laplace_kernel_apply": "priors", "mult_ca": "priors",
    "mult_cv": "priors", "mult_cy": "priors", "temporal_prior": "priors",
    "sinkhorn": "entropic", "sinkhorn_unbalanced": "entropic",
    "circular_sw_cost": "sliced", "sliced_wasserstein": "sliced",
}  # fmt: skip
__all__ = [
    "align_fgw",
    "align_fgw_objective",
    "align_partial_fgw",
    "asot_objective",
    "band_sum",
    "band_width",
    "circular_sw_cost",
    "compile_mode",
    "compile_stats",
    "eager",
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

if TYPE_CHECKING:
    from ._compile import compile_mode, compile_stats, eager, set_compile
    from .entropic import sinkhorn, sinkhorn_unbalanced
    from .fgw import align_fgw, segment_asot
    from .objectives import align_fgw_objective, asot_objective
    from .partial import partial_wasserstein
    from .partial_fgw import align_partial_fgw, partial_fgw_objective
    from .priors import band_sum, band_width, laplace_kernel_apply, mult_ca, mult_cv, mult_cy, temporal_prior
    from .sliced import circular_sw_cost, sliced_wasserstein


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vasot_dist.ot' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
