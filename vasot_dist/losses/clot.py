"""CLOT: closed-loop OT, three ASOT problems per video (Bueno-Benito & Dimiccoli, ICCV 2025; ``docs/methods.md#clot``).

The encoder's embeddings E and the prototypes A go through :class:`~vasot_dist.models.CLOTHead`: feature
dispatching gives frames F, the parallel decoder segment embeddings S (K + delta learnable queries), the
cross-attention refinement frames F_R.  Each level is an ASOT pseudo-label problem (stop-gradient plans at
``settings.segment``, :mod:`.asot`):

1. F -> A with solver cost ``1 - F A^T + w_sw SW(F, A)`` (+ rho R inside the solver).  SW is the circular
   generalised sliced-Wasserstein cost ``SW_ij = ||g(f_i) - g(a_j)||`` (150 projections, radius 2, each point's
   projection vector normalised, NOT sorted along frames, :func:`vasot_dist.ot.circular_sw_cost`), with fresh
   projections every step from a generator seeded by ``(seed, step)``.  SW is used at this level only (paper
   supplement).
2. S -> A: the decoder's segments, in query order, as a sequence of ``n_seg`` items, without rho R: queries
   have no temporal order (the GW band floor(n_seg r) is empty for any K below 1/r, so only rho R mattered).
3. F_R -> A with cost ``1 - F_R A^T``.

    L = CE(T_F, softmax(F A^T / tau)) + CE(T_S, softmax(S A^T / tau)) + CE(T_R, softmax(F_R A^T / tau))

each averaged over real frames (segments).  Gradients reach the encoder, the head and the prototypes; none
flows through a plan.  :meth:`CLOTLoss.segment` decodes with ASOT at ``settings.decode`` from the refined
frames (default) or the dispatched frames (``decode_level="frames"``, cost with the SW term).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from vasot_dist.config.methods import CLOTConfig
from vasot_dist.models import CLOTHead, CLOTOutput
from vasot_dist.ot import circular_sw_cost
from vasot_dist.ot.sliced import random_directions

from .asot import actions_used, asot_logits_and_plan, decode_labels
from .base import LossOutput, PrototypeLoss, method_loss
from .common import check_batch, cosine_cost, float32_math, plan_row_entropy, soft_cross_entropy


@method_loss("clot")
class CLOTLoss(PrototypeLoss):
    """CLOT's three-level loss (module docstring). Owns ``prototypes`` and ``head`` (a :class:`CLOTHead`).

    ``embed_dim`` must be even and divisible by ``settings.decoder_heads``; ``seed`` seeds the SW projections
    (with the step).
    """

    settings: CLOTConfig

    def __init__(self, settings: CLOTConfig | None = None, *, num_actions: int, embed_dim: int, seed: int = 0) -> None:
        super().__init__(settings, num_actions=num_actions, embed_dim=embed_dim, seed=seed)
        s = self.settings
        self.head = CLOTHead(
            embed_dim, num_actions, delta=s.queries_delta, num_layers=s.decoder_layers, num_heads=s.decoder_heads,
            dropout=s.decoder_dropout, refine_temperature=s.refine_temperature, dispatch=s.dispatch,
        )  # fmt: skip

    def run_head(self, emb: Tensor, prototypes: Tensor, mask: Tensor) -> CLOTOutput:
        """The head in its parameters' dtype (DeepSpeed's bf16 mode keeps the weights in bf16), outputs in float32."""
        dtype = next(self.head.parameters()).dtype
        out = self.head(emb.to(dtype), prototypes.to(dtype), mask)
        return CLOTOutput(
            frames=out.frames.float(), segments=out.segments.float(), refined=out.refined.float(),
            attention=out.attention.float(),
        )  # fmt: skip

    @torch.no_grad()
    def sw_cost(self, frames: Tensor, prototypes: Tensor, projections: Tensor) -> Tensor:
        """``w_sw * SW(F, A)`` (B, N, K), constant; projections: (P, D) from :meth:`projections`."""
        s = self.settings
        if s.sw_weight == 0:
            return torch.zeros(frames.shape[0], frames.shape[1], prototypes.shape[0], device=frames.device)
        sw = circular_sw_cost(
            frames.detach().float(), prototypes.detach().float(), radius=s.sw_radius, projections=projections, validate=False
        )
        return s.sw_weight * sw

    # torch.compile cannot trace a torch.Generator: the draw runs eagerly, outside any context manager, so the
    # compiled loss splits into two graphs around it instead of falling back to eager.
    @torch.compiler.disable
    def projections(self, dim: int, device: torch.device, step: int) -> Tensor:
        """(P, D) unit directions from a generator seeded by (seed, step): fresh every step, equal on every rank."""
        gen = torch.Generator(device=device).manual_seed(self.seed * 1_000_003 + step)
        return random_directions(dim, self.settings.sw_projections, generator=gen, device=device).T

    def forward(self, emb: Tensor, mask: Tensor, *, step: int = 0) -> LossOutput:
        check_batch(emb, mask)
        theta = self.projections(emb.shape[-1], emb.device, step)
        with float32_math(emb.device):
            protos = self.prototypes().float()
            out = self.run_head(emb, protos, mask)
            s = self.settings
            seg_mask = torch.ones(out.segments.shape[:2], dtype=torch.bool, device=emb.device)
            logits_f, plan_f = asot_logits_and_plan(
                out.frames, mask, protos, s.segment, s.tau, self.sw_cost(out.frames, protos, theta)
            )
            # decoder queries have no temporal order: no rho R at this level
            unordered = dataclasses.replace(s.segment, temporal_prior=0.0)
            logits_s, plan_s = asot_logits_and_plan(out.segments, seg_mask, protos, unordered, s.tau)
            logits_r, plan_r = asot_logits_and_plan(out.refined, mask, protos, s.segment, s.tau)
            ce_f = soft_cross_entropy(plan_f, logits_f, mask)
            ce_s = soft_cross_entropy(plan_s, logits_s, seg_mask)
            ce_r = soft_cross_entropy(plan_r, logits_r, mask)
            loss = ce_f + ce_s + ce_r
        metrics = {
            "clot/ce_frames": ce_f.detach(),
            "clot/ce_segments": ce_s.detach(),
            "clot/ce_refined": ce_r.detach(),
            "clot/plan_entropy_frames": plan_row_entropy(plan_f, mask),
            "clot/actions_used": actions_used(plan_r, mask),
        }
        return LossOutput(loss=loss, metrics=metrics, couplings={"frames": plan_f[:1], "refined": plan_r[:1]})

    @torch.no_grad()
    def segment(self, emb: Tensor, mask: Tensor) -> Tensor:
        """Labels (B, T) from ASOT at ``settings.decode`` on the ``decode_level`` frames, -1 at padding."""
        check_batch(emb, mask)
        s = self.settings
        theta = self.projections(emb.shape[-1], emb.device, step=0)
        with float32_math(emb.device):
            protos = self.prototypes().float()
            out = self.run_head(emb, protos, mask)
            if s.decode_level == "refined":
                cost = cosine_cost(out.refined, protos)
            else:
                cost = cosine_cost(out.frames, protos) + self.sw_cost(out.frames, protos, theta)
            return decode_labels(s.decode, cost, mask)
