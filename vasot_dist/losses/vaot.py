"""VAOT: video alignment with fused-GW couplings as pseudo-labels (Ali et al., ICCV 2025; ``docs/methods.md#vaot``).

Per pair (x, y) of videos of one activity (batch rows 2i, 2i+1):

    T = align_fgw(1 - X Y^T; settings.align)   (balanced, 1 inner Sinkhorn pass, priors {Cx, Cy}, rho R,
                                                virtual frame zeta prepended)
    L = -mean_{real i of x} sum_{real j of y} T_ij log softmax_j(<x_i, y_j> / tau)          (x -> y, as coded)
      [+ the same for y -> x with the transposed plan, when ``symmetric``]
      [+ w (IDM(X) + IDM(Y)), LAV's contrastive-IDM, when ``contrastive_weight`` w > 0]

T is computed under no_grad (stop-gradient).  Real rows of T sum to 1 minus what the frame sent to the
virtual column, so frames matched to the virtual frame weigh less in the loss (reference behaviour).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from vasot_dist.config.methods import AlignSolve, VAOTConfig, VASOTConfig
from vasot_dist.ot import align_fgw

from .base import LossOutput, MethodLoss, method_loss
from .common import (
    check_batch,
    contrastive_idm,
    cosine_cost,
    float32_math,
    pair_targets,
    plan_row_entropy,
    soft_cross_entropy,
    split_pairs,
)


@torch.no_grad()
def solve_align(solve: AlignSolve, cost: Tensor, mask_x: Tensor, mask_y: Tensor) -> Tensor:
    """cost: (B, N, M) -> plan (B, N, M) with the virtual frame dropped, as a detached constant."""
    return align_fgw(cost.detach().float(), mask_x, mask_y, **dataclasses.asdict(solve), validate=False)


def alignment_cross_entropy(
    x: Tensor,
    mask_x: Tensor,
    y: Tensor,
    mask_y: Tensor,
    t_xy: Tensor,
    t_yx: Tensor | None,
    tau: float,
    row_weights: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Soft CE of alignment pseudo-labels against softmax over the real frames of the other video.

    x: (B, N, D), y: (B, M, D); t_xy: (B, N, M); t_yx: (B, M, N) or None (no y -> x term).
    ``row_weights`` = (w_x (B, N), w_y (B, M)) for the mass-weighted row mean (REALIGN).
    Returns ``(L_xy, L_yx or None)``, scalars averaged over real rows.
    """
    sim = x @ y.transpose(1, 2) / tau  # (B, N, M)
    wx, wy = row_weights if row_weights is not None else (None, None)
    loss_xy = soft_cross_entropy(t_xy, sim, mask_x, mask_y, wx)
    loss_yx = None
    if t_yx is not None:
        loss_yx = soft_cross_entropy(t_yx, sim.transpose(1, 2), mask_y, mask_x, wy)
    return loss_xy, loss_yx


def alignment_terms(
    s: VAOTConfig | VASOTConfig, emb: Tensor, mask: Tensor
) -> tuple[Tensor, dict[str, Tensor], Tensor]:
    """VAOT's loss on the pairs of the batch under the settings ``s`` (VAOT's or VASOT's, which share these
    fields): ``(L_align, metrics, plan (B/2, N, M))``."""
    x, mx, y, my = split_pairs(emb, mask)
    plan = solve_align(s.align, cosine_cost(x.detach(), y.detach()), mx, my)
    t_xy, t_yx = pair_targets(plan, mx, my, virtual=s.align.virtual_cost is not None)
    loss_xy, loss_yx = alignment_cross_entropy(x, mx, y, my, t_xy, t_yx if s.symmetric else None, s.tau)
    metrics = {
        "align/ce_xy": loss_xy.detach(),
        "align/plan_entropy": plan_row_entropy(t_xy, mx),
        "align/real_mass": (t_xy.sum(dim=(1, 2)) / mx.sum(dim=1)).mean(),  # 1 - share sent to virtual
    }
    loss = loss_xy
    if loss_yx is not None:
        metrics["align/ce_yx"] = loss_yx.detach()
        loss = loss + loss_yx
    if s.contrastive_weight > 0:
        idm = contrastive_idm(emb, mask, window=s.idm_window, margin=s.idm_margin)
        idm_pair = (idm[0::2] + idm[1::2]).mean()
        metrics["align/idm"] = idm_pair.detach()
        loss = loss + s.contrastive_weight * idm_pair
    return loss, metrics, plan


@method_loss("vaot")
class VAOTLoss(MethodLoss):
    """VAOT alignment loss (module docstring); a pair method without learnable parts."""

    settings: VAOTConfig

    def forward(self, emb: Tensor, mask: Tensor, *, step: int = 0) -> LossOutput:
        check_batch(emb, mask)
        with float32_math(emb.device):
            loss, metrics, plan = alignment_terms(self.settings, emb.float(), mask)
        return LossOutput(loss=loss, metrics=metrics, couplings={"align": plan[:1]})
