"""Optimiser steps with a non-finite loss or gradient norm: flagged on the device, skipped, counted.

One NaN batch must not turn every weight into NaN (and every later checkpoint with it), and a run whose steps
keep failing must stop rather than log NaN for hours. Reading the loss back at every step would make the host
wait for the GPU, so the decision stays on the device: :meth:`NonFiniteGuard.decide` returns a 0/1 tensor that
the fused Adam kernel takes as ``found_inf`` (the mechanism of ``torch.amp.GradScaler``) and skips the update
with, moments and step count included. Under DDP the flag is max-reduced over ranks (a one-element all-reduce
queued on the device), so every replica skips the same steps. The counts are read at log steps.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from vasot_dist.runtime.distributed import DistContext


class NonFiniteError(RuntimeError):
    """Training cannot go on: too many optimiser steps in a row had a non-finite loss or gradient norm
    (``train.max_nonfinite_steps``), or the weights themselves are not finite (no checkpoint is written)."""


class NonFiniteGuard:
    """Per-rank device state: whether the loss of the current accumulation window was finite, how many steps
    were skipped since the last read, the current and longest run of skipped steps."""

    def __init__(self, ctx: DistContext) -> None:
        self.ctx = ctx
        zeros = {"dtype": torch.int64, "device": ctx.device}
        self._bad_loss = torch.zeros((), dtype=torch.bool, device=ctx.device)
        self._skipped = torch.zeros((), **zeros)
        self._run = torch.zeros((), **zeros)
        self._longest = torch.zeros((), **zeros)

    def observe_loss(self, loss: torch.Tensor) -> None:
        """Note a micro-batch's loss (before backward); any non-finite one marks the window's step bad."""
        self._bad_loss = self._bad_loss | ~torch.isfinite(loss.detach())

    def decide(self, grad_norm: torch.Tensor | None) -> torch.Tensor:
        """The step's verdict as a float 0-d tensor, 1.0 = skip (``found_inf``), the same on every rank.

        grad_norm: the total gradient norm after DDP's all-reduce (identical on every rank), or None where the
        engine does not expose it (DeepSpeed: the loss alone is checked, and the step is counted, not skipped).
        """
        bad = self._bad_loss if grad_norm is None else self._bad_loss | ~torch.isfinite(grad_norm)
        flag = bad.float()
        if self.ctx.distributed:  # a rank's NaN loss may leave finite gradients: agree, or replicas diverge
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        bad = flag > 0
        self._skipped += bad
        self._run = torch.where(bad, self._run + 1, 0)
        self._longest = torch.maximum(self._longest, self._run)
        self._bad_loss = torch.zeros_like(self._bad_loss)
        return flag

    def read(self) -> tuple[int, int]:
        """``(steps flagged since the last read, longest run of consecutive flagged steps in that time)``: one
        read from the device, at a log step."""
        skipped, longest = torch.stack([self._skipped, self._longest]).tolist()
        self._skipped.zero_()
        self._longest.copy_(self._run)
        return int(skipped), int(longest)
