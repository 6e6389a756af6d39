"""Batched entropic partial OT by Bregman projections, log-domain duals with scaling-domain sweeps.

Solves ``min <C, T> + eps sum T log T`` s.t. ``T 1 <= a``, ``T^T 1 <= b``, ``1^T T 1 = mass``
(Benamou et al. 2015, prop. 5) -- the plan of ``ot.partial.entropic_partial_wasserstein(a, b, M,
reg=eps, m=mass)``.  The iterate is ``log T = -C/eps + x_i + y_j + z``; the three KL projections
(onto {T1 <= a}, {T^T 1 <= b}, {sum T = mass}) each reset one of ``x, y, z`` (see
``partial_dual_ascent``).  O(N + M) state besides the cost.

Speed without losing the log domain's range: every block of ``BLOCK`` sweeps starts with one exact
log-domain sweep, whose duals are then absorbed into a kernel ``K~ = exp(log T - c) <= 1`` (``c`` the
problem's largest log-plan entry); the block's other sweeps rescale ``K~`` by ``u = exp(x - x0)``,
``v = exp(y - y0)`` and a scalar, i.e. two matrix-vector products and no ``exp`` per sweep.  The two are
the same iteration in exact arithmetic; an entry of ``K~`` only underflows when it is ~1e-38 (float32)
of the largest entry of the current plan, which no later sweep of the block can bring back to a
visible size because ``u <= exp(-x0)`` and ``v <= exp(-y0)`` cap it.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ._common import (
    check_count,
    check_positive,
    check_tol,
    check_unit_open_closed,
    cpu_chunks,
    finite_or_zero,
    full_precision,
    plogp_minus_p,
    safe_exp,
)
from ._compile import FusedIteration
from .entropic import _setup as entropic_setup
from .settings import PARTIAL

_CHECK_EVERY = 10
BLOCK = 20  # sweeps per block: one exact log-domain sweep, then BLOCK - 1 scaling-domain sweeps


def _log_sweep(log_k: Tensor, log_a: Tensor, log_b: Tensor, log_mass: Tensor, x: Tensor, y: Tensor,
               z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One exact sweep on the log duals: rows, then columns, then the total mass (``partial_dual_ascent``)."""
    rows = torch.logsumexp(log_k + y.unsqueeze(1), dim=2) + z  # row sums without x, log
    x = torch.where(torch.isfinite(log_a) & torch.isfinite(rows), torch.clamp(log_a - rows, max=0.0), 0.0)
    cols = torch.logsumexp(log_k + x.unsqueeze(2), dim=1) + z
    y = torch.where(torch.isfinite(log_b) & torch.isfinite(cols), torch.clamp(log_b - cols, max=0.0), 0.0)
    # the total mass is the log-sum of the column sums just computed
    z = finite_or_zero(log_mass - torch.logsumexp(cols + y, dim=1, keepdim=True) + z)
    return x, y, z


def _absorb(log_k: Tensor, x: Tensor, y: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
    """``K~ = exp(log_k + x + y + z - c)`` (B, N, M) with ``c`` (B, 1) the largest entry (0 for an empty problem)."""
    s = log_k + x.unsqueeze(2) + y.unsqueeze(1) + z.unsqueeze(2)
    c = s.amax(dim=(1, 2)).unsqueeze(1)
    c = torch.where(torch.isfinite(c), c, 0.0)
    return torch.exp(s - c.unsqueeze(2)), c


LOG_SWEEP = FusedIteration(_log_sweep)
ABSORB = FusedIteration(_absorb)


def _scaling_sweep(k: Tensor, k_t: Tensor, a: Tensor, b: Tensor, mass: Tensor, a_floor: Tensor, b_cap: Tensor,
                   w: Tensor, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One sweep on the scalings (``_ScalingSweeps``): rows, columns, total mass; returns ``(u, w, z)``."""
    tiny = torch.finfo(k.dtype).tiny
    rows = torch.bmm(w.unsqueeze(1), k_t)  # (b, 1, N) = K~ w: 8x faster on CPU than bmm(K~, w)
    u = a / torch.maximum(rows, a_floor)
    cols = torch.bmm(u, k).squeeze(1)  # (b, M) = K~^T u
    w = b / torch.maximum(cols, (b_cap / z).clamp(min=tiny))
    total = (cols * w).sum(dim=1, keepdim=True)
    scale = torch.where(total > 0, mass / total, 1.0)
    return u, w * scale, z * scale


SCALING_SWEEP = FusedIteration(_scaling_sweep)


class _ScalingSweeps:
    """Sweeps in the scaling domain around duals ``(x0, y0, z0)`` absorbed into ``kernel`` (module docstring).

    With ``T = K~ u w^T`` (``w = Z v``, ``Z = exp(c + z - z0)``) a sweep is ``u = min(a / (K~ w), e^{-x0})``,
    ``w = min(b / (K~^T u), Z e^{-y0})`` and a rescaling of ``w`` and ``Z`` to the total mass: the log sweep's
    three projections, exactly.  On CPU the batch is swept in chunks (``_common.cpu_chunks``: about 2^19 kernel
    entries per thread), so that a chunk's kernel stays in cache across its sweeps instead of streaming from
    memory (1 thread, 64 x 257 x 257: 1.7 ms per sweep in chunks of 7 problems, 5.6 ms in one piece).
    """

    def __init__(self, kernel: Tensor, c: Tensor, a: Tensor, b: Tensor, mass: Tensor, x0: Tensor, y0: Tensor):
        tiny = torch.finfo(kernel.dtype).tiny
        self.kernel, self.kernel_t = kernel, kernel.transpose(1, 2)
        self.a, self.b, self.mass = a.unsqueeze(1), b, mass
        # floors: a / max(R, a e^{x0}) = min(a / R, e^{-x0}), the cap x <= 0; tiny keeps 0/0 out of empty rows
        self.a_floor = (a * torch.exp(x0)).clamp(min=tiny).unsqueeze(1)
        self.b_cap = b * torch.exp(y0)
        self.z = torch.exp(c)  # Z (B, 1) at the absorbed duals
        self.u = torch.ones_like(self.a)  # (B, 1, N)
        self.w = self.z * torch.ones_like(b)  # (B, M)
        bsz, n, m = kernel.shape
        self.chunks = cpu_chunks(bsz, n * m, kernel.device)

    def sweeps(self, count: int) -> None:
        """``count`` sweeps of every problem (chunk by chunk)."""
        for sl in self.chunks:
            k, k_t, a, b, mass = self.kernel[sl], self.kernel_t[sl], self.a[sl], self.b[sl], self.mass[sl]
            a_floor, b_cap, u, w, z = self.a_floor[sl], self.b_cap[sl], self.u[sl], self.w[sl], self.z[sl]
            sweep = SCALING_SWEEP.select((tuple(k.shape),), k, k.numel())
            for _ in range(count):
                u, w, z = sweep(k, k_t, a, b, mass, a_floor, b_cap, w, z)
            if len(self.chunks) == 1:
                self.u, self.w, self.z = u, w, z
            else:
                self.u[sl], self.w[sl], self.z[sl] = u, w, z

    def log_duals(self, x0: Tensor, y0: Tensor, z0: Tensor, c: Tensor, row_ok: Tensor,
                  col_ok: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The log duals ``(x, y, z)`` of the current scalings (0 on masked entries, as the log sweep)."""
        x = torch.where(row_ok, x0 + torch.log(self.u.squeeze(1)), 0.0)
        y = torch.where(col_ok, y0 + torch.log(self.w / self.z), 0.0)
        return x, y, z0 + torch.log(self.z) - c

    def plan(self) -> Tensor:
        return self.kernel * self.u.transpose(1, 2) * self.w.unsqueeze(1)


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
    ``(plan, (x, y), iters, err)`` with the plan (B, N, M) in the linear domain.

    POT's Dykstra iteration (``entropic_partial_wasserstein``) multiplies each projection's
    correction back in before the next projection onto the same set; since every projection only
    rescales rows (or columns, or everything), undoing the previous row correction restores the
    row scaling to 0, so Dykstra's iterates are exactly block coordinate ascent on the dual:
    ``x = min(log a - LSE_j(log K + y) - z, 0)``, ``y = min(log b - LSE_i(log K + x) - z, 0)``,
    ``z = log m - LSE(log K + x + y)``.  Started like POT (``x = y = 0``, ``z`` rescaling K to mass m)
    the iterates equal POT's; any ``x, y <= 0`` is a valid warm start (``init``).  Sweeps run in blocks
    (module docstring); the convergence test (the duals' largest move in the last sweep below ``tol``)
    runs every 10 sweeps and reads the device.
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
    a, b, mass = safe_exp(log_a), safe_exp(log_b), torch.exp(log_mass)
    key = (tuple(log_k.shape),)
    log_sweep = LOG_SWEEP.select(key, log_k, log_k.numel())
    absorb = ABSORB.select(key, log_k, log_k.numel())
    err: float | None = None
    done = 0
    scaling: _ScalingSweeps | None = None  # the block's scaling-domain state, anchored at `anchor`

    def duals() -> tuple[Tensor, Tensor, Tensor]:
        return (x, y, z) if scaling is None else scaling.log_duals(*anchor, row_ok, col_ok)

    while done < n_iters:
        if scaling is None or done % BLOCK == 0:  # a block starts with an exact log-domain sweep
            x, y, z = duals()
            x_prev, y_prev = x, y
            x, y, z = log_sweep(log_k, log_a, log_b, log_mass, x, y, z)
            scaling = None
            done += 1
            if done % BLOCK != 0 and done < n_iters:  # the block's other sweeps: absorb the duals
                kernel, c = absorb(log_k, x, y, z)
                scaling, anchor = _ScalingSweeps(kernel, c, a, b, mass, x, y), (x, y, z, c)
        else:  # to the block's end or the next convergence test, whichever comes first
            end = min(n_iters, done + BLOCK - done % BLOCK)
            if tol is not None:
                end = min(end, done + _CHECK_EVERY - done % _CHECK_EVERY)
            if tol is not None and end % _CHECK_EVERY == 0:  # the test compares the last two sweeps
                scaling.sweeps(end - done - 1)
                x_prev, y_prev, _ = duals()
                done = end - 1
            scaling.sweeps(end - done)
            done = end
        if tol is not None and done % _CHECK_EVERY == 0:
            x_now, y_now, _ = duals()
            err = float(torch.maximum((x_now - x_prev).abs().amax(dim=1), (y_now - y_prev).abs().amax(dim=1)).max())
            if err < tol:
                break
    x, y, z = duals()
    if scaling is not None:
        plan = scaling.plan()
    else:
        plan = safe_exp(log_k + x.unsqueeze(2) + y.unsqueeze(1) + z.unsqueeze(2))
    return plan, (x, y), done, err


def partial_wasserstein(
    cost: Tensor,
    a: Tensor | None = None,
    b: Tensor | None = None,
    *,
    mass: float,
    eps: float,
    n_iters: int = PARTIAL.n_iters,
    tol: float | None = PARTIAL.tol,
    mask_x: Tensor | None = None,
    mask_y: Tensor | None = None,
    return_log: bool = False,
    validate: bool | None = None,
) -> Tensor | tuple[Tensor, dict[str, Any]]:
    """Entropic partial OT of total mass ``mass`` (same plan as ``ot.partial.entropic_partial_wasserstein``).

    cost: (B, N, M); a: (B, N), b: (B, M) marginal upper bounds (None: uniform over unmasked
    entries, each summing to 1); mask_x: (B, N), mask_y: (B, M).  ``mass`` in (0, 1] and at most
    ``min(sum a, sum b)``.  Stops after ``n_iters`` or when the log-scalings move by less than ``tol``
    (checked every 10 iterations; ``tol=None`` never checks, so nothing is read back).  A NaN/inf cost on
    valid entries raises ValueError naming the batch index (accelerator tensors only with ``validate=True``).
    Returns the plan (B, N, M); with ``return_log`` also
    ``{'objective': (B, 1) final <C,T> + eps sum T log T, 'n_iters', 'err'}`` (the intermediate
    Dykstra iterates are not feasible, so only the final objective is logged).
    """
    eps = check_positive(eps, "eps")
    mass = check_unit_open_closed(mass, "mass")
    n_iters = check_count(n_iters, "n_iters")
    tol = check_tol(tol)
    with full_precision(cost):
        cost, log_a, log_b, log_k = entropic_setup(cost, a, b, eps, mask_x, mask_y, validate)
        bsz = cost.shape[0]
        if a is not None or b is not None:
            cap = torch.minimum(safe_exp(log_a).sum(dim=1), safe_exp(log_b).sum(dim=1))
            if bool((cap < mass * (1 - 1e-6)).any()):
                raise ValueError(f"mass={mass} exceeds min(sum a, sum b) for some problem; the partial problem is infeasible")
        log_mass = torch.full((bsz, 1), math.log(mass), dtype=cost.dtype, device=cost.device)
        plan, _, done, err = partial_dual_ascent(log_k, log_a, log_b, log_mass, n_iters, tol)
    if return_log:
        lin = torch.where(plan > 0, cost * plan, 0.0).sum(dim=(1, 2))
        obj = lin + eps * (plogp_minus_p(plan, torch.log(plan)) + plan).sum(dim=(1, 2))
        return plan, {"objective": obj.unsqueeze(1), "n_iters": done, "err": err}
    return plan
