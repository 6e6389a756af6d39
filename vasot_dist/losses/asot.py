"""ASOT: pseudo-label self-training with action-segmentation OT couplings (Xu & Gould, CVPR 2024).

Loss (paper Eq. 6-7, the authors' ``VideoSSL.training_step``; ``docs/methods.md#asot``):

    T = segment_asot(1 - X A^T; settings.segment)    (under no_grad: stop-gradient)
    P = softmax(X A^T / tau),  L = -mean_{real frames i} sum_k T_ik log P_ik

with X the L2-normalised frame embeddings and A the learnable prototypes (``ActionPrototypes``, k-means
initialised by the trainer from the untrained encoder).  The temporal prior rho R is the solver's
``temporal_prior``.  :meth:`ASOTLoss.segment` decodes with ``settings.decode`` (an independent solve: the
paper's "train" and "train & test" ablations set one or both) and returns the argmax action of each frame.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from vasot_dist.config.methods import ASOTConfig, SegmentSolve
from vasot_dist.ot import segment_asot

from .base import LossOutput, PrototypeLoss, method_loss
from .common import (
    check_batch,
    cosine_cost,
    float32_math,
    masked_argmax_labels,
    plan_row_entropy,
    soft_cross_entropy,
)


@torch.no_grad()
def solve_segment(solve: SegmentSolve, cost: Tensor, mask: Tensor) -> Tensor:
    """cost: (B, N, K) visual cost (no temporal prior); mask: (B, N) -> plan (B, N, K), real rows sum to 1.

    Runs without autograd on a detached float32 copy: the plan is a constant pseudo-label.
    """
    return segment_asot(cost.detach().float(), mask, **dataclasses.asdict(solve), validate=False)


def actions_used(plan: Tensor, mask: Tensor) -> Tensor:
    """Fraction of the K actions that are the argmax of at least one real frame of the batch (scalar)."""
    onehot = torch.nn.functional.one_hot(plan.argmax(dim=-1), plan.shape[-1]) * mask.unsqueeze(-1)
    return (onehot.sum(dim=(0, 1)) > 0).float().mean()


def asot_logits_and_plan(
    emb: Tensor,
    mask: Tensor,
    prototypes: Tensor,
    solve: SegmentSolve,
    tau: float,
    cost_extra: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """One ASOT level: ``(logits X A^T / tau, stop-gradient plan)`` for the pseudo-label cross-entropy.

    emb: (B, N, D) unit norm; mask: (B, N); prototypes: (K, D) unit norm; ``cost_extra`` (B, N, K) is added
    to the solver's cost ``1 - X A^T`` only (CLOT's sliced-Wasserstein term).  Returns logits (B, N, K),
    differentiable, and the plan (B, N, K), detached (each real row sums to 1).
    """
    logits = emb @ prototypes.transpose(0, 1) / tau
    cost = cosine_cost(emb.detach(), prototypes.detach())
    if cost_extra is not None:
        cost = cost + cost_extra.detach()
    return logits, solve_segment(solve, cost, mask)


def decode_labels(solve: SegmentSolve, cost: Tensor, mask: Tensor) -> Tensor:
    """Labels (B, N): argmax of the ASOT plan of ``cost`` (B, N, K) under ``solve``, -1 at padding."""
    return masked_argmax_labels(solve_segment(solve, cost, mask), mask)


def decode_segments(solve: SegmentSolve, emb: Tensor, mask: Tensor, prototypes: Tensor) -> Tensor:
    """Labels (B, T): argmax of the ASOT plan of ``1 - emb A^T`` under ``solve``, -1 at padding."""
    with float32_math(emb.device):
        return decode_labels(solve, cosine_cost(emb.float(), prototypes.float()), mask)


@method_loss("asot")
class ASOTLoss(PrototypeLoss):
    """ASOT pseudo-label cross-entropy (module docstring). Owns ``prototypes`` (K, embed_dim)."""

    settings: ASOTConfig

    def forward(self, emb: Tensor, mask: Tensor, *, step: int = 0) -> LossOutput:
        check_batch(emb, mask)
        s = self.settings
        with float32_math(emb.device):
            logits, plan = asot_logits_and_plan(emb.float(), mask, self.prototypes().float(), s.segment, s.tau)
            loss = soft_cross_entropy(plan, logits, mask)
        metrics = {
            "asot/ce": loss.detach(),
            "asot/plan_entropy": plan_row_entropy(plan, mask),
            "asot/actions_used": actions_used(plan, mask),
        }
        return LossOutput(loss=loss, metrics=metrics, couplings={"asot": plan[:1]})

    @torch.no_grad()
    def segment(self, emb: Tensor, mask: Tensor) -> Tensor:
        """Labels (B, T): argmax of the ASOT plan at ``settings.decode``, -1 at padding."""
        check_batch(emb, mask)
        return decode_segments(self.settings.decode, emb, mask, self.prototypes())
