"""The settings the OT tests solve with, in one place, written out although ASOT's and VAOT's equal the solvers'
defaults (``vasot_dist/ot/settings.py``; REALIGN's runs 100 sweeps, not 20): an expectation must not move when a
default does.

These are the values of the authors' released code (``segment_asot``'s signature in ASOT's ``src/asot.py``,
VAOT's published balanced setting), which the tests' expectations were written against; a test overrides
what it studies.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from vasot_dist.ot import align_fgw, align_partial_fgw, segment_asot

ASOT: dict[str, Any] = dict(
    eps=0.07, alpha=0.3, radius=0.04, lambda_frames=0.1, lambda_actions=0.05, unbalanced_frames=False,
    unbalanced_actions=True, temporal_prior=0.0, n_iters=25, inner_iters=1,
)  # fmt: skip
VAOT: dict[str, Any] = dict(
    eps=0.07, alpha=0.3, radius=0.02, lambda_x=0.05, lambda_y=0.05, unbalanced_x=False, unbalanced_y=False,
    temporal_prior=0.0, virtual_cost=None, n_iters=25, inner_iters=1,
)  # fmt: skip
SOLVE_ONLY = ("n_iters", "inner_iters", "virtual_cost")  # solver arguments that an objective does not take
REALIGN: dict[str, Any] = dict(temporal_prior=0.0, virtual_cost=None, n_iters=20, inner_iters=100)


def objective_args(settings: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """``settings`` overridden by ``kw``, without the solver-only arguments (for ``*_objective``)."""
    return {k: v for k, v in {**settings, **kw}.items() if k not in SOLVE_ONLY}


def asot(cost: Tensor, mask: Tensor | None = None, **kw: Any) -> Any:
    """``segment_asot`` with :data:`ASOT`, overridden by ``kw``."""
    return segment_asot(cost, mask, **{**ASOT, **kw})


def vaot(cost: Tensor, mask_x: Tensor | None = None, mask_y: Tensor | None = None, **kw: Any) -> Any:
    """``align_fgw`` with :data:`VAOT`, overridden by ``kw``."""
    return align_fgw(cost, mask_x, mask_y, **{**VAOT, **kw})


def realign(cost: Tensor, mask_x: Tensor | None = None, mask_y: Tensor | None = None, **kw: Any) -> Any:
    """``align_partial_fgw`` with :data:`REALIGN` (mass, eps, alpha and radius always from ``kw``)."""
    return align_partial_fgw(cost, mask_x, mask_y, **{**REALIGN, **kw})
