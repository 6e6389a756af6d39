"""ASOT / VAOT: the authors' fused-GW mirror-descent solver, batched, log-domain, O(N M) per step.

One shared core (``fgw_mirror_descent``) runs the reference iteration (METHODS.md "ASOT"):

* ``T0 = p q^T`` (masked);
* each iteration ``grad = alpha Cx(T Cy) + (1 - alpha) C_hat + eps log(T + 1e-12)
  [+ lambda_y (log(T^T 1 / q + 1e-12) + 1)] [+ lambda_x (log(T 1 / p + 1e-12) + 1)]`` -- no factor 2 on
  the GW term, so the fixed points minimise the alpha/2 objective of ``objectives.py``;
* step ``eta = 4 / max(grad)`` per problem over its valid entries, computed at iteration 0 and frozen
  (a tensor: no host synchronisation in the loop);
* mirror step ``T <- T exp(-eta grad)`` (done on ``log T``), then: only y unbalanced -> rows rescaled
  to p; only x unbalanced -> columns rescaled to q; both unbalanced -> no projection; balanced ->
  the mirror step is discarded and ``T`` is ``inner_iters`` log-domain Sinkhorn passes on
  ``exp(-(alpha Cx T Cy + (1 - alpha) C_hat) / eps)`` (reference: 1 pass).

The mirror step and projections work on ``log T`` (the row/column rescaling is a log-sum-exp), so
no row underflows to zero for any eps and cost scale; the gradient keeps the reference's ``1e-12``
floors (``log(T + 1e-12)``), so the iterates are the reference's, and it stays bounded below.

Deviations from the reference, all for degenerate inputs only: if ``max(grad) <= 0`` (the reference
would take a negative step and ascend) the step uses ``max|grad|``; the denominator is floored at
1e-12; with both sides unbalanced ``log T`` is capped at 30 to rule out overflow.
"""

from __future__ import annotations

from collections.abc import Callable
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
    check_unit_open_closed,
    full_precision,
    log_uniform_marginal,
    neg_inf_where,
    safe_exp,
)
from .objectives import fgw_objective_from_products
from .priors import BandSum, band_widths, prepare_pair_cost
from .priors import temporal_prior as _temporal_prior
from .sinkhorn import _scaling_update

_LOG_T_CAP = 30.0  # overflow guard for the projection-free (both sides unbalanced) branch
_STEP_DENOM_FLOOR = 1e-12

GwProduct = Callable[[Tensor], Tensor]


def _kl_grad(marg: Tensor, ref: Tensor) -> Tensor:
    """``log(marg / ref + 1e-12) + 1`` (reference ``grad_kld`` without lambda); ``ref`` is 0 where masked."""
    return torch.log(marg / ref.clamp(min=torch.finfo(ref.dtype).tiny) + 1e-12) + 1.0


def _step_size(grad: Tensor, valid: Tensor) -> Tensor:
    """``4 / max(grad)`` per problem over valid entries, shape (B, 1, 1) (see module docstring)."""
    neg = torch.full_like(grad, -torch.inf)
    gmax = torch.where(valid, grad, neg).amax(dim=(1, 2), keepdim=True)
    gabs = torch.where(valid, grad.abs(), 0.0).amax(dim=(1, 2), keepdim=True)
    denom = torch.where(gmax > 0, gmax, gabs)
    denom = torch.where(torch.isfinite(denom), denom, torch.ones_like(denom)).clamp(min=_STEP_DENOM_FLOOR)
    return 4.0 / denom


def _normalise(z: Tensor, dim: int, log_w: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """Rescale ``exp(z)`` so that its sums along ``dim`` equal ``w``; returns ``(T, log T)``.

    One ``exp`` pass (the shifted exponentials are reused for T).  Empty slices (``z = -inf``
    throughout, masked rows) give exact zeros without NaN.
    """
    shift = z.amax(dim=dim, keepdim=True).clamp(min=-1e30)
    e = torch.exp(z - shift)
    s = e.sum(dim=dim, keepdim=True).clamp(min=torch.finfo(e.dtype).tiny)
    t = e * (w / s)
    log_t = z - shift - torch.log(s) + log_w
    return t, log_t


def fgw_mirror_descent(
    cost: Tensor,
    mask_x: Tensor,
    mask_y: Tensor,
    gw_product: GwProduct | None,
    *,
    eps: float,
    alpha: float,
    lambda_x: float,
    lambda_y: float,
    unbalanced_x: bool,
    unbalanced_y: bool,
    n_iters: int,
    inner_iters: int = 1,
    step_size: float | None = None,
    return_log: bool = False,
) -> tuple[Tensor, Tensor, dict[str, Any] | None]:
    """Run the reference iteration; returns ``(T, log_T, log)`` with T on the solver scale.

    cost: (B, N, M) full cost ``C_hat`` (temporal prior included); mask_x: (B, N), mask_y: (B, M);
    gw_product: ``T -> Cx T Cy`` (B, N, M), structured (None or alpha = 0: no GW term).
    ``log['objective']`` is (B, n_iters): ``G(T_k)`` after each iteration k = 1..n_iters.
    The loop has no host synchronisation (the step size stays a tensor).
    """
    dtype = cost.dtype
    valid = mask_x.unsqueeze(2) & mask_y.unsqueeze(1)
    cost = torch.where(valid, cost, 0.0)
    log_p = log_uniform_marginal(mask_x, dtype)
    log_q = log_uniform_marginal(mask_y, dtype)
    p, q = safe_exp(log_p), safe_exp(log_q)
    balanced = not unbalanced_x and not unbalanced_y
    use_gw = gw_product is not None and alpha > 0
    lin_cost = (1.0 - alpha) * cost
    neg_mask = neg_inf_where(valid, torch.zeros_like(cost))  # 0 valid, -inf masked

    log_t = neg_mask + log_p.unsqueeze(2) + log_q.unsqueeze(1)
    t = safe_exp(log_t)
    eta: Tensor | None = None
    if step_size is not None:
        eta = torch.full((cost.shape[0], 1, 1), float(step_size), dtype=dtype, device=cost.device)
    objectives: list[Tensor] = []

    def objective(t_: Tensor, log_t_: Tensor, gw_: Tensor | None) -> Tensor:
        return fgw_objective_from_products(
            t_, log_t_, cost, gw_, eps=eps, alpha=alpha, log_p=log_p, log_q=log_q,
            lambda_x=lambda_x, lambda_y=lambda_y, unbalanced_x=unbalanced_x, unbalanced_y=unbalanced_y,
        )  # fmt: skip

    for it in range(n_iters):
        gw = gw_product(t) if use_gw else None
        if return_log and it > 0:
            objectives.append(objective(t, log_t, gw))
        fgw = lin_cost if gw is None else torch.add(lin_cost, gw, alpha=alpha)
        if balanced:
            log_k = neg_mask - fgw / eps
            log_b = torch.zeros_like(log_q)
            for _ in range(inner_iters):
                log_a = _scaling_update(log_p, log_k, log_b.unsqueeze(1), 2, 1.0)
                log_b = _scaling_update(log_q, log_k, log_a.unsqueeze(2), 1, 1.0)
            log_t = log_k + log_a.unsqueeze(2) + log_b.unsqueeze(1)
            t = safe_exp(log_t)
            continue
        # masked entries: t = 0 and log_t = -inf, every gradient term is finite there, so
        # log_t - eta * grad stays -inf without any masking inside the loop
        grad = fgw + eps * torch.log(t + 1e-12)
        if unbalanced_y:
            grad = grad + lambda_y * _kl_grad(t.sum(dim=1), q).unsqueeze(1)
        if unbalanced_x:
            grad = grad + lambda_x * _kl_grad(t.sum(dim=2), p).unsqueeze(2)
        if eta is None:
            eta = _step_size(grad, valid)
        z = log_t - eta * grad
        if not unbalanced_x:  # rows hard-constrained to p
            t, log_t = _normalise(z, 2, log_p.unsqueeze(2), p.unsqueeze(2))
        elif not unbalanced_y:  # columns hard-constrained to q
            t, log_t = _normalise(z, 1, log_q.unsqueeze(1), q.unsqueeze(1))
        else:
            log_t = z.clamp(max=_LOG_T_CAP)
            t = torch.exp(log_t)
    log: dict[str, Any] | None = None
    if return_log:
        gw = gw_product(t) if use_gw else None
        objectives.append(objective(t, log_t, gw))
        log = {"objective": torch.stack(objectives, dim=1), "n_iters": n_iters, "step_size": eta}
    return t, log_t, log


def _check_common(eps: float, alpha: float, radius: float, n_iters: int, inner_iters: int, step_size: float | None):
    eps = check_positive(eps, "eps")
    alpha = check_alpha(alpha)
    radius = check_unit_open_closed(radius, "radius")
    n_iters = check_count(n_iters, "n_iters")
    inner_iters = check_count(inner_iters, "inner_iters")
    if step_size is not None:
        step_size = check_positive(step_size, "step_size")
    return eps, alpha, radius, n_iters, inner_iters, step_size


def asot_gw_product(radius: float, mask: Tensor | None, length: int, device: torch.device) -> GwProduct:
    """``T -> Cv (T Ca)`` for frames x actions (T zero at masked rows); mask (B, length) or None (dense)."""
    band = BandSum(band_widths(mask, length, radius), length, 1, device)

    def product(t: Tensor) -> Tensor:
        return band(t.sum(dim=2, keepdim=True) - t) / radius

    return product


def vaot_gw_product(radius: float, mask_x: Tensor | None, mask_y: Tensor | None, n: int, m: int,
                    device: torch.device) -> GwProduct:
    """``T -> Cx (T Cy)`` with ``T Cy = rowsum(T) - band_y(T)`` (diagonal of Cy is 1); masks or None (dense)."""
    band_x = BandSum(band_widths(mask_x, n, radius), n, 1, device)
    band_y = BandSum(band_widths(mask_y, m, radius), m, 2, device)

    def product(t: Tensor) -> Tensor:
        return band_x(t.sum(dim=2, keepdim=True) - band_y(t)) / radius

    return product


def segment_asot(
    cost: Tensor,
    mask: Tensor | None = None,
    *,
    eps: float = 0.07,
    alpha: float = 0.3,
    radius: float = 0.04,
    lambda_frames: float = 0.1,
    lambda_actions: float = 0.05,
    unbalanced_frames: bool = False,
    unbalanced_actions: bool = True,
    temporal_prior: float = 0.0,
    n_iters: int = 25,
    inner_iters: int = 1,
    step_size: float | None = None,
    return_log: bool = False,
) -> Tensor | tuple[Tensor, dict[str, Any]]:
    """ASOT frames-to-actions soft assignment (Xu & Gould, CVPR 2024), the authors' decoder.

    cost: (B, N, K) visual cost ``1 - <x_i, a_j>``; mask: (B, N) valid frames (None: all).
    ``temporal_prior`` is rho: the solver uses ``C_hat = cost + rho R``, ``R_ij = |i/N - j/K|`` with
    N the problem's valid frames.  Priors: ``Cv`` (band ``1 <= |i-k| <= floor(N r)``, value 1/r) and
    ``Ca = 1 - I``.  Marginals ``p = 1/N`` (valid frames), ``q = 1/K``.  ``unbalanced_actions``
    (default) KL-penalises the action marginal with ``lambda_actions``, ``unbalanced_frames`` the
    frame marginal with ``lambda_frames``; both off is the balanced branch with ``inner_iters``
    Sinkhorn passes.  ``step_size`` fixes eta instead of ``4 / max(grad)`` at iteration 0.

    Returns the plan (B, N, K) scaled by N (each valid frame's row sums to 1 when rows are
    constrained; masked rows are 0), float32 (float64 for float64 input).  With ``return_log``
    also ``{'objective': (B, n_iters) alpha/2 objective G(T_k) on the 1/N scale, 'n_iters',
    'step_size': (B, 1, 1) or None}``.
    """
    eps, alpha, radius, n_iters, inner_iters, step_size = _check_common(eps, alpha, radius, n_iters, inner_iters, step_size)
    lambda_frames = check_nonnegative(lambda_frames, "lambda_frames")
    lambda_actions = check_nonnegative(lambda_actions, "lambda_actions")
    rho = check_finite(temporal_prior, "temporal_prior")
    with full_precision(cost):
        cost = check_cost(cost)
        bsz, n, k = cost.shape
        dense = mask is None  # band width known on the host; with a mask it stays on the device (no sync)
        mask = check_mask(mask, bsz, n, cost.device, "mask")
        gw_product = asot_gw_product(radius, None if dense else mask, n, cost.device)
        mask_y = torch.ones(bsz, k, dtype=torch.bool, device=cost.device)
        if rho != 0.0:
            cost = cost + rho * _temporal_prior(bsz, n, k, mask, None, device=cost.device, dtype=cost.dtype)
        t, _, log = fgw_mirror_descent(
            cost, mask, mask_y, gw_product,
            eps=eps, alpha=alpha, lambda_x=lambda_frames, lambda_y=lambda_actions,
            unbalanced_x=unbalanced_frames, unbalanced_y=unbalanced_actions,
            n_iters=n_iters, inner_iters=inner_iters, step_size=step_size, return_log=return_log,
        )  # fmt: skip
        plan = t * mask.sum(dim=1).to(t.dtype).view(-1, 1, 1)
    return (plan, log) if return_log else plan


def align_fgw(
    cost: Tensor,
    mask_x: Tensor | None = None,
    mask_y: Tensor | None = None,
    *,
    eps: float = 0.07,
    alpha: float = 0.3,
    radius: float = 0.02,
    lambda_x: float = 0.05,
    lambda_y: float = 0.05,
    unbalanced_x: bool = False,
    unbalanced_y: bool = False,
    temporal_prior: float = 0.0,
    virtual_cost: float | None = None,
    n_iters: int = 25,
    inner_iters: int = 1,
    step_size: float | None = None,
    return_log: bool = False,
) -> Tensor | tuple[Tensor, dict[str, Any]]:
    """VAOT frames-of-x to frames-of-y alignment (Ali et al., ICCV 2025), the authors' solver.

    cost: (B, N, M), e.g. ``1 - <x_i, y_j>``; mask_x: (B, N), mask_y: (B, M).  Same iteration as
    ``segment_asot`` with priors ``Cx`` (band ``1 <= |i-k| <= floor(n r)``, value 1/r) and ``Cy``
    (0 on ``1 <= |j-l| <= floor(m r)``, else 1, diagonal included).  Default is the published
    balanced branch (both flags off, 1 inner Sinkhorn pass).  ``temporal_prior`` = rho adds
    ``rho |i/N - j/M|`` on real frames.

    ``virtual_cost`` = zeta prepends a virtual row and column (index 0) of cost zeta; the virtual
    frame gets the same uniform mass ``1/(n+1)`` as a real frame, takes part in the GW band
    (n and m then count it), and is dropped from the output.

    Returns the plan (B, N, M) scaled by the valid rows of x *counting the virtual frame* (the
    reference's ``T * nnz``): each real row sums to 1 minus what it sent to the virtual column
    (exactly 1 only when rows are constrained and there is no virtual frame).  With
    ``return_log`` also ``{'objective': (B, n_iters) G(T_k) of the (augmented) problem, ...}``.
    """
    eps, alpha, radius, n_iters, inner_iters, step_size = _check_common(eps, alpha, radius, n_iters, inner_iters, step_size)
    lambda_x = check_nonnegative(lambda_x, "lambda_x")
    lambda_y = check_nonnegative(lambda_y, "lambda_y")
    rho = check_finite(temporal_prior, "temporal_prior")
    if virtual_cost is not None:
        virtual_cost = check_finite(virtual_cost, "virtual_cost")
    with full_precision(cost):
        cost = check_cost(cost)
        bsz, n, m = cost.shape
        dense_x, dense_y = mask_x is None, mask_y is None  # band widths known on the host (no device read)
        mask_x = check_mask(mask_x, bsz, n, cost.device, "mask_x")
        mask_y = check_mask(mask_y, bsz, m, cost.device, "mask_y")
        cost, mask_x, mask_y = prepare_pair_cost(cost, mask_x, mask_y, rho=rho, virtual_cost=virtual_cost)
        gw_product = vaot_gw_product(
            radius, None if dense_x else mask_x, None if dense_y else mask_y, cost.shape[1], cost.shape[2], cost.device
        )
        t, _, log = fgw_mirror_descent(
            cost, mask_x, mask_y, gw_product,
            eps=eps, alpha=alpha, lambda_x=lambda_x, lambda_y=lambda_y,
            unbalanced_x=unbalanced_x, unbalanced_y=unbalanced_y,
            n_iters=n_iters, inner_iters=inner_iters, step_size=step_size, return_log=return_log,
        )  # fmt: skip
        plan = t * mask_x.sum(dim=1).to(t.dtype).view(-1, 1, 1)
        if virtual_cost is not None:
            plan = plan[:, 1:, 1:]
    return (plan, log) if return_log else plan
