"""Collapse statistics of a batch's embeddings, computed on the device without a host read.

A self-supervised alignment loss has a trivial solution: every frame embedded alike, every plan uniform (VAVA's
paper: temporal priors alone "generally suffer from converging to trivial solutions"; TCC warns of the same).
Two statistics show it, per video over its real frames, then averaged over the batch:

- ``emb_cos``: the mean cosine similarity between distinct frames, ``(||sum_i u_i||^2 - n) / (n (n - 1))`` with
  ``u_i = x_i / ||x_i||``. 1 when every frame points the same way.
- ``eff_rank``: the participation ratio of the embedding matrix's squared singular values,
  ``(sum s^2)^2 / sum s^4 = ||X||_F^4 / ||X^T X||_F^2``, between 1 (every frame on one line) and min(n, D).

Both are sums and matrix products only (no SVD, whose accelerator kernels read a status flag back to the host),
so logging them every step adds no host sync.
"""

from __future__ import annotations

import torch
from torch import Tensor

# A run whose mean frame cosine stays at or above this has collapsed: measured on the demo (VAOT, ResNet-50 from
# random weights), the plateau sat at 0.998-0.999 while runs that learned stayed below 0.9 after their first
# steps (docs/benchmark.md, "The demo").
COLLAPSE_COS = 0.97


def embedding_collapse_stats(emb: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """``{"collapse/emb_cos": 0-d, "collapse/eff_rank": 0-d}``, detached.

    emb: (B, T, D) embeddings; mask: (B, T) bool, True at real frames (videos need 2 or more).
    """
    with torch.no_grad():
        x = emb.detach().float() * mask.unsqueeze(-1).to(torch.float32)
        n = mask.sum(dim=1).to(torch.float32)  # (B,)
        u = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        s = u.sum(dim=1)  # (B, D)
        cos = ((s * s).sum(dim=1) - n) / (n * (n - 1)).clamp_min(1.0)
        # ||X^T X||_F over the smaller Gram matrix: same non-zero eigenvalues either way.
        gram = x.transpose(1, 2) @ x if x.shape[2] <= x.shape[1] else x @ x.transpose(1, 2)
        fro2 = (x * x).sum(dim=(1, 2))
        rank = fro2 * fro2 / (gram * gram).sum(dim=(1, 2)).clamp_min(1e-30)
        return {"collapse/emb_cos": cos.mean(), "collapse/eff_rank": rank.mean()}
