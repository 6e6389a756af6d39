"""The logged scalars of the steps since the last log line, kept on the device until they are read."""

from __future__ import annotations

import time
from collections.abc import Mapping

import torch

from vasot_dist.runtime.distributed import DistContext, sum_across_ranks


class LogWindow:
    """Running sums of the loss and metrics over micro-batches, and the frames they consumed.

    ``add`` queues additions on the device (a ``float()`` there would make the host wait for the step);
    ``reduce`` reads every sum back in one transfer at a log step and averages over micro-batches and ranks.
    """

    def __init__(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self._micro_batches = 0
        self._frames = 0
        self._start = time.perf_counter()

    def add(self, scalars: Mapping[str, torch.Tensor | float], frames: int) -> None:
        """scalars: 0-d tensors (any device) or floats of one micro-batch; frames: its real frames (host count)."""
        for k, v in scalars.items():
            v = torch.as_tensor(v).detach().float()
            self._sums[k] = self._sums[k] + v if k in self._sums else v
        self._micro_batches += 1
        self._frames += frames

    def reduce(self, ctx: DistContext, counts: Mapping[str, int] | None = None) -> dict[str, float]:
        """Means over the window's micro-batches and all ranks, plus ``frames_per_s`` and ``counts`` (host
        integers of this rank, such as corrupt samples skipped) summed over ranks, in the same collective.

        A collective when distributed: every rank must call it at the same step with the same keys.
        """
        counts = dict(counts or {})
        keys = sorted(self._sums)
        values: list[float] = []
        if keys:
            # Stack on the accelerator when any sum lives there (host floats go up, nothing comes down twice).
            device = next((t.device for t in self._sums.values() if t.device.type != "cpu"), torch.device("cpu"))
            values = torch.stack([self._sums[k].to(device).reshape(()) for k in keys]).tolist()  # one read
        local = dict(zip(keys, values)) | {"_n": float(self._micro_batches), "_frames": float(self._frames)}
        local |= {f"_count/{k}": float(v) for k, v in counts.items()}
        summed = sum_across_ranks(ctx, local)
        n = max(summed.pop("_n"), 1.0)
        total_frames = summed.pop("_frames")
        totals = {k: int(summed.pop(f"_count/{k}")) for k in counts}
        row = {k: v / n for k, v in summed.items()} | totals
        row["frames_per_s"] = total_frames / max(time.perf_counter() - self._start, 1e-9)
        return row
