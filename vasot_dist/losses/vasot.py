"""VASOT: joint alignment and segmentation with one encoder and one set of prototypes (Ali et al., ICCV 2025).

Per pair (x, y) of one activity (METHODS.md "VASOT"):

    L = L_seg(x) + L_seg(y) + beta * L_align(x, y)        (beta on the alignment term, as coded; beta 1)

* ``L_seg``: ASOT's pseudo-label cross-entropy (:mod:`.asot`), frames -> actions, actions-unbalanced
  (hard-coded in the reference), training eps/alpha/r/lambda/rho.  The ASOT problems of every x and y of the
  batch are ONE ``segment_asot`` call: the batch already holds them padded to a common length with masks,
  and a padded problem's plan equals the plan of the video alone.  ``L_seg(x)`` averages over the real frames
  of the x videos, ``L_seg(y)`` over those of the y videos.
* ``L_align``: VAOT's loss (:mod:`.vaot`) with the virtual frame PREPENDED on both sides (the reference
  appends the column and drops index 0, shifting every pseudo-label by one column: not copied).

:meth:`VASOTLoss.segment` decodes every video with ASOT at the evaluation settings, as :class:`ASOTLoss`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from vasot_dist.models import ActionPrototypes

from .asot import ASOTSettings, actions_used, asot_logits_and_plan
from .base import LossOutput, MethodLoss
from .common import (
    check_batch,
    cosine_cost,
    float32_math,
    masked_argmax_labels,
    plan_row_entropy,
    soft_cross_entropy,
)
from .vaot import AlignSettings, VAOTLoss


class VASOTLoss(MethodLoss):
    """VASOT loss (module docstring): a pair method that owns ``prototypes`` (K, embed_dim).

    Args:
        num_actions, embed_dim: K and D.
        seg_settings / eval_settings: ASOT training / decoding arguments (actions-unbalanced forced in
            training, as the reference hard-codes).
        align_settings: VAOT's ``align_fgw`` arguments.
        beta: weight of the alignment term.
        tau: softmax temperature of both cross-entropies.
        symmetric, contrastive_weight: as :class:`VAOTLoss`.
    """

    needs_pairs = True

    def __init__(
        self,
        num_actions: int,
        embed_dim: int,
        *,
        seg_settings: ASOTSettings | None = None,
        eval_settings: ASOTSettings | None = None,
        align_settings: AlignSettings | None = None,
        beta: float = 1.0,
        tau: float = 0.1,
        symmetric: bool = False,
        contrastive_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.prototypes = ActionPrototypes(num_actions, embed_dim)
        seg = seg_settings or ASOTSettings()
        self.seg_settings = dataclasses.replace(seg, unbalanced_frames=False, unbalanced_actions=True)
        self.eval_settings = eval_settings or dataclasses.replace(
            seg, eps=0.04, alpha=0.6, lambda_actions=0.01
        )
        self.align = VAOTLoss(
            align_settings, tau=tau, symmetric=symmetric, contrastive_weight=contrastive_weight
        )
        self.beta = beta
        self.tau = tau

    @classmethod
    def from_config(cls, cfg: Any) -> VASOTLoss:
        m = cfg.method
        return cls(
            cfg.model.num_actions, cfg.model.embed_dim, seg_settings=ASOTSettings.train_from(cfg.ot),
            eval_settings=ASOTSettings.eval_from(cfg.ot), align_settings=AlignSettings.from_config(cfg),
            beta=m.beta, tau=m.tau, symmetric=m.symmetric, contrastive_weight=m.contrastive_weight,
        )  # fmt: skip

    def forward(self, emb: Tensor, mask: Tensor, *, step: int = 0) -> LossOutput:
        check_batch(emb, mask)
        if emb.shape[0] % 2:
            raise ValueError(
                f"VASOT needs an even batch of videos (pairs at rows 2i, 2i+1), got B={emb.shape[0]}"
            )
        with float32_math(emb.device):
            emb = emb.float()
            # one solve for the x and the y videos together (rows 0::2 and 1::2 of the same padded batch)
            logits, seg_plan = asot_logits_and_plan(
                emb, mask, self.prototypes().float(), self.seg_settings, self.tau
            )
            seg_x = soft_cross_entropy(seg_plan[0::2], logits[0::2], mask[0::2])
            seg_y = soft_cross_entropy(seg_plan[1::2], logits[1::2], mask[1::2])
            align, metrics, align_plan = self.align.alignment_terms(emb, mask)
            loss = seg_x + seg_y + self.beta * align
        metrics = {
            **metrics,
            "seg/ce_x": seg_x.detach(),
            "seg/ce_y": seg_y.detach(),
            "seg/plan_entropy": plan_row_entropy(seg_plan, mask),
            "seg/actions_used": actions_used(seg_plan, mask),
            "align/loss": align.detach(),
        }
        return LossOutput(
            loss=loss, metrics=metrics, couplings={"align": align_plan[:1], "seg": seg_plan[:1]}
        )

    @torch.no_grad()
    def segment(self, emb: Tensor, mask: Tensor, *, decode: dict | None = None) -> Tensor:
        """Labels (B, T) of every video from ASOT at the evaluation settings (``decode`` overrides), -1 at padding."""
        check_batch(emb, mask)
        settings = self.eval_settings.with_overrides(decode)
        with float32_math(emb.device):
            plan = settings.solve(cosine_cost(emb.float(), self.prototypes().float()), mask)
        return masked_argmax_labels(plan, mask)
