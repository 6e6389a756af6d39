"""VASOT: joint alignment and segmentation with one encoder and one set of prototypes (Ali et al., ICCV 2025).

Per pair (x, y) of one activity (``docs/methods.md#vasot``):

    L = L_seg(x) + L_seg(y) + beta * L_align(x, y)        (beta on the alignment term, as coded; beta 1)

* ``L_seg``: ASOT's pseudo-label cross-entropy (:mod:`.asot`), frames -> actions, at ``settings.segment``.
  The ASOT problems of every x and y of the batch are ONE ``segment_asot`` call: the batch already holds them
  padded to a common length with masks, and a padded problem's plan equals the plan of the video alone.
  ``L_seg(x)`` averages over the real frames of the x videos, ``L_seg(y)`` over those of the y videos.
* ``L_align``: VAOT's loss (:func:`.vaot.alignment_terms`) at ``settings.align``, with the virtual frame
  PREPENDED on both sides (the reference appends the column and drops index 0, shifting every pseudo-label by
  one column: not copied).

:meth:`VASOTLoss.segment` decodes every video with ASOT at ``settings.decode``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vasot_dist.config.methods import VASOTConfig

from .asot import actions_used, asot_logits_and_plan, decode_segments
from .base import LossOutput, PrototypeLoss, method_loss
from .common import check_batch, float32_math, plan_row_entropy, soft_cross_entropy, split_pairs
from .vaot import alignment_terms


@method_loss("vasot")
class VASOTLoss(PrototypeLoss):
    """VASOT loss (module docstring): a pair method that owns ``prototypes`` (K, embed_dim)."""

    settings: VASOTConfig

    def forward(self, emb: Tensor, mask: Tensor, *, step: int = 0) -> LossOutput:
        check_batch(emb, mask)
        split_pairs(emb, mask)  # the pair layout is checked before any solve
        s = self.settings
        with float32_math(emb.device):
            emb = emb.float()
            # one solve for the x and the y videos together (rows 0::2 and 1::2 of the same padded batch)
            logits, seg_plan = asot_logits_and_plan(emb, mask, self.prototypes().float(), s.segment, s.tau)
            seg_x = soft_cross_entropy(seg_plan[0::2], logits[0::2], mask[0::2])
            seg_y = soft_cross_entropy(seg_plan[1::2], logits[1::2], mask[1::2])
            align, metrics, align_plan = alignment_terms(s, emb, mask)
            loss = seg_x + seg_y + s.beta * align
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
    def segment(self, emb: Tensor, mask: Tensor) -> Tensor:
        """Labels (B, T) of every video from ASOT at ``settings.decode``, -1 at padding."""
        check_batch(emb, mask)
        return decode_segments(self.settings.decode, emb, mask, self.prototypes())
