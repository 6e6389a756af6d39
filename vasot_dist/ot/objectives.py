"""Dense-free evaluation of the fused GW objectives that the solvers minimise (``docs/methods.md``, ASOT).

ASOT / VAOT (product loss, the objective whose KKT points the reference iteration finds):

    G(T) = (alpha/2) <Cx T Cy, T> + (1 - alpha) <C_hat, T>
           [+ lambda_x KL(T 1 | p)] [+ lambda_y KL(T^T 1 | q)] - eps H(T),

with ``H(T) = -sum T (log T - 1)``, ``KL(a|b) = sum a log(a/b)`` (no linear terms) and ``C_hat`` the
cost including ``rho R``.  ``T`` is the coupling on the solver's scale (total mass about 1, rows
summing to ``p = 1/n``), i.e. the solver's output divided by the number of valid frames.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._common import (
    check_cost,
    check_fgw_settings,
    check_mask,
    check_nonnegative,
    kl_div,
    log_uniform_marginal,
    plogp_minus_p,
)
from .priors import mult_ca, mult_cv, mult_cy
from .priors import temporal_prior as temporal_prior_matrix
from .settings import ALIGN, SEGMENT


def fgw_objective_from_products(
    plan: Tensor,
    log_plan: Tensor,
    cost: Tensor,
    gw: Tensor | None,
    *,
    eps: float,
    alpha: float,
    log_p: Tensor,
    log_q: Tensor,
    lambda_x: float,
    lambda_y: float,
    unbalanced_x: bool,
    unbalanced_y: bool,
) -> Tensor:
    """``G(T)`` per problem (B,) given ``gw = Cx T Cy`` (B, N, M) (None when alpha = 0).

    plan: (B, N, M) with zeros at masked entries; log_plan its log (``-inf`` at zeros).
    """
    live = plan > 0
    zero = torch.zeros_like(plan)
    obj = (1.0 - alpha) * torch.where(live, cost * plan, zero).sum(dim=(1, 2))
    if gw is not None and alpha > 0:
        obj = obj + 0.5 * alpha * torch.where(live, gw * plan, zero).sum(dim=(1, 2))
    obj = obj + eps * plogp_minus_p(plan, log_plan).sum(dim=(1, 2))
    if unbalanced_x:
        obj = obj + lambda_x * kl_div(plan.sum(dim=2), log_p, dim=1)
    if unbalanced_y:
        obj = obj + lambda_y * kl_div(plan.sum(dim=1), log_q, dim=1)
    return obj


def _objective(plan: Tensor, cost: Tensor, mask_x: Tensor | None, mask_y: Tensor | None, gw_product: Any, *,
               eps: float, alpha: float, radius: float, lambda_x: float, lambda_y: float, unbalanced_x: bool,
               unbalanced_y: bool, temporal_prior: float) -> Tensor:
    """The checks and ``G(T)`` shared by both objectives; ``gw_product(plan, radius, mask_x, mask_y)`` is
    ``Cx T Cy`` of the masked plan."""
    eps, alpha, radius, rho, _ = check_fgw_settings(eps, alpha, radius, temporal_prior)
    cost = check_cost(cost)
    if not isinstance(plan, Tensor) or plan.shape != cost.shape:
        raise ValueError(f"plan must have the cost's shape {tuple(cost.shape)}")
    bsz, n, m = cost.shape
    mask_x = check_mask(mask_x, bsz, n, cost.device, "mask_x")
    mask_y = check_mask(mask_y, bsz, m, cost.device, "mask_y")
    if rho != 0.0:
        cost = cost + rho * temporal_prior_matrix(bsz, n, m, mask_x, mask_y, device=cost.device, dtype=cost.dtype)
    plan = plan.to(cost.dtype) * (mask_x.unsqueeze(2) & mask_y.unsqueeze(1)).to(cost.dtype)
    return fgw_objective_from_products(
        plan, torch.log(plan), cost, gw_product(plan, radius, mask_x, mask_y), eps=eps, alpha=alpha,
        log_p=log_uniform_marginal(mask_x, cost.dtype), log_q=log_uniform_marginal(mask_y, cost.dtype),
        lambda_x=check_nonnegative(lambda_x, "lambda_x"), lambda_y=check_nonnegative(lambda_y, "lambda_y"),
        unbalanced_x=unbalanced_x, unbalanced_y=unbalanced_y,
    )  # fmt: skip


def asot_objective(
    plan: Tensor,
    cost: Tensor,
    mask: Tensor | None = None,
    *,
    eps: float,
    alpha: float,
    radius: float,
    lambda_frames: float = SEGMENT.lambda_frames,
    lambda_actions: float = SEGMENT.lambda_actions,
    unbalanced_frames: bool = SEGMENT.unbalanced_frames,
    unbalanced_actions: bool = SEGMENT.unbalanced_actions,
    temporal_prior: float = SEGMENT.temporal_prior,
) -> Tensor:
    """ASOT objective ``G(T)`` (alpha/2 on the GW term) per problem, shape (B,).

    plan: (B, N, K) coupling on the solver scale (``segment_asot(...) / n_valid``); cost: (B, N, K)
    *without* the temporal prior (``temporal_prior`` = rho adds ``rho R`` as the solver does);
    mask: (B, N).  Priors {Cv, Ca}; KL terms only for the unbalanced sides.  Defaults: ``segment_asot``'s.
    """
    return _objective(
        plan, cost, mask, None, lambda t, r, mx, _: mult_cv(mult_ca(t), r, mx), eps=eps, alpha=alpha, radius=radius,
        lambda_x=lambda_frames, lambda_y=lambda_actions, unbalanced_x=unbalanced_frames,
        unbalanced_y=unbalanced_actions, temporal_prior=temporal_prior,
    )  # fmt: skip


def align_fgw_objective(
    plan: Tensor,
    cost: Tensor,
    mask_x: Tensor | None = None,
    mask_y: Tensor | None = None,
    *,
    eps: float,
    alpha: float,
    radius: float,
    lambda_x: float = ALIGN.lambda_x,
    lambda_y: float = ALIGN.lambda_y,
    unbalanced_x: bool = ALIGN.unbalanced_x,
    unbalanced_y: bool = ALIGN.unbalanced_y,
    temporal_prior: float = ALIGN.temporal_prior,
) -> Tensor:
    """VAOT objective ``G(T)`` with priors {Cx, Cy} per problem, shape (B,).

    plan: (B, N, M) on the solver scale; cost: (B, N, M) without the temporal prior; masks
    (B, N)/(B, M).  For a problem solved with a virtual frame pass the augmented (N+1, M+1)
    cost/plan/masks (the virtual row/column at index 0).  Defaults: ``align_fgw``'s.
    """
    return _objective(
        plan, cost, mask_x, mask_y, lambda t, r, mx, my: mult_cv(mult_cy(t, r, my), r, mx), eps=eps, alpha=alpha,
        radius=radius, lambda_x=lambda_x, lambda_y=lambda_y, unbalanced_x=unbalanced_x, unbalanced_y=unbalanced_y,
        temporal_prior=temporal_prior,
    )  # fmt: skip
