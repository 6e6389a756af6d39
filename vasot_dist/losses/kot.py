"""KOT: the plain Kantorovich baseline for ablations -- no structure, no temporal prior, no virtual frame.

Per pair (x, y): ``T = sinkhorn(1 - X Y^T, uniform marginals over real frames, eps)`` (balanced entropic OT,
log domain, under no_grad), then VAOT's pseudo-label cross-entropy (:func:`.vaot.alignment_cross_entropy`)
with rows scaled so each real frame of x carries 1 (x -> y; ``symmetric`` adds y -> x).
"""

from __future__ import annotations

import torch
from torch import Tensor

from vasot_dist.config.methods import KOTConfig
from vasot_dist.ot import sinkhorn

from .base import LossOutput, MethodLoss, method_loss
from .common import check_batch, cosine_cost, float32_math, pair_targets, plan_row_entropy, split_pairs
from .vaot import alignment_cross_entropy


@method_loss("kot")
class KOTLoss(MethodLoss):
    """Balanced entropic OT pseudo-labels on the cosine cost (module docstring)."""

    settings: KOTConfig

    @torch.no_grad()
    def plan(self, x: Tensor, mask_x: Tensor, y: Tensor, mask_y: Tensor) -> Tensor:
        """Balanced plan (B, N, M) scaled by the real frames of x (each real row sums to 1), detached."""
        cost = cosine_cost(x.detach().float(), y.detach().float())
        s = self.settings
        raw = sinkhorn(cost, eps=s.eps, n_iters=s.n_iters, tol=s.tol, mask_x=mask_x, mask_y=mask_y, validate=False)
        return raw * mask_x.sum(dim=1).to(raw.dtype).view(-1, 1, 1)

    def forward(self, emb: Tensor, mask: Tensor, *, step: int = 0) -> LossOutput:
        check_batch(emb, mask)
        with float32_math(emb.device):
            x, mx, y, my = split_pairs(emb.float(), mask)
            plan = self.plan(x, mx, y, my)
            t_xy, t_yx = pair_targets(plan, mx, my, virtual=False)
            loss_xy, loss_yx = alignment_cross_entropy(
                x, mx, y, my, t_xy, t_yx if self.settings.symmetric else None, self.settings.tau
            )
        metrics = {"align/ce_xy": loss_xy.detach(), "align/plan_entropy": plan_row_entropy(t_xy, mx)}
        loss = loss_xy
        if loss_yx is not None:
            metrics["align/ce_yx"] = loss_yx.detach()
            loss = loss + loss_yx
        return LossOutput(loss=loss, metrics=metrics, couplings={"align": plan[:1]})
