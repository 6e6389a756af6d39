"""VAOT: video alignment with fused-GW couplings as pseudo-labels (Ali et al., ICCV 2025; METHODS.md "VAOT").

Per pair (x, y) of videos of one activity (batch rows 2i, 2i+1):

    T = align_fgw(1 - X Y^T; balanced, 1 inner Sinkhorn pass, priors {Cx, Cy}, r = ot.align_radius,
                  rho = ot.align_temporal_prior, virtual frame zeta = method.virtual_cost prepended)
    L = -mean_{real i of x} sum_{real j of y} T_ij log softmax_j(<x_i, y_j> / tau)          (x -> y, as coded)
      [+ the same for y -> x with the transposed plan, when ``symmetric``]
      [+ w (IDM(X) + IDM(Y)), LAV's contrastive-IDM, when ``contrastive_weight`` w > 0]

T is computed under no_grad (stop-gradient).  Real rows of T sum to 1 minus what the frame sent to the
virtual column, so frames matched to the virtual frame weigh less in the loss (reference behaviour).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from vasot_dist.ot import align_fgw

from .base import LossOutput, MethodLoss
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


@dataclass(frozen=True)
class AlignSettings:
    """Arguments of one ``align_fgw`` solve (VAOT's published setting by default)."""

    eps: float = 0.07
    alpha: float = 0.3
    radius: float = 0.02
    temporal_prior: float = 0.35
    virtual_cost: float | None = 0.5
    lambda_x: float = 0.05
    lambda_y: float = 0.05
    unbalanced_x: bool = False
    unbalanced_y: bool = False
    n_iters: int = 25
    inner_iters: int = 1

    @classmethod
    def from_config(cls, cfg: Any) -> AlignSettings:
        """Training eps/alpha/n_iters of ``cfg.ot``, VAOT's radius and rho, zeta = ``cfg.method.virtual_cost``."""
        ot = cfg.ot
        return cls(
            eps=ot.eps, alpha=ot.alpha, radius=ot.align_radius, temporal_prior=ot.align_temporal_prior,
            virtual_cost=cfg.method.virtual_cost, lambda_x=ot.lambda_frames, lambda_y=ot.lambda_frames,
            n_iters=ot.n_iters, inner_iters=ot.inner_iters,
        )  # fmt: skip

    @torch.no_grad()
    def solve(self, cost: Tensor, mask_x: Tensor, mask_y: Tensor) -> Tensor:
        """cost: (B, N, M) -> plan (B, N, M) with the virtual frame dropped, as a detached constant."""
        return align_fgw(cost.detach().float(), mask_x, mask_y, **dataclasses.asdict(self))


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


class VAOTLoss(MethodLoss):
    """VAOT alignment loss (module docstring); a pair method without learnable parts.

    Args:
        settings: ``align_fgw`` arguments.
        tau: softmax temperature (0.1).
        symmetric: add the y -> x direction.
        contrastive_weight: weight of LAV's contrastive-IDM on both videos (0 = off, as published).
        idm_window, idm_margin: the contrastive-IDM's positive window (fraction of the video) and margin.
    """

    needs_pairs = True

    def __init__(
        self,
        settings: AlignSettings | None = None,
        *,
        tau: float = 0.1,
        symmetric: bool = False,
        contrastive_weight: float = 0.0,
        idm_window: float = 0.05,
        idm_margin: float = 2.0,
    ) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        if contrastive_weight < 0:
            raise ValueError(f"contrastive_weight must be >= 0, got {contrastive_weight}")
        self.settings = settings or AlignSettings()
        self.tau = tau
        self.symmetric = symmetric
        self.contrastive_weight = contrastive_weight
        self.idm_window = idm_window
        self.idm_margin = idm_margin

    @classmethod
    def from_config(cls, cfg: Any) -> VAOTLoss:
        m = cfg.method
        return cls(
            AlignSettings.from_config(cfg), tau=m.tau, symmetric=m.symmetric,
            contrastive_weight=m.contrastive_weight, idm_window=m.idm_window,
            idm_margin=m.idm_margin,
        )  # fmt: skip

    def alignment_terms(self, emb: Tensor, mask: Tensor) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """``(L_align, metrics, plan)`` for the pairs of the batch (shared with VASOT)."""
        x, mx, y, my = split_pairs(emb, mask)
        plan = self.settings.solve(cosine_cost(x.detach(), y.detach()), mx, my)
        t_xy, t_yx = pair_targets(plan, mx, my, virtual=self.settings.virtual_cost is not None)
        loss_xy, loss_yx = alignment_cross_entropy(
            x, mx, y, my, t_xy, t_yx if self.symmetric else None, self.tau
        )
        metrics = {
            "align/ce_xy": loss_xy.detach(),
            "align/plan_entropy": plan_row_entropy(t_xy, mx),
            "align/real_mass": (t_xy.sum(dim=(1, 2)) / mx.sum(dim=1)).mean(),  # 1 - share sent to virtual
        }
        loss = loss_xy
        if loss_yx is not None:
            metrics["align/ce_yx"] = loss_yx.detach()
            loss = loss + loss_yx
        if self.contrastive_weight > 0:
            idm = contrastive_idm(emb, mask, window=self.idm_window, margin=self.idm_margin)
            idm_pair = (idm[0::2] + idm[1::2]).mean()
            metrics["align/idm"] = idm_pair.detach()
            loss = loss + self.contrastive_weight * idm_pair
        return loss, metrics, plan

    def forward(self, emb: Tensor, mask: Tensor, *, step: int = 0) -> LossOutput:
        check_batch(emb, mask)
        with float32_math(emb.device):
            loss, metrics, plan = self.alignment_terms(emb.float(), mask)
        return LossOutput(loss=loss, metrics=metrics, couplings={"align": plan[:1]})
