"""ASOT: pseudo-label self-training with action-segmentation OT couplings (Xu & Gould, CVPR 2024).

Loss (paper Eq. 6-7, reference ``VideoSSL.training_step``; METHODS.md "ASOT"):

    T = segment_asot(1 - X A^T; eps, alpha, r, lambda_*, rho)    (under no_grad: stop-gradient)
    P = softmax(X A^T / tau),  L = -mean_{real frames i} sum_k T_ik log P_ik

with X the L2-normalised frame embeddings and A the learnable prototypes (``ActionPrototypes``, k-means
initialised by the trainer from the untrained encoder).  The temporal prior rho R is added in training
and, when ``ot.eval_temporal_prior`` (default, as coded), at decoding too.  :meth:`ASOTLoss.segment`
decodes with ASOT at the evaluation settings (eps 0.04, alpha 0.6, lambda_actions 0.01) and returns the
argmax action of each frame.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from vasot_dist.models import ActionPrototypes
from vasot_dist.ot import segment_asot

from .base import LossOutput, MethodLoss
from .common import (
    check_batch,
    cosine_cost,
    float32_math,
    masked_argmax_labels,
    plan_row_entropy,
    soft_cross_entropy,
)


@dataclass(frozen=True)
class ASOTSettings:
    """Arguments of one ``segment_asot`` solve (the training or the decoding set)."""

    eps: float = 0.07
    alpha: float = 0.3
    radius: float = 0.04
    lambda_frames: float = 0.1
    lambda_actions: float = 0.05
    unbalanced_frames: bool = False
    unbalanced_actions: bool = True
    temporal_prior: float = 0.2
    n_iters: int = 25
    inner_iters: int = 1

    @classmethod
    def train_from(cls, ot: Any) -> ASOTSettings:
        """Training settings from ``RunConfig.ot``."""
        return cls(
            eps=ot.eps, alpha=ot.alpha, radius=ot.radius, lambda_frames=ot.lambda_frames,
            lambda_actions=ot.lambda_actions, unbalanced_frames=ot.unbalanced_frames,
            unbalanced_actions=ot.unbalanced_actions, temporal_prior=ot.temporal_prior,
            n_iters=ot.n_iters, inner_iters=ot.inner_iters,
        )  # fmt: skip

    @classmethod
    def eval_from(cls, ot: Any) -> ASOTSettings:
        """Decoding settings: eval eps/alpha/lambda_actions, rho R only if ``ot.eval_temporal_prior``."""
        return dataclasses.replace(
            cls.train_from(ot),
            eps=ot.eval_eps, alpha=ot.eval_alpha, lambda_actions=ot.eval_lambda_actions,
            temporal_prior=ot.temporal_prior if ot.eval_temporal_prior else 0.0,
        )  # fmt: skip

    def with_overrides(self, overrides: dict | None) -> ASOTSettings:
        """A copy with ``overrides`` applied; unknown keys raise ValueError naming the valid ones."""
        if not overrides:
            return self
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"unknown decode setting(s) {unknown}; valid keys: {sorted(names)}")
        return dataclasses.replace(self, **overrides)

    @torch.no_grad()
    def solve(self, cost: Tensor, mask: Tensor) -> Tensor:
        """cost: (B, N, K) visual cost (no temporal prior); mask: (B, N) -> plan (B, N, K), rows sum to 1.

        Runs without autograd on a detached float32 copy: the plan is a constant pseudo-label.
        """
        return segment_asot(cost.detach().float(), mask, **dataclasses.asdict(self))


def actions_used(plan: Tensor, mask: Tensor) -> Tensor:
    """Fraction of the K actions that are the argmax of at least one real frame of the batch (scalar)."""
    onehot = torch.nn.functional.one_hot(plan.argmax(dim=-1), plan.shape[-1]) * mask.unsqueeze(-1)
    return (onehot.sum(dim=(0, 1)) > 0).float().mean()


def asot_logits_and_plan(
    emb: Tensor,
    mask: Tensor,
    prototypes: Tensor,
    settings: ASOTSettings,
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
    return logits, settings.solve(cost, mask)


class ASOTLoss(MethodLoss):
    """ASOT pseudo-label cross-entropy (module docstring). Owns ``prototypes`` (K, embed_dim).

    Args:
        num_actions: K.
        embed_dim: D of the encoder's embeddings.
        train_settings / eval_settings: ``segment_asot`` arguments in training / decoding.
        tau: softmax temperature (0.1).
    """

    needs_pairs = False

    def __init__(
        self,
        num_actions: int,
        embed_dim: int,
        *,
        train_settings: ASOTSettings | None = None,
        eval_settings: ASOTSettings | None = None,
        tau: float = 0.1,
    ) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        self.prototypes = ActionPrototypes(num_actions, embed_dim)
        self.train_settings = train_settings or ASOTSettings()
        self.eval_settings = eval_settings or dataclasses.replace(
            self.train_settings, eps=0.04, alpha=0.6, lambda_actions=0.01
        )
        self.tau = tau

    @classmethod
    def from_config(cls, cfg: Any) -> ASOTLoss:
        return cls(
            cfg.model.num_actions, cfg.model.embed_dim, train_settings=ASOTSettings.train_from(cfg.ot),
            eval_settings=ASOTSettings.eval_from(cfg.ot), tau=cfg.method.tau,
        )  # fmt: skip

    def forward(self, emb: Tensor, mask: Tensor, *, step: int = 0) -> LossOutput:
        check_batch(emb, mask)
        with float32_math(emb.device):
            logits, plan = asot_logits_and_plan(
                emb.float(), mask, self.prototypes().float(), self.train_settings, self.tau
            )
            loss = soft_cross_entropy(plan, logits, mask)
        metrics = {
            "asot/ce": loss.detach(),
            "asot/plan_entropy": plan_row_entropy(plan, mask),
            "asot/actions_used": actions_used(plan, mask),
        }
        return LossOutput(loss=loss, metrics=metrics, couplings={"asot": plan[:1]})

    @torch.no_grad()
    def segment(self, emb: Tensor, mask: Tensor, *, decode: dict | None = None) -> Tensor:
        """Labels (B, T): argmax of the ASOT decoding plan at the evaluation settings, -1 at padding.

        ``decode`` overrides fields of :class:`ASOTSettings` (e.g. ``{"eps": 0.01}``).
        """
        check_batch(emb, mask)
        settings = self.eval_settings.with_overrides(decode)
        with float32_math(emb.device):
            plan = settings.solve(cosine_cost(emb.float(), self.prototypes().float()), mask)
        return masked_argmax_labels(plan, mask)
