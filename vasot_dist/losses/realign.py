"""REALIGN: fused partial GW couplings with temporal priors as pseudo-labels, plus contrastive regularisers.

The authors' code is not public (``docs/methods.md#realign``); this is our formula, built from the paper's
components (R-FPGWOT coupling, inter-sequence contrastive learning, LAV's contrastive-IDM against collapse)
and the pseudo-label training the other OT methods here use.  Per pair (x, y), batch rows (2i, 2i+1):

1. Coupling (stop-gradient, under no_grad):
   ``T = align_partial_fgw(1 - X Y^T; settings.align)``: transported mass m, Laplace structure scale r
   (fraction of the video), rho R, virtual frame zeta.
   Rows of x are scaled so a fully transported real frame carries 1; the y -> x rows are the transpose
   rescaled likewise (:func:`.common.pair_targets`).  ``w_i = sum_j T_ij`` is the mass frame i sends to real
   frames of y (background frames and frames sent to the virtual sink get ``w_i ~ 0``).
2. Alignment cross-entropy over the matched mass, both directions:
   ``L_xy = sum_i w_i CE(T_i / w_i, softmax_j(<x_i, y_j> / tau)) / sum_i w_i``, rows with ``w_i < 1e-3``
   dropped (``L_yx`` alike on columns).  Rows are renormalised by their transported mass and weighted by it, so
   a partly matched frame counts partly and an unmatched frame not at all.
3. Inter-sequence contrastive term (VAVA/OPEL Eq. 15 form, :func:`.common.plan_contrastive`): each frame's
   best match ``argmax_j T_ij`` is pulled closer than its worst match ``argmin_j T_ij``,
   ``C(X, Y) = softplus((d_best - d_worst) / temperature)`` with ``d`` the squared Euclidean distance and the
   per-frame means weighted by the transported mass ``w`` (unmatched frames do not take part).
4. LAV's contrastive-IDM on each video (:func:`.common.contrastive_idm`) against collapse.

    L = L_xy + L_yx + w_c * (C(X, Y) + IDM(X) + IDM(Y)),       w_c = settings.contrastive_weight.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from vasot_dist.config.methods import PartialAlignSolve, REALIGNConfig
from vasot_dist.ot import align_partial_fgw

from .base import LossOutput, MethodLoss, method_loss
from .common import (
    check_batch,
    contrastive_idm,
    cosine_cost,
    float32_math,
    pair_targets,
    plan_contrastive,
    plan_row_entropy,
    split_pairs,
    squared_distances,
)
from .vaot import alignment_cross_entropy

MIN_ROW_MASS = 1e-3  # a frame that sends less than this share of itself to real frames is "unmatched"


# n_iters x inner_iters fixed iterations: torch.compile would unroll them all (minutes of tracing, far longer
# in inductor), so a compiled loss runs this solve eagerly and compiles the rest.
@torch.compiler.disable
@torch.no_grad()
def solve_partial(solve: PartialAlignSolve, cost: Tensor, mask_x: Tensor, mask_y: Tensor) -> Tensor:
    """cost: (B, N, M) -> partial plan (B, N, M), virtual frame dropped, detached."""
    return align_partial_fgw(cost.detach().float(), mask_x, mask_y, **dataclasses.asdict(solve), validate=False)


def _matched_mass(target: Tensor, mask: Tensor) -> Tensor:
    mass = target.sum(dim=-1)
    return torch.where(mask & (mass >= MIN_ROW_MASS), mass, torch.zeros_like(mass))


def _renormalised(target: Tensor, mass: Tensor) -> Tensor:
    return target / mass.clamp(min=MIN_ROW_MASS).unsqueeze(-1)


@method_loss("realign")
class REALIGNLoss(MethodLoss):
    """REALIGN loss (module docstring); a pair method without learnable parts."""

    settings: REALIGNConfig

    def forward(self, emb: Tensor, mask: Tensor, *, step: int = 0) -> LossOutput:
        check_batch(emb, mask)
        s = self.settings
        with float32_math(emb.device):
            emb = emb.float()
            x, mx, y, my = split_pairs(emb, mask)
            cost = cosine_cost(x.detach(), y.detach())
        # Outside the context manager: a compiled loss can only leave its graph for the eager solve there.
        plan = solve_partial(s.align, cost, mx, my)
        with float32_math(emb.device):
            t_xy, t_yx = pair_targets(plan, mx, my, virtual=s.align.virtual_cost is not None)
            wx, wy = _matched_mass(t_xy, mx), _matched_mass(t_yx, my)
            loss_xy, loss_yx = alignment_cross_entropy(
                x, mx, y, my, _renormalised(t_xy, wx), _renormalised(t_yx, wy), s.tau, row_weights=(wx, wy)
            )
            loss = loss_xy + loss_yx
            metrics = {
                "realign/ce_xy": loss_xy.detach(),
                "realign/ce_yx": loss_yx.detach(),
                "realign/real_mass": (t_xy.sum(dim=(1, 2)) / mx.sum(dim=1)).mean(),
                "realign/matched_frames": ((wx > 0.5).sum(dim=1) / mx.sum(dim=1)).float().mean(),
                "realign/plan_entropy": plan_row_entropy(t_xy, mx & (wx > 0)),
            }
            if s.contrastive_weight > 0:
                inter = plan_contrastive(
                    squared_distances(x, y), t_xy, mx, my, temperature=s.temperature,
                    row_weights=wx, col_weights=wy,
                ).mean()  # fmt: skip
                idm = contrastive_idm(emb, mask, window=s.idm_window, margin=s.idm_margin)
                idm_pair = (idm[0::2] + idm[1::2]).mean()
                metrics["realign/inter"] = inter.detach()
                metrics["realign/idm"] = idm_pair.detach()
                loss = loss + s.contrastive_weight * (inter + idm_pair)
        return LossOutput(loss=loss, metrics=metrics, couplings={"align": plan[:1]})
