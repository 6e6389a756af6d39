"""Batched entropic partial OT by log-domain Bregman projections.

Solves ``min <C, T> + eps sum T log T`` s.t. ``T 1 <= a``, ``T^T 1 <= b``, ``1^T T 1 = mass``
(Benamou et al. 2015, prop. 5) -- the plan of ``ot.partial.entropic_partial_wasserstein(a, b, M,
reg=eps, m=mass)``.  The iterate is ``log T = -C/eps + x_i + y_j + z``; the three KL projections
(onto {T1 <= a}, {T^T 1 <= b}, {sum T = mass}) each reset one of ``x, y, z`` (see
``partial_dual_ascent``).  O(N + M) state besides the cost, no ``exp`` of unscaled kernels, so
any eps works.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ._common import (
    check_cost,
    check_count,
    check_mask,
    check_positive,
    check_tol,
    check_unit_open_closed,
    finite_or_zero,
    full_precision,
    log_marginal,
    neg_inf_where,
    plogp_minus_p,
    safe_exp,
)

_CHECK_EVERY = 10


def partial_dual_ascent(
    log_k: Tensor,
    log_a: Tensor,
    log_b: Tensor,
    log_mass: Tensor,
    n_iters: int,
    tol: float | None,
    init: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, tuple[Tensor, Tensor], int, float | None]:
    """Iterated KL projections for entropic partial OT on ``log_k: (B, N, M)`` (``-inf`` = no mass).

    log_a: (B, N), log_b: (B, M) marginal upper bounds; log_mass: (B, 1) total mass.  Returns
    ``(log_plan, (x, y), iters, err)``.

    POT's Dykstra iteration (``entropic_partial_wasserstein``) multiplies each projection's
    correction back in before the next projection onto the same set; since every projection only
    rescales rows (or columns, or everything), undoing the previous row correction restores the
    row scaling to 0, so Dykstra's iterates are exactly block coordinate ascent on the dual:
    ``x = min(log a - LSE_j(log K + y) - z, 0)``, ``y = min(log b - LSE_i(log K + x) - z, 0)``,
    ``z = log m - LSE(log K + x + y)``.  Started like POT (``x = y = 0``, ``z`` rescaling K to mass m)
    the iterates equal POT's; any ``x, y <= 0`` is a valid warm start (``init``).
    """
    row_ok = torch.isfinite(log_a)
    col_ok = torch.isfinite(log_b)
    if init is None:
        x = torch.zeros_like(log_a)
        y = torch.zeros_like(log_b)
    else:
        x, y = init
    total = torch.logsumexp((log_k + x.unsqueeze(2) + y.unsqueeze(1)).flatten(1), dim=1, keepdim=True)
    z = finite_or_zero(log_mass - total)  # (B, 1)
    err: float | None = None
    done = 0
    for it in range(n_iters):
        x_prev, y_prev = x, y
        rows = torch.logsumexp(log_k + y.unsqueeze(1), dim=2) + z  # row sums without x, log
        x = torch.where(row_ok & torch.isfinite(rows), torch.clamp(log_a - rows, max=0.0), 0.0)
        cols = torch.logsumexp(log_k + x.unsqueeze(2), dim=1) + z
        y = torch.where(col_ok & torch.isfinite(cols), torch.clamp(log_b - cols, max=0.0), 0.0)
        # the total mass is the log-sum of the column sums just computed
        z = finite_or_zero(log_mass - torch.logsumexp(cols + y, dim=1, keepdim=True) + z)
        done = it + 1
        if tol is not None and done % _CHECK_EVERY == 0:
            delta = torch.maximum((x - x_prev).abs().amax(dim=1), (y - y_prev).abs().amax(dim=1))
            err = float(delta.max())
            if err < tol:
                break
    log_plan = log_k + x.unsqueeze(2) + y.unsqueeze(1) + z.unsqueeze(2)
    return log_plan, (x, y), done, err


def partial_wasserstein(
    cost: Tensor,
    a: Tensor | None = None,
    b: Tensor | None = None,
    *,
    mass: float,
    eps: float,
    n_iters: int = 1000,
    tol: float | None = 1e-9,
    mask_x: Tensor | None = None,
    mask_y: Tensor | None = None,
    return_log: bool = False,
) -> Tensor | tuple[Tensor, dict[str, Any]]:
    """Entropic partial OT of total mass ``mass`` (same plan as ``ot.partial.entropic_partial_wasserstein``).

    cost: (B, N, M); a: (B, N), b: (B, M) marginal upper bounds (None: uniform over unmasked
    entries, each summing to 1); mask_x: (B, N), mask_y: (B, M).  ``mass`` in (0, 1] and at most
    ``min(sum a, sum b)``.  Stops after ``n_iters`` or when the log-scalings move by less than ``tol``
    (checked every 10 iterations).  Returns the plan (B, N, M); with ``return_log`` also
    ``{'objective': (B, 1) final <C,T> + eps sum T log T, 'n_iters', 'err'}`` (the intermediate
    Dykstra iterates are not feasible, so only the final objective is logged).
    """
    eps = check_positive(eps, "eps")
    mass = check_unit_open_closed(mass, "mass")
    n_iters = check_count(n_iters, "n_iters")
    tol = check_tol(tol)
    with full_precision(cost):
        cost = check_cost(cost)
        bsz, n, m = cost.shape
        mask_x = check_mask(mask_x, bsz, n, cost.device, "mask_x")
        mask_y = check_mask(mask_y, bsz, m, cost.device, "mask_y")
        log_a = log_marginal(a, mask_x, cost.dtype, "a")
        log_b = log_marginal(b, mask_y, cost.dtype, "b")
        if a is not None or b is not None:
            cap = torch.minimum(safe_exp(log_a).sum(dim=1), safe_exp(log_b).sum(dim=1))
            if bool((cap < mass * (1 - 1e-6)).any()):
                raise ValueError(f"mass={mass} exceeds min(sum a, sum b) for some problem; the partial problem is infeasible")
        valid = torch.isfinite(log_a).unsqueeze(2) & torch.isfinite(log_b).unsqueeze(1)
        log_k = neg_inf_where(valid, -cost / eps)
        log_mass = torch.full((bsz, 1), math.log(mass), dtype=cost.dtype, device=cost.device)
        log_plan, _, done, err = partial_dual_ascent(log_k, log_a, log_b, log_mass, n_iters, tol)
        plan = safe_exp(log_plan)
    if return_log:
        lin = torch.where(plan > 0, cost * plan, 0.0).sum(dim=(1, 2))
        obj = lin + eps * (plogp_minus_p(plan, log_plan) + plan).sum(dim=(1, 2))
        return plan, {"objective": obj.unsqueeze(1), "n_iters": done, "err": err}
    return plan
