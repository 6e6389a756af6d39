"""Distributed set-up in one place.

Reads torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK), reuses a process group that already exists
(Ray Train and DeepSpeed create their own), picks NCCL on GPU and gloo on CPU, and also works as a single
process without torchrun.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool  # we created the process group and must destroy it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _pick_device(requested: str, local_rank: int) -> torch.device:
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("train.device=cuda but CUDA is not available on this machine")
    torch.cuda.set_device(local_rank % torch.cuda.device_count())
    return torch.device("cuda", torch.cuda.current_device())


def init_distributed(device: str = "auto", backend: str = "auto", timeout_s: float = 1800) -> DistContext:
    """Join (or create) the default process group and choose this rank's device."""
    if dist.is_available() and dist.is_initialized():
        # A group made by Ray Train or DeepSpeed: they also chose this process's GPU, so keep theirs.
        rank, world = dist.get_rank(), dist.get_world_size()
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device != "cpu" and torch.cuda.is_available():
            return DistContext(rank, world, local_rank, torch.device("cuda", torch.cuda.current_device()), False)
        return DistContext(rank, world, local_rank, _pick_device(device, local_rank), owns_group=False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _pick_device(device, local_rank)
    if world == 1:
        return DistContext(0, 1, 0, dev, owns_group=False)
    if backend == "auto":
        backend = "nccl" if dev.type == "cuda" else "gloo"
    kwargs: dict[str, Any] = {"backend": backend, "timeout": datetime.timedelta(seconds=timeout_s)}
    if dev.type == "cuda":
        kwargs["device_id"] = dev
    dist.init_process_group(**kwargs)
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, dev, owns_group=True)


def shutdown(ctx: DistContext) -> None:
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def all_gather_objects(ctx: DistContext, obj: Any) -> list[Any]:
    """Every rank's ``obj`` (plain Python values), in rank order."""
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def any_rank(ctx: DistContext, flag: bool) -> bool:
    """True on every rank when ``flag`` is true on at least one (used for preemption signals)."""
    if not ctx.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=ctx.device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def broadcast_object(ctx: DistContext, obj: Any, src: int = 0) -> Any:
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def sum_across_ranks(ctx: DistContext, values: dict[str, float]) -> dict[str, float]:
    """Sum a dict of floats over ranks (same keys on every rank)."""
    if not ctx.distributed or not values:
        return dict(values)
    keys = sorted(values)
    dev = ctx.device if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=dev)
    dist.all_reduce(t)
    return dict(zip(keys, t.tolist()))
