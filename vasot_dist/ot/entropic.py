"""Batched log-domain Sinkhorn solvers: balanced and KL-relaxed (unbalanced) entropic OT.

``sinkhorn`` solves ``min <C, T> - eps H(T)`` s.t. ``T 1 = a``, ``T^T 1 = b`` (Cuturi 2013), the plan of
``ot.sinkhorn(a, b, M, reg=eps)``.  ``sinkhorn_unbalanced`` solves
``min <C, T> + eps sum T (log T - 1) + reg_m1 KL~(T 1 | a) + reg_m2 KL~(T^T 1 | b)`` (Chizat et al. 2016),
the plan of ``ot.unbalanced.sinkhorn_unbalanced(..., reg_type='entropy')``.

Both iterate on log-scalings ``f, g`` with ``log T = f_i + g_j - C_ij / eps``, so any eps and
cost range stays finite.  Masked entries carry no mass (``-inf`` log-weights).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ._common import (
    check_cost,
    check_count,
    check_finite_cost,
    check_mask,
    check_positive,
    check_tol,
    finite_or_zero,
    full_precision,
    kl_div,
    log_marginal,
    neg_inf_where,
    plogp_minus_p,
    safe_exp,
)
from ._compile import FusedIteration
from .settings import SINKHORN, SINKHORN_UNBALANCED

_CHECK_EVERY = 10  # convergence test period: one host sync per 10 iterations, as POT does


def _setup(cost: Tensor, a: Tensor | None, b: Tensor | None, eps: float, mask_x: Tensor | None, mask_y: Tensor | None,
           validate: bool | None):
    cost = check_cost(cost)
    bsz, n, m = cost.shape
    mask_x = check_mask(mask_x, bsz, n, cost.device, "mask_x")
    mask_y = check_mask(mask_y, bsz, m, cost.device, "mask_y")
    log_a = log_marginal(a, mask_x, cost.dtype, "a")
    log_b = log_marginal(b, mask_y, cost.dtype, "b")
    valid = torch.isfinite(log_a).unsqueeze(2) & torch.isfinite(log_b).unsqueeze(1)
    check_finite_cost(cost, valid, validate=validate)
    log_k = neg_inf_where(valid, -cost / eps)
    return cost, log_a, log_b, log_k


def _scaling_update(log_w: Tensor, log_k: Tensor, other: Tensor, dim: int, power: float) -> Tensor:
    """``log u = power * (log w - LSE(log K + log v))`` with empty rows/columns kept at ``-inf``."""
    upd = log_w - torch.logsumexp(log_k + other, dim=dim)
    if power != 1.0:
        upd = power * upd
    # finite exactly when both log w and the LSE are (-inf - x, x - -inf and -inf - -inf are not)
    return neg_inf_where(torch.isfinite(upd), upd)


def _sinkhorn_step(log_k: Tensor, f: Tensor, g: Tensor, log_a: Tensor, log_b: Tensor, pow_x: float,
                   pow_y: float) -> tuple[Tensor, Tensor]:
    """One Sinkhorn iteration on the log-scalings: ``f`` against ``g``, then ``g`` against the new ``f``."""
    f = _scaling_update(log_a, log_k, g.unsqueeze(1), 2, pow_x)
    g = _scaling_update(log_b, log_k, f.unsqueeze(2), 1, pow_y)
    return f, g


SINKHORN_STEP = FusedIteration(_sinkhorn_step)


def _entropic_primal(cost: Tensor, plan: Tensor, log_plan: Tensor, eps: float) -> Tensor:
    """``<C, T> + eps sum T (log T - 1)`` per problem (B,)."""
    lin = torch.where(plan > 0, cost * plan, 0.0).sum(dim=(1, 2))
    return lin + eps * plogp_minus_p(plan, log_plan).sum(dim=(1, 2))


def sinkhorn(
    cost: Tensor,
    a: Tensor | None = None,
    b: Tensor | None = None,
    *,
    eps: float,
    n_iters: int = SINKHORN.n_iters,
    tol: float | None = SINKHORN.tol,
    mask_x: Tensor | None = None,
    mask_y: Tensor | None = None,
    return_log: bool = False,
    validate: bool | None = None,
) -> Tensor | tuple[Tensor, dict[str, Any]]:
    """Balanced entropic OT, log-domain Sinkhorn (same plan as ``ot.sinkhorn(a, b, M, reg=eps)``).

    cost: (B, N, M); a: (B, N), b: (B, M) marginals (None: uniform over unmasked entries);
    mask_x: (B, N), mask_y: (B, M) booleans.  Stops after ``n_iters`` or when the row-marginal L1
    error of every problem is below ``tol`` (checked every 10 iterations; ``tol=None`` never
    checks, so the loop has no host synchronisation).  A NaN/inf cost on valid entries raises
    ValueError naming the batch index (accelerator tensors only with ``validate=True``).  Returns the plan (B, N, M) in float32
    (float64 for float64 input); with ``return_log`` also ``{'objective': (B, iters) primal
    <C,T> - eps H(T) after each iteration, 'n_iters': iters, 'err': last error or None}``.
    """
    def row_error(f: Tensor, g: Tensor, f_prev: Tensor, g_prev: Tensor, log_k: Tensor, log_a: Tensor) -> Tensor:
        row = safe_exp(torch.logsumexp(log_k + g.unsqueeze(1), dim=2) + f)
        return (row - safe_exp(log_a)).abs().sum(dim=1)

    return _iterate(cost, a, b, eps, (1.0, 1.0), n_iters, tol, mask_x, mask_y, validate, return_log, row_error, None)


def _reg_pair(reg_m: float | tuple[float, float]) -> tuple[float, float]:
    if isinstance(reg_m, (tuple, list)):
        if len(reg_m) != 2:
            raise ValueError(f"reg_m must be a number or a pair (reg_m_rows, reg_m_cols), got {reg_m!r}")
        pair = (reg_m[0], reg_m[1])
    else:
        pair = (reg_m, reg_m)
    for value in pair:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value) or value <= 0:
            raise ValueError(f"reg_m entries must be numbers > 0 (inf allowed), got {reg_m!r}")
    return float(pair[0]), float(pair[1])


def _gen_kl(marg: Tensor, log_ref: Tensor, dim: int) -> Tensor:
    """Generalised KL ``sum x log(x/y) - x + y`` as POT's unbalanced objective."""
    ref = safe_exp(log_ref)
    return kl_div(marg, log_ref, dim) - marg.sum(dim=dim) + ref.sum(dim=dim)


def sinkhorn_unbalanced(
    cost: Tensor,
    a: Tensor | None = None,
    b: Tensor | None = None,
    *,
    eps: float,
    reg_m: float | tuple[float, float],
    n_iters: int = SINKHORN_UNBALANCED.n_iters,
    tol: float | None = SINKHORN_UNBALANCED.tol,
    mask_x: Tensor | None = None,
    mask_y: Tensor | None = None,
    return_log: bool = False,
    validate: bool | None = None,
) -> Tensor | tuple[Tensor, dict[str, Any]]:
    """Unbalanced entropic OT with KL-relaxed marginals (Chizat et al. 2016), log-domain.

    Same plan as ``ot.unbalanced.sinkhorn_unbalanced(a, b, M, reg=eps, reg_m=reg_m,
    reg_type='entropy')``: ``min <C,T> + eps sum T(log T - 1) + reg_m[0] KL~(T1|a) + reg_m[1] KL~(T^T1|b)``
    with the generalised KL ``KL~(x|y) = sum x log(x/y) - x + y``.  ``reg_m = inf`` on a side makes that
    marginal a hard constraint (``(inf, lam)`` is the semi-relaxed problem of ASOT with alpha = 0).

    cost: (B, N, M); a: (B, N), b: (B, M) (None: uniform over unmasked entries); masks as ``sinkhorn``.
    Stops when the log-scalings change by less than ``tol`` (checked every 10 iterations; ``tol=None``:
    never).  Non-finite costs as ``sinkhorn``.
    Returns the plan (B, N, M); with ``return_log`` also ``{'objective': (B, iters), 'n_iters', 'err'}``.
    """
    eps = check_positive(eps, "eps")
    reg_x, reg_y = _reg_pair(reg_m)
    pow_x = 1.0 if math.isinf(reg_x) else reg_x / (reg_x + eps)
    pow_y = 1.0 if math.isinf(reg_y) else reg_y / (reg_y + eps)

    def scaling_change(f: Tensor, g: Tensor, f_prev: Tensor, g_prev: Tensor, log_k: Tensor, log_a: Tensor) -> Tensor:
        return torch.maximum(finite_or_zero(f - f_prev).abs().amax(dim=1), finite_or_zero(g - g_prev).abs().amax(dim=1))

    def relaxation(obj: Tensor, plan: Tensor, log_a: Tensor, log_b: Tensor) -> Tensor:
        if not math.isinf(reg_x):
            obj = obj + reg_x * _gen_kl(plan.sum(dim=2), log_a, 1)
        if not math.isinf(reg_y):
            obj = obj + reg_y * _gen_kl(plan.sum(dim=1), log_b, 1)
        return obj

    return _iterate(cost, a, b, eps, (pow_x, pow_y), n_iters, tol, mask_x, mask_y, validate, return_log,
                    scaling_change, relaxation)


def _iterate(cost: Tensor, a: Tensor | None, b: Tensor | None, eps: float, powers: tuple[float, float], n_iters: int,
             tol: float | None, mask_x: Tensor | None, mask_y: Tensor | None, validate: bool | None, return_log: bool,
             error: Callable[..., Tensor], relaxation: Callable[..., Tensor] | None) -> Any:
    """The Sinkhorn loop of both solvers: ``powers`` of the scaling updates (1: hard marginal), ``error(f, g, f_prev,
    g_prev, log_k, log_a)`` (B,) the convergence test, ``relaxation(obj, plan, log_a, log_b)`` (B,) the primal plus
    the objective's KL terms (None: balanced)."""
    eps = check_positive(eps, "eps")
    n_iters = check_count(n_iters, "n_iters")
    tol = check_tol(tol)
    with full_precision(cost):
        cost, log_a, log_b, log_k = _setup(cost, a, b, eps, mask_x, mask_y, validate)
        f = torch.zeros_like(log_a)
        g = torch.zeros_like(log_b)
        objectives: list[Tensor] = []
        err: float | None = None
        done = 0
        step = SINKHORN_STEP.select((tuple(log_k.shape), *powers), log_k, log_k.numel())
        for it in range(n_iters):
            f_prev, g_prev = f, g
            f, g = step(log_k, f, g, log_a, log_b, *powers)
            done = it + 1
            if return_log:
                log_plan = log_k + f.unsqueeze(2) + g.unsqueeze(1)
                plan = safe_exp(log_plan)
                obj = _entropic_primal(cost, plan, log_plan, eps)
                objectives.append(obj if relaxation is None else relaxation(obj, plan, log_a, log_b))
            if tol is not None and done % _CHECK_EVERY == 0:
                err = float(error(f, g, f_prev, g_prev, log_k, log_a).max())
                if err < tol:
                    break
        plan = safe_exp(log_k + f.unsqueeze(2) + g.unsqueeze(1))
    if return_log:
        return plan, {"objective": torch.stack(objectives, dim=1), "n_iters": done, "err": err}
    return plan
