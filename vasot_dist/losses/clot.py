"""CLOT: closed-loop OT, three ASOT problems per video (Bueno-Benito & Dimiccoli, ICCV 2025; docs/methods.md).

The encoder's embeddings E and the prototypes A go through :class:`~vasot_dist.models.CLOTHead`: feature
dispatching gives frames F, the parallel decoder segment embeddings S (K + delta learnable queries), the
cross-attention refinement frames F_R.  Each level is an ASOT pseudo-label problem (stop-gradient plans at
the training eps/alpha/r/lambda/rho, :mod:`.asot`):

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
flows through a plan.  :meth:`CLOTLoss.segment` decodes with ASOT at the evaluation settings from the refined
frames (default) or the dispatched frames (``decode_level="frames"``, cost with the SW term).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from vasot_dist.models import ActionPrototypes, CLOTHead, CLOTOutput
from vasot_dist.ot import circular_sw_cost
from vasot_dist.ot.sliced import random_directions

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

DECODE_LEVELS = ("refined", "frames")


class CLOTLoss(MethodLoss):
    """CLOT's three-level loss (module docstring). Owns ``prototypes`` and ``head`` (a :class:`CLOTHead`).

    Args:
        num_actions, embed_dim: K and D (D even and divisible by ``num_heads``).
        train_settings / eval_settings: ASOT arguments in training / decoding.
        tau: softmax temperature.
        sw_weight, sw_projections, sw_radius: the SW cost term of level 1.
        delta, num_layers, num_heads, dropout, refine_temperature: the head (``n_seg = K + delta``).
        seed: seeds the SW projections (with the step).
        decode_level: embeddings :meth:`segment` decodes ("refined" or "frames").
        dispatch: where feature dispatching applies (:class:`~vasot_dist.models.CLOTHead`).
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
        sw_weight: float = 1.0,
        sw_projections: int = 150,
        sw_radius: float = 2.0,
        delta: int = 0,
        num_layers: int = 2,
        num_heads: int = 8,
        dropout: float = 0.5,
        refine_temperature: float = 0.1,
        seed: int = 0,
        decode_level: str = "refined",
        dispatch: str = "all",
    ) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        if sw_weight < 0:
            raise ValueError(f"sw_weight must be >= 0, got {sw_weight}")
        if decode_level not in DECODE_LEVELS:
            raise ValueError(f"decode_level must be one of {DECODE_LEVELS}, got {decode_level!r}")
        self.prototypes = ActionPrototypes(num_actions, embed_dim)
        self.head = CLOTHead(
            embed_dim, num_actions, delta=delta, num_layers=num_layers, num_heads=num_heads, dropout=dropout,
            refine_temperature=refine_temperature, dispatch=dispatch,
        )  # fmt: skip
        self.train_settings = train_settings or ASOTSettings()
        self.segment_settings = dataclasses.replace(self.train_settings, temporal_prior=0.0)
        self.eval_settings = eval_settings or dataclasses.replace(
            self.train_settings, eps=0.04, alpha=0.6, lambda_actions=0.01
        )
        self.tau = tau
        self.sw_weight = sw_weight
        self.sw_projections = sw_projections
        self.sw_radius = sw_radius
        self.seed = seed
        self.decode_level = decode_level

    @classmethod
    def from_config(cls, cfg: Any) -> CLOTLoss:
        m = cfg.method
        return cls(
            cfg.model.num_actions, cfg.model.embed_dim, train_settings=ASOTSettings.train_from(cfg.ot),
            eval_settings=ASOTSettings.eval_from(cfg.ot), tau=m.tau, sw_weight=m.sw_weight,
            sw_projections=m.sw_projections, sw_radius=m.sw_radius, delta=m.clot_queries_delta,
            num_layers=m.clot_decoder_layers, dropout=m.clot_decoder_dropout,
            refine_temperature=m.clot_refine_temperature, seed=cfg.train.seed,
            decode_level=m.clot_decode_level, dispatch=m.clot_dispatch,
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
        if self.sw_weight == 0:
            return torch.zeros(frames.shape[0], frames.shape[1], prototypes.shape[0], device=frames.device)
        sw = circular_sw_cost(
            frames.detach().float(), prototypes.detach().float(), radius=self.sw_radius, projections=projections
        )
        return self.sw_weight * sw

    # torch.compile cannot trace a torch.Generator: the draw runs eagerly, outside any context manager, so the
    # compiled loss splits into two graphs around it instead of falling back to eager.
    @torch.compiler.disable
    def projections(self, dim: int, device: torch.device, step: int) -> Tensor:
        """(P, D) unit directions from a generator seeded by (seed, step): fresh every step, equal on every rank."""
        gen = torch.Generator(device=device).manual_seed(self.seed * 1_000_003 + step)
        return random_directions(dim, self.sw_projections, generator=gen, device=device).T

    def forward(self, emb: Tensor, mask: Tensor, *, step: int = 0) -> LossOutput:
        check_batch(emb, mask)
        theta = self.projections(emb.shape[-1], emb.device, step)
        with float32_math(emb.device):
            protos = self.prototypes().float()
            out = self.run_head(emb, protos, mask)
            s = self.train_settings
            seg_mask = torch.ones(out.segments.shape[:2], dtype=torch.bool, device=emb.device)
            logits_f, plan_f = asot_logits_and_plan(
                out.frames, mask, protos, s, self.tau, self.sw_cost(out.frames, protos, theta)
            )
            logits_s, plan_s = asot_logits_and_plan(out.segments, seg_mask, protos, self.segment_settings, self.tau)
            logits_r, plan_r = asot_logits_and_plan(out.refined, mask, protos, s, self.tau)
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
    def segment(self, emb: Tensor, mask: Tensor, *, decode: dict | None = None) -> Tensor:
        """Labels (B, T) from ASOT at the evaluation settings (``decode`` overrides) on the decode level, -1 at padding."""
        check_batch(emb, mask)
        settings = self.eval_settings.with_overrides(decode)
        theta = self.projections(emb.shape[-1], emb.device, step=0)
        with float32_math(emb.device):
            protos = self.prototypes().float()
            out = self.run_head(emb, protos, mask)
            if self.decode_level == "refined":
                cost = cosine_cost(out.refined, protos)
            else:
                cost = cosine_cost(out.frames, protos) + self.sw_cost(out.frames, protos, theta)
            plan = settings.solve(cost, mask)
        return masked_argmax_labels(plan, mask)
