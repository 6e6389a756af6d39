"""ASOT / VAOT: the authors' fused-GW mirror-descent solver, batched, log-domain, O(N M) per step.

One shared core (``fgw_mirror_descent``) runs the reference iteration (``docs/methods.md``, section ASOT; the
authors' ``segment_asot`` in ``src/asot.py`` of mingu6/action_seg_ot):

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

Speed: an iteration is one pure function (``_mirror_step``, ``_balanced_step``) that inductor compiles into a
few loops over the (B, N, M) state once a shape has paid for it (``_compile.FusedIteration``); inside it a band of
width at most 16 is summed by shifted reads of a zero-padded copy (``priors.apply_band``), eagerly by one prefix
sum.  The solve's set-up is one more compiled function (``_start``).  ``segment_asot`` solves the transposed
problem (actions x frames), the same iteration with the roles of the sides swapped, so that its long frame axis is
the contiguous one.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from ._common import (
    check_cost,
    check_count,
    check_fgw_settings,
    check_finite_cost,
    check_mask,
    check_nonnegative,
    check_positive,
    cpu_chunks,
    full_precision,
    log_uniform_marginal,
    neg_inf_where,
    pair_mask,
    safe_exp,
)
from ._compile import FusedIteration
from .entropic import _scaling_update
from .objectives import fgw_objective_from_products
from .priors import (
    Band,
    apply_band,
    band_sum_and_total,
    band_total,
    band_widths,
    make_band,
    prepare_pair_cost,
)
from .priors import temporal_prior as _temporal_prior
from .settings import ALIGN, SEGMENT

_LOG_T_CAP = 30.0  # overflow guard for the projection-free (both sides unbalanced) branch
_STEP_DENOM_FLOOR = 1e-12


class Prior(NamedTuple):
    """One side of the GW product ``Cx T Cy``, applied along ``dim`` (1: Cx, rows; 2: Cy, columns).

    ``'cv'``: ASOT's ``Cv`` (value ``1/r`` on the band of ``band``); ``'ca'``: ``Ca = 1 - I`` (sum minus the
    entry itself); ``'cy'``: VAOT's ``Cy`` (1 off the band, diagonal included: sum minus the band).
    """

    kind: str
    dim: int
    band: Band | None = None


def _apply_prior(x: Tensor, prior: Prior, radius: float) -> Tensor:
    if prior.kind == "cv":
        assert prior.band is not None
        return apply_band(x, prior.band) * (1.0 / radius)
    if prior.kind == "ca":
        return x.sum(dim=prior.dim, keepdim=True) - x
    assert prior.band is not None
    band, total = band_sum_and_total(x, prior.band)
    return total - band


def _slice_prior(prior: Prior, sl: slice) -> Prior:
    """The prior of the problems ``sl`` of the batch (per-problem band indices are sliced; host widths are shared)."""
    band = prior.band
    if band is None or band.hi is None:
        return prior
    return prior._replace(band=band._replace(hi=band.hi[sl], lo=band.lo[sl], lo_ok=band.lo_ok[sl]))


def gw_product(t: Tensor, radius: float, prior_x: Prior, prior_y: Prior) -> Tensor:
    """``Cx T Cy`` of ``t: (B, N, M)`` (zero at masked entries) without a dense prior: ``Cy`` first, then ``Cx``."""
    return _apply_prior(_apply_prior(t, prior_y, radius), prior_x, radius)


def _fgw_cost(t: Tensor, lin_cost: Tensor, alpha: float, radius: float, prior_x: Prior, prior_y: Prior) -> Tensor:
    """``alpha Cx T Cy + (1 - alpha) C_hat`` with ``lin_cost = (1 - alpha) C_hat`` (alpha = 0: no GW term)."""
    if alpha == 0:
        return lin_cost
    return torch.add(lin_cost, gw_product(t, radius, prior_x, prior_y), alpha=alpha)


def _kl_grad(marg: Tensor, ref: Tensor) -> Tensor:
    """``log(marg / ref + 1e-12) + 1`` (reference ``grad_kld`` without lambda); ``ref`` is 0 where masked.

    marg: (B, N, 1) or (B, 1, M) sums of T, ref: the marginal (B, N) or (B, M)."""
    ref = ref.view(marg.shape)
    return torch.log(marg / ref.clamp(min=torch.finfo(ref.dtype).tiny) + 1e-12) + 1.0


def _grad(t: Tensor, lin_cost: Tensor, p: Tensor, q: Tensor, eps: float, alpha: float, radius: float,
          prior_x: Prior, prior_y: Prior, lambda_x: float, lambda_y: float, ub_x: bool, ub_y: bool) -> Tensor:
    """The reference gradient (module docstring); p: (B, N), q: (B, M) the marginals."""
    grad = _fgw_cost(t, lin_cost, alpha, radius, prior_x, prior_y) + eps * torch.log(t + 1e-12)
    if ub_y:
        grad = grad + lambda_y * _kl_grad(_total(t, prior_x, 1), q)
    if ub_x:
        grad = grad + lambda_x * _kl_grad(_total(t, prior_y, 2), p)
    return grad


def _total(t: Tensor, prior: Prior, dim: int) -> Tensor:
    """``t.sum(dim, keepdim=True)``; along a band's dim, read from the padded buffer of its band sum (compiled: the
    padding loop also sums, as the same graph node)."""
    if prior.band is not None and prior.dim == dim:
        return band_total(t, prior.band)
    return t.sum(dim=dim, keepdim=True)


def _step_size(grad: Tensor, valid: Tensor) -> Tensor:
    """``4 / max(grad)`` per problem over valid entries, shape (B, 1, 1) (see module docstring)."""
    gmax = torch.where(valid, grad, -torch.inf).amax(dim=(1, 2), keepdim=True)
    gabs = torch.where(valid, grad.abs(), 0.0).amax(dim=(1, 2), keepdim=True)
    denom = torch.where(gmax > 0, gmax, gabs)
    denom = torch.where(torch.isfinite(denom), denom, 1.0).clamp(min=_STEP_DENOM_FLOOR)
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


def _start(cost: Tensor, mask_x: Tensor, mask_y: Tensor, alpha: float, zero_masked: bool) -> tuple[Tensor, ...]:
    """The solve's inputs: ``(1 - alpha) C_hat`` and ``C_hat`` zero where masked (``C_hat`` unchanged unless
    ``zero_masked``), the log marginals and marginals (B, N), (B, M), and ``T0 = p q^T`` with its log."""
    valid = mask_x.unsqueeze(2) & mask_y.unsqueeze(1)
    kept = torch.where(valid, cost, 0.0)
    log_p = log_uniform_marginal(mask_x, cost.dtype)
    log_q = log_uniform_marginal(mask_y, cost.dtype)
    log_t = neg_inf_where(valid, log_p.unsqueeze(2) + log_q.unsqueeze(1))
    return (kept * (1.0 - alpha), kept if zero_masked else cost, log_p, log_q, safe_exp(log_p), safe_exp(log_q),
            log_t, safe_exp(log_t))


def _initial_step(t: Tensor, mask_x: Tensor, mask_y: Tensor, lin_cost: Tensor, p: Tensor, q: Tensor, eps: float,
                  alpha: float, radius: float, prior_x: Prior, prior_y: Prior, lambda_x: float, lambda_y: float,
                  ub_x: bool, ub_y: bool) -> Tensor:
    """eta = ``4 / max(grad)`` at ``T0`` (B, 1, 1), frozen for the rest of the solve."""
    grad = _grad(t, lin_cost, p, q, eps, alpha, radius, prior_x, prior_y, lambda_x, lambda_y, ub_x, ub_y)
    return _step_size(grad, mask_x.unsqueeze(2) & mask_y.unsqueeze(1))


def _mirror_step(t: Tensor, log_t: Tensor, eta: Tensor, lin_cost: Tensor, log_p: Tensor, log_q: Tensor, p: Tensor,
                 q: Tensor, eps: float, alpha: float, radius: float, prior_x: Prior, prior_y: Prior,
                 lambda_x: float, lambda_y: float, ub_x: bool, ub_y: bool) -> tuple[Tensor, Tensor]:
    """One unbalanced iteration: ``log T - eta grad``, then the projection of the flags; returns ``(T, log T)``.

    Masked entries have ``T = 0`` and ``log T = -inf``; every gradient term is finite there, so they stay
    ``-inf`` without masking.
    """
    grad = _grad(t, lin_cost, p, q, eps, alpha, radius, prior_x, prior_y, lambda_x, lambda_y, ub_x, ub_y)
    z = log_t - eta * grad
    if not ub_x:  # rows hard-constrained to p
        return _normalise(z, 2, log_p.unsqueeze(2), p.unsqueeze(2))
    if not ub_y:  # columns hard-constrained to q
        return _normalise(z, 1, log_q.unsqueeze(1), q.unsqueeze(1))
    log_t = z.clamp(max=_LOG_T_CAP)
    return torch.exp(log_t), log_t


def _balanced_log_k(t: Tensor, mask_x: Tensor, mask_y: Tensor, lin_cost: Tensor, eps: float, alpha: float,
                    radius: float, prior_x: Prior, prior_y: Prior) -> Tensor:
    """``-(alpha Cx T Cy + (1 - alpha) C_hat) / eps`` on valid entries, ``-inf`` elsewhere: the balanced pass's kernel."""
    valid = mask_x.unsqueeze(2) & mask_y.unsqueeze(1)
    return torch.where(valid, _fgw_cost(t, lin_cost, alpha, radius, prior_x, prior_y) * (-1.0 / eps), -torch.inf)


def _balanced_step(t: Tensor, mask_x: Tensor, mask_y: Tensor, lin_cost: Tensor, log_p: Tensor, log_q: Tensor,
                   eps: float, alpha: float, radius: float, prior_x: Prior, prior_y: Prior, inner_iters: int,
                   rows_first: bool, want_log: bool) -> tuple[Tensor, Tensor | None]:
    """One balanced iteration in the log domain: ``inner_iters`` Sinkhorn passes on ``exp(log K)`` (``_balanced_log_k``).

    The last half-pass keeps its shifted exponentials as the plan (``_normalise``), so one pass costs two ``exp``
    per entry.  Returns ``(T, log T)`` (``log T`` only with ``want_log``: the next iteration needs T alone).
    """
    log_k = _balanced_log_k(t, mask_x, mask_y, lin_cost, eps, alpha, radius, prior_x, prior_y)
    # rows_first: the scaling of rows (x, summed over dim 2) is updated first, and the columns' pass ends
    (log_w1, dim1), (log_w2, dim2) = ((log_p, 2), (log_q, 1)) if rows_first else ((log_q, 1), (log_p, 2))
    log_v = torch.zeros_like(log_w2)  # the second side's scaling, 1 before the first pass
    for it in range(inner_iters):
        log_u = _scaling_update(log_w1, log_k, log_v.unsqueeze(dim2), dim1, 1.0)
        z = log_k + log_u.unsqueeze(dim1)
        if it + 1 < inner_iters:
            log_v = _scaling_update(log_w2, z, 0.0, dim2, 1.0)
    t, log_t = _normalise(z, dim2, log_w2.unsqueeze(dim2), safe_exp(log_w2).unsqueeze(dim2))
    return t, (log_t if want_log else None)


START = FusedIteration(_start)
INITIAL_STEP = FusedIteration(_initial_step)
MIRROR_STEP = FusedIteration(_mirror_step)
BALANCED_STEP = FusedIteration(_balanced_step)


def fgw_mirror_descent(
    cost: Tensor,
    mask_x: Tensor,
    mask_y: Tensor,
    prior_x: Prior,
    prior_y: Prior,
    *,
    eps: float,
    alpha: float,
    radius: float,
    lambda_x: float,
    lambda_y: float,
    unbalanced_x: bool,
    unbalanced_y: bool,
    n_iters: int,
    inner_iters: int,
    rows_first: bool = True,
    step_size: float | None = None,
    return_log: bool = False,
    scale: Tensor | None = None,
) -> tuple[Tensor, Tensor | None, dict[str, Any] | None]:
    """Run the reference iteration; returns ``(T, log_T, log)`` with T on the solver scale, times ``scale`` (B,).

    cost: (B, N, M) full cost ``C_hat`` (temporal prior included); mask_x: (B, N), mask_y: (B, M);
    prior_x / prior_y: the priors of ``Cx T Cy`` (``Prior``); ``alpha = 0``: no GW term.  ``rows_first``: the
    balanced branch's Sinkhorn pass rescales rows, then columns (False: the other way round).
    ``log['objective']`` is (B, n_iters): ``G(T_k)`` after each iteration k = 1..n_iters.  ``log_T`` is
    None for the balanced branch unless ``return_log``.  The loop has no host synchronisation (the step
    size stays a tensor).  Each iteration is one :class:`~._compile.FusedIteration` call.  On CPU the batch is
    solved in cache-sized chunks (``cpu_chunks``), each chunk's iterations before the next chunk's.
    """
    chunks = cpu_chunks(cost.shape[0], cost.shape[1] * cost.shape[2], cost.device)
    if len(chunks) > 1:  # each chunk's whole solve in cache (``cpu_chunks``); chunks are independent problems
        solves = [fgw_mirror_descent(
            cost[sl], mask_x[sl], mask_y[sl], _slice_prior(prior_x, sl), _slice_prior(prior_y, sl), eps=eps,
            alpha=alpha, radius=radius, lambda_x=lambda_x, lambda_y=lambda_y, unbalanced_x=unbalanced_x,
            unbalanced_y=unbalanced_y, n_iters=n_iters, inner_iters=inner_iters, rows_first=rows_first,
            step_size=step_size, return_log=return_log) for sl in chunks]  # fmt: skip
        t = torch.empty_like(cost)  # the chunks' plans, scaled as they are gathered: one pass
        for sl, solve in zip(chunks, solves):
            if scale is None:
                t[sl] = solve[0]
            else:
                torch.mul(solve[0], scale[sl].view(-1, 1, 1), out=t[sl])
        log_t = None if solves[0][1] is None else torch.cat([s[1] for s in solves])
        if not return_log:
            return t, log_t, None
        logs = [s[2] for s in solves]
        steps = [lg["step_size"] for lg in logs]
        return t, log_t, {"objective": torch.cat([lg["objective"] for lg in logs]), "n_iters": n_iters,
                          "step_size": None if steps[0] is None else torch.cat(steps)}
    dtype = cost.dtype
    balanced = not unbalanced_x and not unbalanced_y
    ub = (lambda_x, lambda_y, unbalanced_x, unbalanced_y)
    widths = tuple(None if pr.band is None else pr.band.width for pr in (prior_x, prior_y))
    key = (tuple(cost.shape), eps, alpha, radius, prior_x.kind, prior_y.kind, widths, *ub)
    numel = cost.numel()
    start = START.select((tuple(cost.shape), alpha, return_log), cost, numel)
    lin_cost, cost, log_p, log_q, p, q, log_t, t = start(cost, mask_x, mask_y, alpha, return_log)
    eta: Tensor | None = None
    if step_size is not None:
        eta = torch.full((cost.shape[0], 1, 1), float(step_size), dtype=dtype, device=cost.device)
    objectives: list[Tensor] = []

    def objective(t_: Tensor, log_t_: Tensor) -> Tensor:
        gw = gw_product(t_, radius, prior_x, prior_y) if alpha > 0 else None
        return fgw_objective_from_products(
            t_, log_t_, cost, gw, eps=eps, alpha=alpha, log_p=log_p, log_q=log_q,
            lambda_x=lambda_x, lambda_y=lambda_y, unbalanced_x=unbalanced_x, unbalanced_y=unbalanced_y,
        )  # fmt: skip

    if balanced:
        step = BALANCED_STEP.select((key, inner_iters, rows_first, return_log), cost, numel)
    else:
        step = MIRROR_STEP.select(key, cost, numel)
        if eta is None:
            first = INITIAL_STEP.select(key, cost, numel)
            eta = first(t, mask_x, mask_y, lin_cost, p, q, eps, alpha, radius, prior_x, prior_y, *ub)
    for it in range(n_iters):
        if return_log and it > 0:
            objectives.append(objective(t, log_t))
        if balanced:
            t, log_t = step(t, mask_x, mask_y, lin_cost, log_p, log_q, eps, alpha, radius, prior_x, prior_y,
                            inner_iters, rows_first, return_log)
        else:
            t, log_t = step(t, log_t, eta, lin_cost, log_p, log_q, p, q, eps, alpha, radius, prior_x, prior_y, *ub)
    log: dict[str, Any] | None = None
    if return_log:
        objectives.append(objective(t, log_t))
        log = {"objective": torch.stack(objectives, dim=1), "n_iters": n_iters, "step_size": eta}
    return (t if scale is None else t * scale.view(-1, 1, 1)), log_t, log


def _check_common(eps: float, alpha: float, radius: float, temporal_prior: float, virtual_cost: float | None,
                  n_iters: int, inner_iters: int, step_size: float | None):
    eps, alpha, radius, rho, virtual_cost = check_fgw_settings(eps, alpha, radius, temporal_prior, virtual_cost)
    n_iters = check_count(n_iters, "n_iters")
    inner_iters = check_count(inner_iters, "inner_iters")
    if step_size is not None:
        step_size = check_positive(step_size, "step_size")
    return eps, alpha, radius, rho, virtual_cost, n_iters, inner_iters, step_size


def segment_asot(
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
    n_iters: int = SEGMENT.n_iters,
    inner_iters: int = SEGMENT.inner_iters,
    step_size: float | None = None,
    return_log: bool = False,
    validate: bool | None = None,
) -> Tensor | tuple[Tensor, dict[str, Any]]:
    """ASOT frames-to-actions soft assignment (Xu & Gould, CVPR 2024), the authors' decoder.

    cost: (B, N, K) visual cost ``1 - <x_i, a_j>``; mask: (B, N) valid frames (None: all).
    ``temporal_prior`` is rho: the solver uses ``C_hat = cost + rho R``, ``R_ij = |i/N - j/K|`` with
    N the problem's valid frames.  Priors: ``Cv`` (band ``1 <= |i-k| <= floor(N r)``, value 1/r) and
    ``Ca = 1 - I``.  Marginals ``p = 1/N`` (valid frames), ``q = 1/K``.  ``unbalanced_actions``
    (the authors' default) KL-penalises the action marginal with ``lambda_actions``, ``unbalanced_frames``
    the frame marginal with ``lambda_frames``; both off is the balanced branch with ``inner_iters``
    Sinkhorn passes.  ``n_iters`` mirror-descent iterations (the authors run 25, 1 inner pass).
    ``step_size`` fixes eta instead of ``4 / max(grad)`` at iteration 0.  ``eps``, ``alpha`` and ``radius``
    are required; the other settings default to the authors' signature (``settings.SEGMENT``;
    ``docs/methods.md``, section ASOT, gives the project's training values).

    The cost must be finite on valid frames: a NaN/inf raises ValueError naming the batch index (always
    for CPU tensors; for accelerator tensors only with ``validate=True``, as the test reads the device).

    Returns the plan (B, N, K) scaled by N (each valid frame's row sums to 1 when rows are
    constrained; masked rows are 0), float32 (float64 for float64 input).  With ``return_log``
    also ``{'objective': (B, n_iters) alpha/2 objective G(T_k) on the 1/N scale, 'n_iters',
    'step_size': (B, 1, 1) or None}``.
    """
    eps, alpha, radius, rho, _, n_iters, inner_iters, step_size = _check_common(
        eps, alpha, radius, temporal_prior, None, n_iters, inner_iters, step_size)
    lambda_frames = check_nonnegative(lambda_frames, "lambda_frames")
    lambda_actions = check_nonnegative(lambda_actions, "lambda_actions")
    with full_precision(cost):
        cost = check_cost(cost)
        bsz, n, k = cost.shape
        dense = mask is None  # band width known on the host; with a mask it stays on the device (no sync)
        mask = check_mask(mask, bsz, n, cost.device, "mask")
        check_finite_cost(cost, None if dense else mask.unsqueeze(2), validate=validate)
        if rho != 0.0:
            # rho R, then the sum (not one fused multiply-add): the plans of the code before the fast path, bit for bit
            cost = cost + rho * _temporal_prior(bsz, n, k, None if dense else mask, None, device=cost.device,
                                                dtype=cost.dtype)
        # Solved transposed, actions x frames: the long frame axis is then the contiguous one, so the band sums
        # and the per-frame normalisation run over full vectors instead of rows of K (19) entries.  The same
        # iteration with the roles of the two sides swapped: Cx = Ca on actions, Cy = Cv on frames; the balanced
        # pass still rescales frames first.
        frames = make_band(band_widths(None if dense else mask, n, radius), n, 2, cost.device)
        actions = torch.ones(bsz, k, dtype=torch.bool, device=cost.device)
        t, _, log = fgw_mirror_descent(
            cost.transpose(1, 2).contiguous(), actions, mask, Prior("ca", 1), Prior("cv", 2, frames),
            eps=eps, alpha=alpha, radius=radius, lambda_x=lambda_actions, lambda_y=lambda_frames,
            unbalanced_x=unbalanced_actions, unbalanced_y=unbalanced_frames, rows_first=False,
            n_iters=n_iters, inner_iters=inner_iters, step_size=step_size, return_log=return_log,
            scale=mask.sum(dim=1).to(cost.dtype),
        )  # fmt: skip
        plan = t.transpose(1, 2).contiguous()
    return (plan, log) if return_log else plan


def align_fgw(
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
    virtual_cost: float | None = ALIGN.virtual_cost,
    n_iters: int = ALIGN.n_iters,
    inner_iters: int = ALIGN.inner_iters,
    step_size: float | None = None,
    return_log: bool = False,
    validate: bool | None = None,
) -> Tensor | tuple[Tensor, dict[str, Any]]:
    """VAOT frames-of-x to frames-of-y alignment (Ali et al., ICCV 2025), the authors' solver.

    cost: (B, N, M), e.g. ``1 - <x_i, y_j>``; mask_x: (B, N), mask_y: (B, M).  Same iteration as
    ``segment_asot`` with priors ``Cx`` (band ``1 <= |i-k| <= floor(n r)``, value 1/r) and ``Cy``
    (0 on ``1 <= |j-l| <= floor(m r)``, else 1, diagonal included).  The published setting is the
    balanced branch (both flags off) with 1 inner Sinkhorn pass.  ``temporal_prior`` = rho adds
    ``rho |i/N - j/M|`` on real frames.  ``eps``, ``alpha`` and ``radius`` are required; the other settings
    default to VAOT's published balanced setting without prior or virtual frame (``settings.ALIGN``;
    ``docs/methods.md``, section VAOT, gives the project's training values).

    ``virtual_cost`` = zeta prepends a virtual row and column (index 0) of cost zeta; the virtual
    frame gets the same uniform mass ``1/(n+1)`` as a real frame, takes part in the GW band
    (n and m then count it), and is dropped from the output.  ``None``: no virtual frame.

    The cost must be finite on valid entries (ValueError naming the batch index; accelerator tensors are
    checked only with ``validate=True``).

    Returns the plan (B, N, M) scaled by the valid rows of x *counting the virtual frame* (the
    reference's ``T * nnz``): each real row sums to 1 minus what it sent to the virtual column
    (exactly 1 only when rows are constrained and there is no virtual frame).  With
    ``return_log`` also ``{'objective': (B, n_iters) G(T_k) of the (augmented) problem, ...}``.
    """
    eps, alpha, radius, rho, virtual_cost, n_iters, inner_iters, step_size = _check_common(
        eps, alpha, radius, temporal_prior, virtual_cost, n_iters, inner_iters, step_size)
    lambda_x = check_nonnegative(lambda_x, "lambda_x")
    lambda_y = check_nonnegative(lambda_y, "lambda_y")
    with full_precision(cost):
        cost = check_cost(cost)
        bsz, n, m = cost.shape
        dense_x, dense_y = mask_x is None, mask_y is None  # band widths known on the host (no device read)
        mask_x = None if dense_x else check_mask(mask_x, bsz, n, cost.device, "mask_x")
        mask_y = None if dense_y else check_mask(mask_y, bsz, m, cost.device, "mask_y")
        check_finite_cost(cost, pair_mask(mask_x, mask_y), validate=validate)
        cost, mask_x, mask_y = prepare_pair_cost(cost, mask_x, mask_y, rho=rho, virtual_cost=virtual_cost)
        n1, m1 = cost.shape[1], cost.shape[2]
        band_x = make_band(band_widths(None if dense_x else mask_x, n1, radius), n1, 1, cost.device)
        band_y = make_band(band_widths(None if dense_y else mask_y, m1, radius), m1, 2, cost.device)
        t, _, log = fgw_mirror_descent(
            cost, mask_x, mask_y, Prior("cv", 1, band_x), Prior("cy", 2, band_y),
            eps=eps, alpha=alpha, radius=radius, lambda_x=lambda_x, lambda_y=lambda_y,
            unbalanced_x=unbalanced_x, unbalanced_y=unbalanced_y,
            n_iters=n_iters, inner_iters=inner_iters, step_size=step_size, return_log=return_log,
            scale=mask_x.sum(dim=1).to(cost.dtype),
        )  # fmt: skip
        plan = t
        if virtual_cost is not None:
            plan = plan[:, 1:, 1:]
    return (plan, log) if return_log else plan
