"""Pieces every method loss shares, one way to do each thing (``docs/methods.md#notation``).

* :func:`soft_cross_entropy`: ``-sum_j T_ij log softmax_j(logits_i)`` averaged over real rows (ASOT Eq. 6-7,
  VAOT Eq. 7), the pseudo-label loss of every OT method here; ``row_weights`` gives the mass-weighted form.
* :func:`cosine_cost`: ``C_ij = 1 - <x_i, y_j>``.
* :func:`split_pairs`: the pair layout of the batch, rows ``(2i, 2i+1)`` = ``(x_i, y_i)``.
* :func:`pair_targets`: the pseudo-label rows of an alignment plan in both directions.
* :func:`contrastive_idm`: LAV's contrastive inverse difference moment (Haresh et al. 2021) against collapse.
* :func:`plan_contrastive`: the OT-guided inter-video contrastive term (VAVA Eq. 15; REALIGN).
* :func:`squared_distances`, :func:`frame_ranks`, :func:`plan_row_entropy`, :func:`float32_math`: plumbing.

Masks are boolean, True for real frames.  Padding is assumed nowhere: positions are ranks among the real
frames, so a padded video gives exactly the values of the video alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor


@contextlib.contextmanager
def float32_math(device: torch.device) -> Iterator[None]:
    """Autocast off: losses and the OT that feeds them are computed in float32 even in a bf16 step."""
    dev_type = device.type if device.type in ("cuda", "cpu", "xpu", "mps") else "cpu"
    with torch.autocast(device_type=dev_type, enabled=False):
        yield


def check_batch(emb: Tensor, mask: Tensor, name: str = "emb") -> None:
    """Validate ``emb: (B, T, D)`` floating point and ``mask: (B, T)`` bool (True = real frame).

    Shapes and dtypes only: every video must have a real frame, but checking values would synchronise the
    host with the device at every step.
    """
    if not isinstance(emb, Tensor) or emb.dim() != 3 or not emb.is_floating_point():
        shape = tuple(emb.shape) if isinstance(emb, Tensor) else type(emb).__name__
        raise ValueError(f"{name} must be a floating-point tensor of shape (B, T, D), got {shape}")
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != tuple(emb.shape[:2]):
        got = (mask.dtype, tuple(mask.shape)) if isinstance(mask, Tensor) else type(mask).__name__
        raise ValueError(
            f"mask must be a bool tensor of shape {tuple(emb.shape[:2])} (True = real frame), got {got}"
        )


def split_pairs(emb: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Pairs at rows (2i, 2i+1): ``(x, mask_x, y, mask_y)``, each ``(B/2, T, D)`` / ``(B/2, T)``."""
    if emb.shape[0] % 2:
        raise ValueError(
            f"a pair method needs an even batch of videos (pairs at rows 2i, 2i+1), got B={emb.shape[0]}"
        )
    return emb[0::2], mask[0::2], emb[1::2], mask[1::2]


def cosine_cost(x: Tensor, y: Tensor) -> Tensor:
    """``1 - x y^T`` for unit vectors: x (B, N, D), y (B, M, D) or (M, D) -> (B, N, M)."""
    yt = y.transpose(-1, -2)
    return 1.0 - x @ yt


def squared_distances(x: Tensor, y: Tensor) -> Tensor:
    """``||x_i - y_j||^2`` summed over the feature axis: x (B, N, D), y (B, M, D) -> (B, N, M).

    Expanded as ``|x|^2 + |y|^2 - 2 x.y`` (no N x M x D tensor), clamped at 0 against rounding.
    """
    xx = (x * x).sum(dim=-1, keepdim=True)
    yy = (y * y).sum(dim=-1).unsqueeze(-2)
    return (xx + yy - 2.0 * x @ y.transpose(-1, -2)).clamp(min=0.0)


def frame_ranks(mask: Tensor) -> Tensor:
    """Index of each real frame among the real frames of its video (0, 1, ...), 0 at padding: (B, T) int64."""
    rank = torch.cumsum(mask.to(torch.int64), dim=1) - 1
    return torch.where(mask, rank, torch.zeros_like(rank))


def _masked_logits(logits: Tensor, col_mask: Tensor | None) -> Tensor:
    if col_mask is None:
        return logits
    # a large finite negative (not -inf) keeps 0 * logp = 0 exactly, in the value and in the gradient
    return logits.masked_fill(~col_mask.unsqueeze(1), torch.finfo(logits.dtype).min / 4)


def soft_cross_entropy(
    target: Tensor,
    logits: Tensor,
    row_mask: Tensor,
    col_mask: Tensor | None = None,
    row_weights: Tensor | None = None,
) -> Tensor:
    """Pseudo-label loss ``-sum_j T_ij log softmax_j(logits_ij)``, averaged over real rows; scalar.

    target: (B, N, K) soft labels (held constant: detached here); logits: (B, N, K); row_mask: (B, N)
    real rows; col_mask: (B, K) real columns (the softmax runs over them only; None = all).
    ``row_weights`` (B, N): weighted mean ``sum_i w_i CE_i / sum_i w_i`` over real rows instead of the
    plain mean (REALIGN's mass-weighted rows).  The mean runs over every real row of the batch, so a
    batch equals the frame-weighted mean of its videos' losses (the reference divides by all B*N rows,
    the same value without padding).  ``log_softmax`` replaces the reference's ``log(P + 1e-11)``.
    """
    if target.shape != logits.shape:
        raise ValueError(
            f"target and logits must have the same shape, got {tuple(target.shape)} and {tuple(logits.shape)}"
        )
    logp = torch.log_softmax(_masked_logits(logits.float(), col_mask), dim=-1)
    target = target.detach().to(logp.dtype)
    if col_mask is not None:
        target = target * col_mask.unsqueeze(1).to(target.dtype)
    per_row = -(target * logp).sum(dim=-1)  # (B, N)
    weights = row_mask.to(per_row.dtype)
    if row_weights is not None:
        weights = weights * row_weights.detach().to(per_row.dtype)
    return (per_row * weights).sum() / weights.sum().clamp(min=torch.finfo(per_row.dtype).tiny)


def pair_targets(plan: Tensor, mask_x: Tensor, mask_y: Tensor, *, virtual: bool) -> tuple[Tensor, Tensor]:
    """Pseudo-label rows of an x-y plan in both directions, from a solver output (B, N, M).

    The solvers return the plan scaled by the real rows of x (plus one with a virtual frame), so x's rows
    carry at most 1.  The y -> x rows are the transpose rescaled by ``(m + v) / (n + v)`` (v = 1 with a
    virtual frame): each y frame then carries at most 1 as well.  Returns ``(t_xy (B, N, M), t_yx (B, M, N))``.
    """
    v = 1.0 if virtual else 0.0
    n = mask_x.sum(dim=1).to(plan.dtype) + v
    m = mask_y.sum(dim=1).to(plan.dtype) + v
    return plan, plan.transpose(1, 2) * (m / n).view(-1, 1, 1)


def plan_row_entropy(target: Tensor, row_mask: Tensor) -> Tensor:
    """Mean over real rows of the entropy of each row renormalised to sum 1 (a sharpness metric), scalar."""
    mass = target.sum(dim=-1, keepdim=True)
    probs = target / mass.clamp(min=1e-12)
    ent = -(torch.where(probs > 0, probs * torch.log(probs.clamp(min=1e-30)), torch.zeros_like(probs))).sum(
        dim=-1
    )
    live = row_mask & (mass.squeeze(-1) > 1e-12)
    return (ent * live).sum() / live.sum().clamp(min=1)


def contrastive_idm(emb: Tensor, mask: Tensor, *, window: float = 0.05, margin: float = 2.0) -> Tensor:
    """LAV's contrastive inverse difference moment per video, averaged over frame pairs: (B,).

    With ``d_ij = ||x_i - x_j||^2`` and normalised positions ``t_i = rank_i / n`` (LAV: step / length):
    temporally close pairs ``|t_i - t_j| <= window`` are pulled together (``d_ij``), the others pushed
    beyond the margin with weight ``1 + (t_i - t_j)^2``: ``(1 + (t_i - t_j)^2) max(0, margin - d_ij)``
    (LAV ``Contrastive_IDM``, sigma/L -> ``window``, margin 2).  LAV sums over pairs and divides by the
    frame count; we average over the ``n^2`` pairs of each video so the value does not grow with length.

    emb: (B, T, D); mask: (B, T).
    """
    d = squared_distances(emb, emb)
    count = mask.sum(dim=1)
    n = count.to(d.dtype)
    r = frame_ranks(mask)
    lag = (r.unsqueeze(2) - r.unsqueeze(1)).abs()  # integer frame lag
    # the window test runs on integer lags in float64 so that window = k/n includes lag k exactly
    pos = lag.to(torch.float64) <= (count.to(torch.float64) * window + 1e-9).view(-1, 1, 1)
    gap = lag.to(d.dtype) / n.view(-1, 1, 1)
    neg_term = (1.0 + gap * gap) * torch.relu(margin - d)
    idm = torch.where(pos, d, neg_term)
    pair = (mask.unsqueeze(2) & mask.unsqueeze(1)).to(d.dtype)
    return (idm * pair).sum(dim=(1, 2)) / (n * n)


def plan_contrastive(
    dist: Tensor,
    plan: Tensor,
    mask_x: Tensor,
    mask_y: Tensor,
    *,
    temperature: float,
    row_weights: Tensor | None = None,
    col_weights: Tensor | None = None,
) -> Tensor:
    """OT-guided inter-video contrastive term (VAVA Eq. 15, in its code's softmax form), per pair: (B,).

    For every real frame of x its best match ``argmax_j T_ij`` and worst match ``argmin_j T_ij`` over the real
    frames of y, and the same per column for y.  ``d_best = mean_i dist(x_i, y_best(i)) + mean_j dist(x_best(j), y_j)``
    (``d_worst`` alike) and the loss is ``softplus((d_best - d_worst) / temperature)`` = the code's
    ``softmax_cross_entropy(labels=[0, 1], logits=[d_best, d_worst] / temperature)``: matched frames pulled
    together, the least likely pairs pushed apart.  The matches are picked from the plan itself (the VAVA code
    wrongly uses ``K * D``).  ``row_weights`` (B, N) / ``col_weights`` (B, M) turn the means into weighted
    means (REALIGN: transported mass, so unmatched frames do not count).

    dist: (B, N, M) differentiable distances; plan: (B, N, M) constant; masks (B, N) / (B, M).
    """
    plan = plan.detach()
    big = torch.finfo(plan.dtype).max
    valid = mask_x.unsqueeze(2) & mask_y.unsqueeze(1)
    best_r = torch.where(valid, plan, torch.full_like(plan, -big)).argmax(dim=2, keepdim=True)  # (B, N, 1)
    worst_r = torch.where(valid, plan, torch.full_like(plan, big)).argmin(dim=2, keepdim=True)
    best_c = torch.where(valid, plan, torch.full_like(plan, -big)).argmax(dim=1, keepdim=True)  # (B, 1, M)
    worst_c = torch.where(valid, plan, torch.full_like(plan, big)).argmin(dim=1, keepdim=True)
    wr = mask_x.to(dist.dtype) if row_weights is None else row_weights.detach().to(dist.dtype) * mask_x
    wc = mask_y.to(dist.dtype) if col_weights is None else col_weights.detach().to(dist.dtype) * mask_y
    tiny = torch.finfo(dist.dtype).tiny

    def row_mean(idx: Tensor) -> Tensor:
        return (dist.gather(2, idx).squeeze(2) * wr).sum(dim=1) / wr.sum(dim=1).clamp(min=tiny)

    def col_mean(idx: Tensor) -> Tensor:
        return (dist.gather(1, idx).squeeze(1) * wc).sum(dim=1) / wc.sum(dim=1).clamp(min=tiny)

    d_best = row_mean(best_r) + col_mean(best_c)
    d_worst = row_mean(worst_r) + col_mean(worst_c)
    return torch.nn.functional.softplus((d_best - d_worst) / temperature)


def masked_argmax_labels(plan: Tensor, mask: Tensor) -> Tensor:
    """Hard labels ``argmax_k plan_ik`` (B, N) int64, -1 at padded frames."""
    labels = plan.argmax(dim=-1)
    return torch.where(mask, labels, torch.full_like(labels, -1))


