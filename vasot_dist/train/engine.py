"""DDP and DeepSpeed behind one small interface, so the training loop does not care which one runs.

``engine(inputs, mask, step)`` runs forward, ``engine.backward(loss)`` accumulates, ``engine.step()`` applies
the optimizer when an accumulation boundary is reached, and ``save`` / ``load`` write the engine's part of a
checkpoint. DeepSpeed checkpoints go through its own ``save_checkpoint`` / ``load_checkpoint`` (all ranks).
``engine.guard`` (:mod:`.nonfinite`) flags steps with a non-finite loss or gradient norm; the DDP engine skips
them on the device.
"""

from __future__ import annotations

import contextlib
import functools
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from vasot_dist.config import RunConfig
from vasot_dist.runtime.distributed import DistContext
from vasot_dist.train.nonfinite import NonFiniteGuard


def build_optimizer(cfg: RunConfig, model: nn.Module, *, fused: bool = False) -> torch.optim.Optimizer:
    """Adam or AdamW; ``fused`` for the kernel that skips a step on the device (``found_inf``)."""
    params = [p for p in model.parameters() if p.requires_grad]
    cls = torch.optim.AdamW if cfg.optim.name == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay, fused=fused or None)


def lr_factor(step: int, cfg: RunConfig) -> float:
    """Linear warm-up to 1, then cosine decay to ``optim.min_lr_ratio`` at ``train.max_steps`` (or constant)."""
    o = cfg.optim
    if o.warmup_steps and step < o.warmup_steps:
        return (step + 1) / o.warmup_steps
    if o.schedule == "constant":
        return 1.0
    span = max(cfg.train.max_steps - o.warmup_steps, 1)
    progress = min(max(step - o.warmup_steps, 0) / span, 1.0)
    return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_scheduler(cfg: RunConfig, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    # A partial, not a callable object: LambdaLR.state_dict() would pickle an object's __dict__ (the config),
    # and checkpoints must hold only tensors and plain values.
    return torch.optim.lr_scheduler.LambdaLR(optimizer, functools.partial(lr_factor, cfg=cfg))


class Engine:
    """Common interface. ``module`` is the unwrapped :class:`TrainModel`."""

    module: nn.Module
    guard: NonFiniteGuard

    def __call__(self, inputs: torch.Tensor, mask: torch.Tensor, step: int):  # pragma: no cover
        raise NotImplementedError

    def train(self) -> None:
        self.module.train()

    def eval(self) -> None:
        self.module.eval()


def grads_in_param_layout(params: list[nn.Parameter]) -> None:
    """Give every gradient its parameter's strides, copying those that differ.

    The fused Adam kernel walks a parameter, its gradient and its moments as flat memory (torch 2.14, CPU): a
    ``channels_last`` conv weight whose gradient comes back contiguous (or the reverse) is updated with the
    wrong elements' gradients, silently (tests/train/test_host_syncs.py shows it). Where the layouts agree, as
    in the ResNet encoder's DDP runs, nothing is copied; otherwise one pass over the mismatched gradients.
    """
    for p in params:
        if p.grad is not None and p.grad.stride() != p.stride():
            p.grad = torch.empty_like(p).copy_(p.grad)  # empty_like keeps p's (dense) strides


class DDPEngine(Engine):
    def __init__(self, cfg: RunConfig, model: nn.Module, ctx: DistContext) -> None:
        self.cfg = cfg
        self.module = model
        self.wrapped: nn.Module = model
        if ctx.distributed:
            self.wrapped = DDP(
                model,
                device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
                find_unused_parameters=cfg.dist.find_unused_parameters,
            )
        self.optimizer = build_optimizer(cfg, model, fused=True)
        self.scheduler = build_scheduler(cfg, self.optimizer)
        self.accum = cfg.optim.grad_accum
        self._micro = 0
        self.ctx = ctx
        self.guard = NonFiniteGuard(ctx)

    def __call__(self, inputs, mask, step):
        # DDP decides in forward whether backward all-reduces: skip it on micro-batches that do not end an
        # accumulation window.
        last = (self._micro + 1) % self.accum == 0
        sync = contextlib.nullcontext() if (last or not isinstance(self.wrapped, DDP)) else self.wrapped.no_sync()
        with sync:
            return self.wrapped(inputs, mask, step)

    def backward(self, loss: torch.Tensor) -> None:
        self.guard.observe_loss(loss)
        (loss / self.accum).backward()

    def step(self) -> bool:
        self._micro += 1
        if self._micro % self.accum:
            return False
        params = [p for p in self.module.parameters() if p.grad is not None]
        if self.cfg.optim.grad_clip > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.optim.grad_clip)
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        grads_in_param_layout(params)
        # A non-finite step is skipped by the fused kernel itself (weights, moments and step count untouched).
        self.optimizer.found_inf = self.guard.decide(norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return True

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:  # a checkpoint of the unfused optimizer brings fused=None
            group["fused"], group["foreach"] = True, None
        self.scheduler.load_state_dict(state["scheduler"])


class DeepSpeedEngine(Engine):
    """``deepspeed.initialize`` with ``dist.ds_config`` from the YAML; our optimizer and scheduler are passed in
    unless the ds_config names its own, so the schedule is the same one DDP uses."""

    def __init__(self, cfg: RunConfig, model: nn.Module, ctx: DistContext) -> None:
        import deepspeed

        if ctx.device.type == "cpu":
            # DeepSpeed's CPU communication backend JIT-compiles a shared-memory all-reduce op (minutes of C++
            # on a fresh machine) that only its inference all-reduce uses; training reduces through
            # torch.distributed (gloo). Marking the op unavailable skips the build; DeepSpeed keeps this dict.
            deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
        ds_config = dict(cfg.dist.ds_config)
        ds_config.setdefault("train_micro_batch_size_per_gpu", cfg.data.batch_size)
        ds_config.setdefault("gradient_accumulation_steps", cfg.optim.grad_accum)
        if cfg.optim.grad_clip > 0:
            ds_config.setdefault("gradient_clipping", cfg.optim.grad_clip)
        ds_config.setdefault("steps_per_print", 10**9)  # we log ourselves
        optimizer = None if "optimizer" in ds_config else build_optimizer(cfg, model)
        scheduler = None if ("scheduler" in ds_config or optimizer is None) else build_scheduler(cfg, optimizer)
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config,
            model_parameters=None if optimizer is not None else [p for p in model.parameters() if p.requires_grad],
        )
        self.module = self.engine.module
        self.cfg = cfg
        self.guard = NonFiniteGuard(ctx)

    def __call__(self, inputs, mask, step):
        return self.engine(inputs, mask, step)

    def backward(self, loss: torch.Tensor) -> None:
        self.guard.observe_loss(loss)
        self.engine.backward(loss)

    def step(self) -> bool:
        boundary = self.engine.is_gradient_accumulation_boundary()
        if boundary:  # DeepSpeed applies its own step: a non-finite loss is counted (and stops the run), not skipped
            self.guard.decide(None)
        self.engine.step()
        return bool(boundary)

    @property
    def lr(self) -> float:
        return self.engine.get_lr()[0]

    def save(self, folder: Path, tag: str, client_state: dict[str, Any]) -> None:
        self.engine.save_checkpoint(str(folder), tag=tag, client_state=client_state)

    def load(self, folder: Path, tag: str) -> dict[str, Any]:
        _, client_state = self.engine.load_checkpoint(str(folder), tag=tag)
        if client_state is None:
            raise RuntimeError(f"DeepSpeed could not load checkpoint {folder / tag}")
        return client_state


def build_engine(cfg: RunConfig, model: nn.Module, ctx: DistContext) -> Engine:
    if cfg.dist.engine == "deepspeed":
        return DeepSpeedEngine(cfg, model, ctx)
    return DDPEngine(cfg, model, ctx)
