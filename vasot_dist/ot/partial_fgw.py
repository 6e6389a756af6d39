"""REALIGN: regularised fused *partial* Gromov-Wasserstein between two videos (our solver design).

Objective (square loss, exactly POT's ``partial_fused_gromov_wasserstein`` objective plus entropy):

    F_eps(T) = (1 - alpha) <C_hat, T> + alpha sum_{ijkl} (C1_ik - C2_jl)^2 T_ij T_kl + eps sum T log T
    s.t.  T 1 <= p,  T^T 1 <= q,  1^T T 1 = mass,

with Laplace structure kernels ``C1_ik = exp(-|i/N - k/N| / radius)`` (N valid frames of x; same for
C2 on y), which are PSD.  The GW term uses ``L(x) T = (C1*C1)(T1) 1^T + 1 ((C2*C2)(T^T 1))^T - 2 C1 T C2``;
``C*C`` is again a Laplace kernel (half the scale), and every kernel product is an FFT convolution
along time (``priors.laplace_kernel_apply``): no N x N matrix.

Solver: entropic mirror descent with step 1/eps (the proximal-point/PGD scheme of Peyre et al.
2016 used by POT's entropic GW solvers): ``T_{k+1} = argmin_{T in partial polytope} <grad F_0(T_k), T>
+ eps sum T log T``, ``grad F_0 = (1 - alpha) C_hat + 2 alpha L(x) T``, each step an entropic partial
OT solved by log-domain Bregman projections (``partial.partial_dual_ascent``), warm-started from
the previous step's dual variables.  Fixed points are the stationary points of ``F_eps``.

Virtual frame (``virtual_cost`` = zeta): a row and a column of cost zeta prepended at index 0 with
the uniform mass of a real frame; it acts as a sink and takes *no* part in the GW term (the
structure kernels cover real frames only).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ._common import (
    check_cost,
    check_count,
    check_fgw_settings,
    check_finite_cost,
    check_mask,
    check_tol,
    check_unit_open_closed,
    full_precision,
    log_uniform_marginal,
    neg_inf_where,
    pair_mask,
    plogp_minus_p,
    safe_exp,
)
from ._compile import FusedIteration
from .partial import partial_dual_ascent
from .priors import LaplaceKernel, apply_laplace, laplace_kernel, prepare_pair_cost
from .priors import temporal_prior as _temporal_prior
from .settings import PARTIAL_ALIGN


class SquareLoss(NamedTuple):
    """The four Laplace kernels of ``L(x) T`` (``priors.laplace_kernel``), prepared once per solve."""

    c1: LaplaceKernel
    c1_sq: LaplaceKernel  # C1 * C1 (elementwise) = the Laplace kernel of half the scale
    c2: LaplaceKernel
    c2_sq: LaplaceKernel


def square_loss(scale_x: Tensor, scale_y: Tensor, n: int, m: int, dtype: torch.dtype) -> SquareLoss:
    """Kernels for :func:`apply_square_loss`; scale_x, scale_y: (B,) scales in index units (``n * radius``)."""
    return SquareLoss(
        laplace_kernel(scale_x, n, 1, dtype), laplace_kernel(scale_x / 2, n, 1, dtype),
        laplace_kernel(scale_y, m, 2, dtype), laplace_kernel(scale_y / 2, m, 2, dtype),
    )  # fmt: skip


def apply_square_loss(t: Tensor, loss: SquareLoss) -> Tensor:
    """``L(x) T = (C1*C1)(T1) 1^T + 1 ((C2*C2)(T^T 1))^T - 2 C1 T C2`` for t: (B, N, M) (zero at masked entries)."""
    row = apply_laplace(t.sum(dim=2, keepdim=True), loss.c1_sq)
    col = apply_laplace(t.sum(dim=1, keepdim=True), loss.c2_sq)
    return row + col - 2.0 * apply_laplace(apply_laplace(t, loss.c1), loss.c2)


def square_loss_product(t: Tensor, scale_x: Tensor, scale_y: Tensor) -> Tensor:
    """One-shot ``L(x) T`` (see :func:`apply_square_loss`); t: (B, N, M), scales (B,)."""
    return apply_square_loss(t, square_loss(scale_x, scale_y, t.shape[1], t.shape[2], t.dtype))


def _scales(mask: Tensor, radius: float, dtype: torch.dtype) -> Tensor:
    return mask.sum(dim=1).clamp(min=1).to(dtype) * radius


def _objective(t: Tensor, log_t: Tensor, cost: Tensor, gw: Tensor | None, alpha: float, eps: float) -> Tensor:
    live = t > 0
    zero = torch.zeros_like(t)
    obj = (1.0 - alpha) * torch.where(live, cost * t, zero).sum(dim=(1, 2))
    if gw is not None:
        obj = obj + alpha * torch.where(live, gw * t, zero).sum(dim=(1, 2))
    if eps > 0:
        obj = obj + eps * (plogp_minus_p(t, log_t) + t).sum(dim=(1, 2))
    return obj


def _gw_real(mask_x: Tensor, mask_y: Tensor, radius: float, dtype: torch.dtype, virtual: bool) -> SquareLoss:
    """The square loss of the real block (a virtual row/column at index 0, if any, takes no part in GW)."""
    off = 1 if virtual else 0
    mx, my = mask_x[:, off:], mask_y[:, off:]
    return square_loss(_scales(mx, radius, dtype), _scales(my, radius, dtype), mx.shape[1], my.shape[1], dtype)


def _gw(t: Tensor, loss: SquareLoss, virtual: bool) -> Tensor:
    """``L(x) T`` of the real block, zero on the virtual row and column."""
    if not virtual:
        return apply_square_loss(t, loss)
    return torch.nn.functional.pad(apply_square_loss(t[:, 1:, 1:], loss), (1, 0, 1, 0))


def _log_kernel(t: Tensor, lin_cost: Tensor, mask_x: Tensor, mask_y: Tensor, loss: SquareLoss | None, alpha: float,
                eps: float, virtual: bool) -> Tensor:
    """The next step's kernel ``-((1 - alpha) C_hat + 2 alpha L(x) T) / eps`` (-inf where masked), one pass."""
    grad = lin_cost if loss is None else lin_cost + (2.0 * alpha) * _gw(t, loss, virtual)
    return torch.where(mask_x.unsqueeze(2) & mask_y.unsqueeze(1), grad / -eps, -torch.inf)


LOG_KERNEL = FusedIteration(_log_kernel)


def partial_fgw_objective(
    plan: Tensor,
    cost: Tensor,
    mask_x: Tensor | None = None,
    mask_y: Tensor | None = None,
    *,
    alpha: float,
    radius: float,
    eps: float,
    temporal_prior: float = PARTIAL_ALIGN.temporal_prior,
) -> Tensor:
    """``(1-alpha)<C_hat,T> + alpha sum (C1_ik - C2_jl)^2 T_ij T_kl + eps sum T log T`` per problem (B,).

    plan: (B, N, M) on the solver scale (total mass = ``mass``); cost without the temporal prior.
    ``eps = 0`` gives the unregularised objective (POT's ``partial_fused_gromov_wasserstein``).
    """
    eps, alpha, radius, rho, _ = check_fgw_settings(eps, alpha, radius, temporal_prior, eps_may_be_zero=True)
    cost = check_cost(cost)
    bsz, n, m = cost.shape
    if not isinstance(plan, Tensor) or plan.shape != cost.shape:
        raise ValueError(f"plan must have the cost's shape {tuple(cost.shape)}")
    mask_x = check_mask(mask_x, bsz, n, cost.device, "mask_x")
    mask_y = check_mask(mask_y, bsz, m, cost.device, "mask_y")
    if rho != 0.0:
        cost = cost + rho * _temporal_prior(bsz, n, m, mask_x, mask_y, device=cost.device, dtype=cost.dtype)
    t = plan.to(cost.dtype) * (mask_x.unsqueeze(2) & mask_y.unsqueeze(1)).to(cost.dtype)
    gw = _gw(t, _gw_real(mask_x, mask_y, radius, cost.dtype, False), False) if alpha > 0 else None
    return _objective(t, torch.log(t), cost, gw, alpha, eps)


def align_partial_fgw(
    cost: Tensor,
    mask_x: Tensor | None = None,
    mask_y: Tensor | None = None,
    *,
    mass: float,
    eps: float,
    alpha: float,
    radius: float,
    temporal_prior: float = PARTIAL_ALIGN.temporal_prior,
    virtual_cost: float | None = PARTIAL_ALIGN.virtual_cost,
    n_iters: int = PARTIAL_ALIGN.n_iters,
    inner_iters: int = PARTIAL_ALIGN.inner_iters,
    inner_tol: float | None = None,
    return_log: bool = False,
    validate: bool | None = None,
) -> Tensor | tuple[Tensor, dict[str, Any]]:
    """REALIGN fused partial GW alignment of frames of x to frames of y (module docstring).

    cost: (B, N, M); mask_x: (B, N), mask_y: (B, M).  ``mass`` in (0, 1] is the transported mass
    (of the augmented problem when ``virtual_cost`` is set), marginals ``p = 1/n``, ``q = 1/m``
    (``n + 1``, ``m + 1`` with a virtual frame) are upper bounds.  ``temporal_prior`` = rho adds
    ``rho |i/N - j/M|`` on real frames.  ``n_iters`` outer steps, ``inner_iters`` projection sweeps
    per step (``inner_tol`` adds an early stop that synchronises every 10 sweeps).

    Returns the plan (B, N, M) scaled by the valid rows of x (counting a virtual frame): a real
    row sums to the fraction of that frame which is transported to real frames of y.  With
    ``return_log`` also ``{'objective': (B, n_iters) F_eps(T_k) on the solver scale, 'n_iters'}``.
    """
    eps, alpha, radius, rho, virtual_cost = check_fgw_settings(eps, alpha, radius, temporal_prior, virtual_cost)
    mass = check_unit_open_closed(mass, "mass")
    n_iters = check_count(n_iters, "n_iters")
    inner_iters = check_count(inner_iters, "inner_iters")
    inner_tol = check_tol(inner_tol)
    with full_precision(cost):
        cost = check_cost(cost)
        bsz, n, m = cost.shape
        mask_x = None if mask_x is None else check_mask(mask_x, bsz, n, cost.device, "mask_x")
        mask_y = None if mask_y is None else check_mask(mask_y, bsz, m, cost.device, "mask_y")
        check_finite_cost(cost, pair_mask(mask_x, mask_y), validate=validate)
        virtual = virtual_cost is not None
        cost, mask_x, mask_y = prepare_pair_cost(cost, mask_x, mask_y, rho=rho, virtual_cost=virtual_cost)
        valid = mask_x.unsqueeze(2) & mask_y.unsqueeze(1)
        cost = torch.where(valid, cost, 0.0)
        lin_cost = (1.0 - alpha) * cost
        log_p = log_uniform_marginal(mask_x, cost.dtype)
        log_q = log_uniform_marginal(mask_y, cost.dtype)
        log_mass = torch.full((bsz, 1), math.log(mass), dtype=cost.dtype, device=cost.device)
        loss = _gw_real(mask_x, mask_y, radius, cost.dtype, virtual) if alpha > 0 else None
        log_kernel = LOG_KERNEL.select((tuple(cost.shape), alpha, eps, virtual), cost, cost.numel())

        t = safe_exp(neg_inf_where(valid, log_p.unsqueeze(2) + log_q.unsqueeze(1) + math.log(mass)))
        duals: tuple[Tensor, Tensor] | None = None
        objectives: list[Tensor] = []

        def objective(t_: Tensor) -> Tensor:
            return _objective(t_, torch.log(t_), cost, None if loss is None else _gw(t_, loss, virtual), alpha, eps)

        for it in range(n_iters):
            if return_log and it > 0:
                objectives.append(objective(t))
            log_k = log_kernel(t, lin_cost, mask_x, mask_y, loss, alpha, eps, virtual)
            t, duals, _, _ = partial_dual_ascent(log_k, log_p, log_q, log_mass, inner_iters, inner_tol, duals)
        log: dict[str, Any] | None = None
        if return_log:
            objectives.append(objective(t))
            log = {"objective": torch.stack(objectives, dim=1), "n_iters": n_iters}
        plan = t * mask_x.sum(dim=1).to(t.dtype).view(-1, 1, 1)
        if virtual:
            plan = plan[:, 1:, 1:]
    return (plan, log) if return_log else plan
