"""The solvers' default settings, in one place (torch-free: the config package reads them without torch).

A caller gives the problem (cost, masks or marginals) and its regularisation (``eps``, and ``alpha``,
``radius`` for the fused-GW solvers, ``mass`` for partial OT, ``reg_m`` for unbalanced Sinkhorn); everything
else has the default below, which is the solver's keyword default.  The values are those of the code each
solver reproduces: ASOT's ``segment_asot`` signature (mingu6/action_seg_ot ``src/asot.py``), VAOT's published
balanced setting, POT's ``numItermax`` / ``stopThr`` for the Sinkhorn-type solvers.  A method whose published
training value differs (ASOT's run scripts use ``lambda_actions`` 0.1 and a temporal prior) says so in its
settings (``vasot_dist/config/methods.py``), which take every other value from here.

| solver | default | value | why |
| --- | --- | --- | --- |
| ``segment_asot`` | ``lambda_frames`` | 0.1 | ASOT's signature (used only with ``unbalanced_frames``) |
| | ``lambda_actions`` | 0.05 | ASOT's signature |
| | ``unbalanced_frames`` / ``unbalanced_actions`` | False / True | frames hard-constrained, actions KL-relaxed |
| | ``temporal_prior`` | 0.0 | no ``rho R`` term: the cost as given |
| | ``n_iters`` / ``inner_iters`` | 25 / 1 | mirror-descent steps as coded, not to convergence |
| ``align_fgw`` | ``lambda_x`` / ``lambda_y`` | 0.05 / 0.05 | used only with the unbalanced flags |
| | ``unbalanced_x`` / ``unbalanced_y`` | False / False | balanced, VAOT's published setting |
| | ``temporal_prior`` / ``virtual_cost`` | 0.0 / None | no prior, no virtual frame |
| | ``n_iters`` / ``inner_iters`` | 25 / 1 | as VAOT's code |
| ``align_partial_fgw`` | ``temporal_prior`` / ``virtual_cost`` | 0.0 / None | no prior, no virtual frame |
| | ``n_iters`` / ``inner_iters`` | 20 / 20 | 20 warm-started sweeps reach the 100-sweep plan at eps 0.07, mass 0.8 |
| ``sinkhorn`` | ``n_iters`` / ``tol`` | 1000 / 1e-9 | POT's ``ot.sinkhorn`` |
| ``sinkhorn_unbalanced`` | ``n_iters`` / ``tol`` | 1000 / 1e-6 | POT's ``ot.unbalanced.sinkhorn_unbalanced`` |
| ``partial_wasserstein`` | ``n_iters`` / ``tol`` | 1000 / None | POT's ``entropic_partial_wasserstein`` (its 1e-100 never stops) |
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SegmentDefaults:
    """``segment_asot`` / ``asot_objective`` (module table)."""

    lambda_frames: float = 0.1
    lambda_actions: float = 0.05
    unbalanced_frames: bool = False
    unbalanced_actions: bool = True
    temporal_prior: float = 0.0
    n_iters: int = 25
    inner_iters: int = 1


@dataclass(frozen=True)
class AlignDefaults:
    """``align_fgw`` / ``align_fgw_objective`` (module table)."""

    lambda_x: float = 0.05
    lambda_y: float = 0.05
    unbalanced_x: bool = False
    unbalanced_y: bool = False
    temporal_prior: float = 0.0
    virtual_cost: float | None = None
    n_iters: int = 25
    inner_iters: int = 1


@dataclass(frozen=True)
class PartialAlignDefaults:
    """``align_partial_fgw`` / ``partial_fgw_objective`` (module table)."""

    temporal_prior: float = 0.0
    virtual_cost: float | None = None
    n_iters: int = 20
    inner_iters: int = 20


@dataclass(frozen=True)
class Iterations:
    """The stopping rule of a Sinkhorn-type solver: at most ``n_iters``, or earlier once the error is below
    ``tol`` (checked every 10 iterations, a host read; None: never checked)."""

    n_iters: int
    tol: float | None


SEGMENT = SegmentDefaults()
ALIGN = AlignDefaults()
PARTIAL_ALIGN = PartialAlignDefaults()
SINKHORN = Iterations(n_iters=1000, tol=1e-9)
SINKHORN_UNBALANCED = Iterations(n_iters=1000, tol=1e-6)
PARTIAL = Iterations(n_iters=1000, tol=None)
