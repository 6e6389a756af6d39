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
from typing import Any

import torch
from torch import Tensor

from ._common import (
    check_alpha,
    check_cost,
    check_count,
    check_finite,
    check_mask,
    check_nonnegative,
    check_positive,
    check_tol,
    check_unit_open_closed,
    full_precision,
    log_uniform_marginal,
    neg_inf_where,
    plogp_minus_p,
    safe_exp,
)
from .partial import partial_dual_ascent
from .priors import apply_spectrum, laplace_spectrum, prepare_pair_cost
from .priors import temporal_prior as _temporal_prior


class SquareLossProduct:
    """``T -> L(x) T`` for the square loss with Laplace kernels, t: (B, N, M) (zero at masked entries).

    scale_x, scale_y: (B,) kernel scales in index units (``n * radius``).  The call returns
    (B, N, M) ``(C1*C1)(T1) 1^T + 1 ((C2*C2)(T^T 1))^T - 2 C1 T C2``; the four kernel spectra
    are computed once here, so an iteration costs two batched FFT convolutions of T.
    """

    def __init__(self, scale_x: Tensor, scale_y: Tensor, n: int, m: int, dtype: torch.dtype):
        self.c1 = laplace_spectrum(scale_x, n, dtype)
        self.c1_sq = laplace_spectrum(scale_x / 2, n, dtype)  # C1 * C1 (elementwise) = half scale
        self.c2 = laplace_spectrum(scale_y, m, dtype)
        self.c2_sq = laplace_spectrum(scale_y / 2, m, dtype)

    def __call__(self, t: Tensor) -> Tensor:
        row = apply_spectrum(t.sum(dim=2, keepdim=True), self.c1_sq, dim=1)
        col = apply_spectrum(t.sum(dim=1, keepdim=True), self.c2_sq, dim=2)
        cross = apply_spectrum(apply_spectrum(t, self.c1, dim=1), self.c2, dim=2)
        return row + col - 2.0 * cross


def square_loss_product(t: Tensor, scale_x: Tensor, scale_y: Tensor) -> Tensor:
    """One-shot ``L(x) T`` (see ``SquareLossProduct``); t: (B, N, M), scales (B,)."""
    return SquareLossProduct(scale_x, scale_y, t.shape[1], t.shape[2], t.dtype)(t)


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


class _GwTerm:
    """``T -> L(x) T`` on the real block (virtual row/column, if any, at index 0 excluded)."""

    def __init__(self, mask_x: Tensor, mask_y: Tensor, radius: float, dtype: torch.dtype, virtual: bool):
        self.virtual = virtual
        off = 1 if virtual else 0
        mx, my = mask_x[:, off:], mask_y[:, off:]
        self.product = SquareLossProduct(_scales(mx, radius, dtype), _scales(my, radius, dtype), mx.shape[1], my.shape[1], dtype)

    def __call__(self, t: Tensor) -> Tensor:
        if not self.virtual:
            return self.product(t)
        return torch.nn.functional.pad(self.product(t[:, 1:, 1:]), (1, 0, 1, 0))


def partial_fgw_objective(
    plan: Tensor,
    cost: Tensor,
    mask_x: Tensor | None = None,
    mask_y: Tensor | None = None,
    *,
    alpha: float,
    radius: float,
    eps: float = 0.0,
    temporal_prior: float = 0.0,
) -> Tensor:
    """``(1-alpha)<C_hat,T> + alpha sum (C1_ik - C2_jl)^2 T_ij T_kl + eps sum T log T`` per problem (B,).

    plan: (B, N, M) on the solver scale (total mass = ``mass``); cost without the temporal prior.
    ``eps = 0`` gives the unregularised objective (POT's ``partial_fused_gromov_wasserstein``).
    """
    alpha = check_alpha(alpha)
    radius = check_unit_open_closed(radius, "radius")
    eps = check_nonnegative(eps, "eps")
    rho = check_finite(temporal_prior, "temporal_prior")
    cost = check_cost(cost)
    bsz, n, m = cost.shape
    if not isinstance(plan, Tensor) or plan.shape != cost.shape:
        raise ValueError(f"plan must have the cost's shape {tuple(cost.shape)}")
    mask_x = check_mask(mask_x, bsz, n, cost.device, "mask_x")
    mask_y = check_mask(mask_y, bsz, m, cost.device, "mask_y")
    if rho != 0.0:
        cost = cost + rho * _temporal_prior(bsz, n, m, mask_x, mask_y, device=cost.device, dtype=cost.dtype)
    t = plan.to(cost.dtype) * (mask_x.unsqueeze(2) & mask_y.unsqueeze(1)).to(cost.dtype)
    gw = _GwTerm(mask_x, mask_y, radius, cost.dtype, virtual=False)(t) if alpha > 0 else None
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
    temporal_prior: float = 0.0,
    virtual_cost: float | None = None,
    n_iters: int = 20,
    inner_iters: int = 100,
    inner_tol: float | None = None,
    return_log: bool = False,
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
    eps = check_positive(eps, "eps")
    mass = check_unit_open_closed(mass, "mass")
    alpha = check_alpha(alpha)
    radius = check_unit_open_closed(radius, "radius")
    rho = check_finite(temporal_prior, "temporal_prior")
    n_iters = check_count(n_iters, "n_iters")
    inner_iters = check_count(inner_iters, "inner_iters")
    inner_tol = check_tol(inner_tol)
    if virtual_cost is not None:
        virtual_cost = check_finite(virtual_cost, "virtual_cost")
    with full_precision(cost):
        cost = check_cost(cost)
        bsz, n, m = cost.shape
        mask_x = check_mask(mask_x, bsz, n, cost.device, "mask_x")
        mask_y = check_mask(mask_y, bsz, m, cost.device, "mask_y")
        virtual = virtual_cost is not None
        cost, mask_x, mask_y = prepare_pair_cost(cost, mask_x, mask_y, rho=rho, virtual_cost=virtual_cost)
        valid = mask_x.unsqueeze(2) & mask_y.unsqueeze(1)
        cost = torch.where(valid, cost, 0.0)
        log_p = log_uniform_marginal(mask_x, cost.dtype)
        log_q = log_uniform_marginal(mask_y, cost.dtype)
        log_mass = torch.full((bsz, 1), math.log(mass), dtype=cost.dtype, device=cost.device)
        gw_term = _GwTerm(mask_x, mask_y, radius, cost.dtype, virtual) if alpha > 0 else None

        log_t = neg_inf_where(valid, log_p.unsqueeze(2) + log_q.unsqueeze(1) + math.log(mass))
        t = safe_exp(log_t)
        duals: tuple[Tensor, Tensor] | None = None
        objectives: list[Tensor] = []
        for it in range(n_iters):
            gw = gw_term(t) if gw_term is not None else None
            if return_log and it > 0:
                objectives.append(_objective(t, log_t, cost, gw, alpha, eps))
            grad = (1.0 - alpha) * cost if gw is None else (1.0 - alpha) * cost + 2.0 * alpha * gw
            log_k = neg_inf_where(valid, -grad / eps)
            log_t, duals, _, _ = partial_dual_ascent(log_k, log_p, log_q, log_mass, inner_iters, inner_tol, duals)
            log_t = neg_inf_where(valid, log_t)
            t = safe_exp(log_t)
        log: dict[str, Any] | None = None
        if return_log:
            gw = gw_term(t) if gw_term is not None else None
            objectives.append(_objective(t, log_t, cost, gw, alpha, eps))
            log = {"objective": torch.stack(objectives, dim=1), "n_iters": n_iters}
        plan = t * mask_x.sum(dim=1).to(t.dtype).view(-1, 1, 1)
        if virtual:
            plan = plan[:, 1:, 1:]
    return (plan, log) if return_log else plan
