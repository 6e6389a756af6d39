"""The collapse monitor: statistics of a batch's embeddings and plans, computed on the device without a host
read, and the check the trainer makes on them at every log row (:class:`CollapseMonitor`).

A self-supervised alignment loss has a trivial solution: every frame embedded alike, every plan uniform (VAVA's
paper: temporal priors alone "generally suffer from converging to trivial solutions"; TCC warns of the same).
Two statistics show it, per video over its real frames, then averaged over the batch:

- ``emb_cos``: the mean cosine similarity between distinct frames, ``(||sum_i u_i||^2 - n) / (n (n - 1))`` with
  ``u_i = x_i / ||x_i||``. 1 when every frame points the same way.
- ``eff_rank``: the participation ratio of the embedding matrix's squared singular values,
  ``(sum s^2)^2 / sum s^4 = ||X||_F^4 / ||X^T X||_F^2``, between 1 (every frame on one line) and min(n, D).
- ``plan_entropy_ratio``: the entropy of each real row of the method's main plan (renormalised to sum 1) over
  ``log m``, m the plan's real columns (frames of the other video, or actions): 1 when every row is uniform,
  which is the plan a constant embedding gives (every cost equal); 0 when every frame is matched to one column.

All are sums and matrix products only (no SVD, whose accelerator kernels read a status flag back to the host),
so logging them every step adds no host sync; they are read with the loss at a log row (``LogWindow``).

The trainer warns (``train.on_collapse=warn``) or stops with a checkpoint (``stop``, :class:`CollapseError`) when
a log row's mean ``emb_cos`` is at or above ``train.collapse_cos`` after the first :data:`GRACE_STEPS` steps.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from vasot_dist.config.schema import COLLAPSE_COS

__all__ = ["COLLAPSE_COS", "GRACE_STEPS", "CollapseError", "CollapseMonitor", "embedding_collapse_stats",
           "plan_entropy_ratio"]

# Rows up to this step (the demo's first log row) are not checked: an encoder from random weights starts with
# similar frames and its first steps move it most. Measured on the demo (30 steps, a row per step, 2 processes):
# the untrained ResNet-50 embeds a video's frames at a mean cosine of 0.84-0.86 (step 1); with the
# contrastive-IDM guard (seed 1) it falls to 0.17 by step 10, without it (seed 3) it climbs past 0.97 at step 6 and sits
# at 0.985-0.992 from step 10 on; at log_every 10 the first checked row, step 20's (mean 0.989), reports it.
GRACE_STEPS = 10
DOCS = "docs/training.md#collapse-monitor"


class CollapseError(RuntimeError):
    """``train.on_collapse=stop``: a log row showed a collapsed encoder; a checkpoint was written at that step."""


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


def plan_entropy_ratio(plan: Tensor, row_mask: Tensor, col_mask: Tensor) -> Tensor:
    """Mean over real rows of ``H(p_i) / log m``, ``p_i = T_i / sum_j T_ij`` over the real columns, 0-d, detached.

    plan: (B, N, M) non-negative; row_mask: (B, N), col_mask: (B, M) bool, True at real rows / columns; m: the
    real columns of each plan (at least 2 in the denominator: a one-column plan is uniform and sharp at once).
    Rows without mass (all sent to a virtual frame, or padding) are left out, as in ``plan_row_entropy``.
    """
    with torch.no_grad():
        t = plan.detach().float() * col_mask.unsqueeze(1).to(torch.float32)
        mass = t.sum(dim=-1, keepdim=True)
        p = t / mass.clamp_min(1e-12)
        ent = -torch.where(p > 0, p * torch.log(p.clamp_min(1e-30)), torch.zeros_like(p)).sum(dim=-1)  # (B, N)
        m = col_mask.sum(dim=-1).to(torch.float32).clamp_min(2.0)
        ratio = ent / torch.log(m).unsqueeze(-1)
        live = (row_mask & (mass.squeeze(-1) > 1e-12)).to(torch.float32)
        return (ratio * live).sum() / live.sum().clamp_min(1.0)


class CollapseMonitor:
    """The check at each log row: :meth:`check` returns a warning when the row starts a collapse episode.

    An episode is a run of rows whose ``collapse/emb_cos`` is at or above ``threshold``, checked from the first
    row after ``grace_steps``; it is reported once, at its first row, and ends at the first row below the
    threshold. The row is the mean over the window's micro-batches and every rank (``LogWindow.reduce``), so
    every rank sees the same value and decides alike. A row without the statistic (a forward that does not
    log it) is not checked.
    """

    def __init__(self, threshold: float = COLLAPSE_COS, grace_steps: int = GRACE_STEPS) -> None:
        self.threshold = threshold
        self.grace_steps = grace_steps
        self.in_episode = False

    def check(self, row: Mapping[str, float], step: int) -> str | None:
        """The warning (step, statistic, value, what to try) when ``row``, logged at ``step``, starts an
        episode; None otherwise."""
        cos = row.get("collapse/emb_cos")
        if cos is None or step <= self.grace_steps:
            return None
        collapsed = cos >= self.threshold  # NaN is not a collapse: the non-finite guard reports it
        starts = collapsed and not self.in_episode
        self.in_episode = collapsed
        if not starts:
            return None
        extra = "".join(f", {k.split('/')[1]} {row[k]:.3f}" for k in ("collapse/eff_rank", "collapse/plan_entropy_ratio")
                        if k in row)
        return (f"step {step}: the encoder has collapsed: collapse/emb_cos {cos:.4f} >= train.collapse_cos "
                f"{self.threshold:g} (mean cosine between the frames of a video; 1 = every frame embedded alike{extra})"
                f". Training on a constant embedding learns nothing: lower optim.lr, or add a guard against the trivial "
                f"solution (VAOT / VASOT: method.<name>.contrastive_weight, LAV's contrastive-IDM); see {DOCS}")
