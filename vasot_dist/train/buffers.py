"""Rank 0's buffers on every rank before an evaluation or a checkpoint (BatchNorm running statistics).

Parameters are the same on every rank after each optimiser step; buffers are not. DDP broadcasts rank 0's buffers
at the start of every training forward, and each rank then updates its BatchNorm running statistics with its own
batch; DeepSpeed never broadcasts them. A checkpoint holds rank 0's. An evaluation in which every rank embeds its
share of the videos with its own statistics therefore scores a model that no checkpoint holds (measured in
docs/training.md, "Evaluation inside a run"). Broadcasting rank 0's buffers first makes the evaluation that of
the checkpoint written at that step, on any number of processes.

Rank 0's rather than the mean over ranks: they are what DDP itself restores before the next training forward
and what a checkpoint already held, so a run's checkpoints do not change. Running statistics do not enter a
training-mode forward, so this changes no training step.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from vasot_dist.runtime.distributed import DistContext


@torch.no_grad()
def broadcast_buffers(module: nn.Module, ctx: DistContext) -> None:
    """Overwrite every buffer of ``module`` with rank 0's, in place (one broadcast per dtype); a no-op on one
    process or for a module without buffers."""
    if not ctx.distributed:
        return
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for buf in module.buffers():
        by_dtype.setdefault(buf.dtype, []).append(buf)
    for bufs in by_dtype.values():
        flat = torch.cat([b.reshape(-1) for b in bufs])
        dist.broadcast(flat, src=0)
        for b, part in zip(bufs, flat.split([b.numel() for b in bufs])):
            b.copy_(part.view_as(b))
