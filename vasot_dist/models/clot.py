"""CLOT's network modules (Bueno-Benito & Dimiccoli, ICCV 2025; ``docs/methods.md#clot``).

Encoder output F (B, N, D) → :class:`FeatureDispatching` → frames F → :class:`ParallelDecoder` → segments
S (B, n_seg, D) → :class:`CrossAttentionRefinement` → refined frames F_R. :class:`CLOTHead` chains them.
The three OT problems (F→A, S→A, F_R→A) and their losses live in ``vasot_dist.losses``.

Masks are boolean (B, N), True for real frames. Every module here is *padding exact*: the outputs at
real positions equal those of the unpadded video processed alone.

Choices where the released code (elenabbbuenob/CLOT @ 0a43eb9) and the paper leave a gap:
* the dispatched frames are re-normalised in :class:`CLOTHead` (costs are cosines of unit vectors);
* the decoder follows FUTR/DETR: zero targets plus learnable query embeddings added to queries and keys at
  every layer; sinusoidal positions added to the memory for keys *and values* (as the released
  ``transformer.py`` does); final LayerNorm; FFN width 4·D (FUTR's instantiation); no positional dropout;
* the refinement temperature defaults to 0.1 (its value is not in the supplement as extracted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def _check_mask(mask: torch.Tensor | None, b: int, n: int, name: str = "mask") -> None:
    if mask is not None and (mask.dtype != torch.bool or tuple(mask.shape) != (b, n)):
        raise ValueError(f"{name} must be bool of shape {(b, n)}, got {mask.dtype} {tuple(mask.shape)}")


def _prototypes_batch(prototypes: torch.Tensor, b: int, d: int) -> torch.Tensor:
    if prototypes.dim() == 2:
        prototypes = prototypes.unsqueeze(0).expand(b, -1, -1)
    if prototypes.dim() != 3 or prototypes.shape[0] != b or prototypes.shape[2] != d:
        raise ValueError(f"prototypes must be (K, {d}) or ({b}, K, {d}), got {tuple(prototypes.shape)}")
    return prototypes


class FeatureDispatching(nn.Module):
    """Frames dispatched to their most similar prototype and redistributed (CLOT §3.1, ``FeatureDispatcher``).

    S = σ(β + α·A Xᵀ) (B, K, N), learnable scalars α (init 1), β (init 0); M = one-hot argmax_k S per frame;
    out_k = (Σ_t M_kt S_kt x_t + a_k) / (Σ_t M_kt + 1); x_t ← x_t + Σ_k S_kt out_k (soft S redistributes).
    Padded frames are excluded from every cluster sum and returned unchanged.
    """

    def __init__(self, alpha_init: float = 1.0, beta_init: float = 0.0, learnable: bool = True) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(float(alpha_init)), requires_grad=learnable)
        self.beta = nn.Parameter(torch.tensor(float(beta_init)), requires_grad=learnable)

    def forward(
        self, x: torch.Tensor, prototypes: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x: (B, N, D); prototypes: (K, D) or (B, K, D); mask: (B, N) → (B, N, D)."""
        b, n, d = x.shape
        _check_mask(mask, b, n)
        a = _prototypes_batch(prototypes, b, d).to(x.dtype)
        sim = torch.sigmoid(self.beta + self.alpha * (a @ x.transpose(1, 2)))  # (B, K, N)
        hard = F.one_hot(sim.argmax(dim=1), a.shape[1]).transpose(1, 2).to(sim.dtype)  # (B, K, N)
        if mask is not None:
            hard = hard * mask.unsqueeze(1).to(sim.dtype)
        out = ((hard * sim) @ x + a) / (hard.sum(dim=2, keepdim=True) + 1.0)  # (B, K, D)
        update = sim.transpose(1, 2) @ out  # (B, N, D)
        if mask is not None:
            update = update * mask.unsqueeze(-1).to(update.dtype)
        return x + update


def sinusoidal_positions(n: int, d: int, device: torch.device | None = None) -> torch.Tensor:
    """(n, d) sinusoidal encoding, PE[t, 2i] = sin(t / 10000^{2i/d}), PE[t, 2i+1] = cos(·) (d even).

    Computed on demand, so videos of any length work (the reference caps at max_len 3000).
    """
    if d % 2:
        raise ValueError(f"sinusoidal positions need an even dimension, got {d}")
    pos = torch.arange(n, device=device, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, d, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d, device=device)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe


class DecoderLayer(nn.Module):
    """DETR post-norm decoder layer: self-attn → add & norm → cross-attn to memory → add & norm → FFN → add & norm."""

    def __init__(self, dim: int, num_heads: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(dim, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(
        self,
        tgt: torch.Tensor,
        memory: torch.Tensor,
        query_pos: torch.Tensor,
        memory_pos: torch.Tensor,
        memory_key_padding_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """tgt: (B, Q, D); memory: (B, N, D); query_pos: (B, Q, D); memory_pos: (N, D) or (B, N, D);
        memory_key_padding_mask: (B, N), True where a frame is *padding* (nn.MultiheadAttention convention)."""
        q = tgt + query_pos
        tgt = self.norm1(tgt + self.dropout1(self.self_attn(q, q, q, need_weights=False)[0]))
        mem = memory + memory_pos
        attn = self.cross_attn(
            tgt + query_pos, mem, mem, key_padding_mask=memory_key_padding_mask, need_weights=False
        )[0]
        tgt = self.norm2(tgt + self.dropout2(attn))
        ffn = self.linear2(self.dropout(F.relu(self.linear1(tgt))))
        return self.norm3(tgt + self.dropout3(ffn))


class ParallelDecoder(nn.Module):
    """Learnable queries → segment embeddings by cross-attending to the frames (CLOT §3.1, FUTR/DETR decoder).

    Args:
        dim: frame-embedding dimension D (the decoder's d_model; divisible by num_heads).
        num_queries: n_seg = K + δ (CLOT supplement A).
        num_layers: decoder layers (BF 2, YTI 2, 50S-Mid 1, 50S-Eval 4, DA 3).
        num_heads: 8 in CLOT.
        dim_feedforward: FFN width, default 4·D.
        dropout: decoder dropout (BF 0.5, YTI 0.2, 50S-Mid 0.1, 50S-Eval 0.2, DA 0.5).
    """

    def __init__(
        self,
        dim: int,
        num_queries: int,
        num_layers: int = 2,
        num_heads: int = 8,
        dim_feedforward: int | None = None,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if num_queries < 1:
            raise ValueError(f"num_queries (n_seg = K + delta) must be >= 1, got {num_queries}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if dim % num_heads or dim % 2:
            raise ValueError(f"dim must be even and divisible by num_heads={num_heads}, got dim={dim}")
        self.dim = dim
        self.num_queries = num_queries
        ffn = 4 * dim if dim_feedforward is None else dim_feedforward
        self.layers = nn.ModuleList(DecoderLayer(dim, num_heads, ffn, dropout) for _ in range(num_layers))
        self.norm = nn.LayerNorm(dim)
        for p in self.layers.parameters():  # DETR/FUTR Transformer._reset_parameters
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        self.query_embed = nn.Parameter(torch.randn(num_queries, dim))  # nn.Embedding's N(0, 1)

    def forward(self, memory: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """memory: frame embeddings (B, N, D); mask: (B, N) True = real → segments (B, n_seg, D), unit norm.

        A video with no real frame attends to all its positions (avoids NaN; its output is meaningless).
        """
        b, n, d = memory.shape
        if d != self.dim:
            raise ValueError(f"memory must have last dimension {self.dim}, got shape {tuple(memory.shape)}")
        _check_mask(mask, b, n)
        padding = None
        if mask is not None:
            padding = ~(mask | ~mask.any(dim=1, keepdim=True))
        pos = sinusoidal_positions(n, d, memory.device).to(memory.dtype)
        query_pos = self.query_embed.unsqueeze(0).expand(b, -1, -1).to(memory.dtype)
        tgt = torch.zeros_like(query_pos)
        for layer in self.layers:
            tgt = layer(tgt, memory, query_pos, pos, padding)
        return F.normalize(self.norm(tgt).float(), dim=-1)


class CrossAttentionRefinement(nn.Module):
    """F_R = normalize(F + softmax(F Sᵀ / √D / temp) S) (CLOT §3.1, ``cross_attention_refinement``).

    Each frame attends over the segments only, so frames are refined independently; padded frames come
    back as zeros (and their attention rows as zeros).
    """

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(
        self, frames: torch.Tensor, segments: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """frames: (B, N, D); segments: (B, Q, D); mask: (B, N) → (refined (B, N, D), attention (B, N, Q))."""
        b, n, d = frames.shape
        if segments.dim() != 3 or segments.shape[0] != b or segments.shape[2] != d:
            raise ValueError(f"segments must have shape ({b}, Q, {d}), got {tuple(segments.shape)}")
        _check_mask(mask, b, n)
        scores = frames @ segments.transpose(1, 2).to(frames.dtype) / math.sqrt(d) / self.temperature
        attn = scores.float().softmax(dim=-1).to(frames.dtype)
        refined = F.normalize((frames + attn @ segments.to(frames.dtype)).float(), dim=-1)
        if mask is not None:
            keep = mask.unsqueeze(-1)
            refined = refined * keep
            attn = attn * keep.to(attn.dtype)
        return refined, attn


@dataclass
class CLOTOutput:
    frames: torch.Tensor  # F (B, N, D): dispatched encoder embeddings, unit norm (level 1 → actions)
    segments: torch.Tensor  # S (B, n_seg, D): decoder outputs, unit norm (level 2 → actions)
    refined: torch.Tensor  # F_R (B, N, D): refined frames, unit norm (level 3 → actions)
    attention: torch.Tensor  # (B, N, n_seg) frame → segment attention of the refinement


class CLOTHead(nn.Module):
    """Encoder embeddings + prototypes → the three CLOT representations (frames, segments, refined frames).

    Args:
        dim: embedding dimension D.
        num_actions: K; the decoder has K + delta queries.
        delta: δ (BF 0, YTI −6, 50S-Mid 2, 50S-Eval −6, DA 0 — labels unverified, CLOT supplement Table 6).
        num_layers, num_heads, dim_feedforward, dropout: decoder settings (:class:`ParallelDecoder`).
        refine_temperature: temperature of :class:`CrossAttentionRefinement`.
        dispatch: apply :class:`FeatureDispatching` (False = the "w/o FD" ablation).
    """

    def __init__(
        self,
        dim: int,
        num_actions: int,
        delta: int = 0,
        num_layers: int = 2,
        num_heads: int = 8,
        dim_feedforward: int | None = None,
        dropout: float = 0.1,
        refine_temperature: float = 0.1,
        dispatch: bool = True,
    ) -> None:
        super().__init__()
        if num_actions < 1:
            raise ValueError(f"num_actions must be >= 1, got {num_actions}")
        if num_actions + delta < 1:
            raise ValueError(f"n_seg = num_actions + delta must be >= 1, got {num_actions} + {delta}")
        self.dispatching = FeatureDispatching() if dispatch else None
        self.decoder = ParallelDecoder(
            dim, num_actions + delta, num_layers, num_heads, dim_feedforward, dropout
        )
        self.refinement = CrossAttentionRefinement(refine_temperature)

    def forward(
        self, frames: torch.Tensor, prototypes: torch.Tensor, mask: torch.Tensor | None = None
    ) -> CLOTOutput:
        """frames: encoder embeddings (B, N, D); prototypes: (K, D) unit norm; mask: (B, N) True = real."""
        if self.dispatching is not None:
            frames = F.normalize(self.dispatching(frames, prototypes, mask).float(), dim=-1)
        if mask is not None:
            frames = frames * mask.unsqueeze(-1).to(frames.dtype)
        segments = self.decoder(frames, mask)
        refined, attn = self.refinement(frames, segments, mask)
        return CLOTOutput(frames=frames, segments=segments, refined=refined, attention=attn)
