"""The batch the loaders yield, and its collation from per-video samples.

Frames stay ``uint8`` all the way to the device (4x less host memory and PCIe traffic than float);
normalisation (ImageNet mean/std) happens on the device, in the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch

IGNORE_LABEL = -100  # torch.nn.functional.cross_entropy's default ignore_index
NO_STEP = -1


@dataclass
class Batch:
    """B videos padded to the longest T.

    frames: uint8 (B, T, S, H, W, 3) RGB, S context frames per sampled frame (last = the frame itself);
        None for feature datasets.
    features: float32 (B, T, D); None for video datasets.
    mask: bool (B, T), False on padding (short videos, collation).
    labels: int64 (B, T) label ids from the dataset's label map, ``-100`` where ``mask`` is False.
    progress: float32 (B, T) canonical progress, NaN when unknown or masked.
    steps: int64 (B, T) canonical step index, -1 when unknown or masked.
    frame_idx: int64 (B, T) index of each sampled frame in its video (-1 on collation padding).
    num_frames: int64 (B,) length of each source video.
    keys, activities: per video.
    paired: videos (2i, 2i+1) are two videos of one activity.
    padded: some ``mask`` entry is False. Known on the host, so the trainer can choose the encoder's dense path
        (no boolean indexing, which would make the host wait for the GPU) without reading the device mask.
    corrupt: corrupt samples and unreadable shards this loader worker had skipped when it built the batch
        (cumulative, for progress logs; :class:`CorruptTally` sums the latest value of each worker). The
        exact epoch count, including samples after a worker's last batch: ``vasot_dist.data.corrupt_count``.
    worker: the (logical) DataLoader worker that built the batch.
    """

    frames: torch.Tensor | None
    features: torch.Tensor | None
    mask: torch.Tensor
    labels: torch.Tensor
    progress: torch.Tensor
    steps: torch.Tensor
    frame_idx: torch.Tensor
    num_frames: torch.Tensor
    keys: list[str]
    activities: list[str]
    paired: bool = False
    padded: bool = True
    corrupt: int = 0
    worker: int = 0

    def __len__(self) -> int:
        return len(self.keys)

    def _map_tensors(self, fn) -> Batch:
        changes = {f.name: fn(getattr(self, f.name)) for f in fields(self)
                   if isinstance(getattr(self, f.name), torch.Tensor)}
        return replace(self, **changes)

    def to(self, device: torch.device | str, non_blocking: bool = True) -> Batch:
        """Copy every tensor to ``device`` (asynchronously from pinned memory)."""
        return self._map_tensors(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Called by the DataLoader's pinning thread (``pin_memory=True``)."""
        return self._map_tensors(lambda t: t.pin_memory())


class CorruptTally:
    """Running total of corrupt samples from the batches seen so far: the latest ``corrupt`` of each
    worker (``tally.update(batch)`` per batch). Misses samples a worker skipped after its last batch;
    for the epoch report use ``vasot_dist.data.corrupt_count(loader)``."""

    def __init__(self) -> None:
        self._last: dict[int, int] = {}

    def update(self, batch: Batch) -> None:
        self._last[batch.worker] = max(self._last.get(batch.worker, 0), int(batch.corrupt))

    @property
    def total(self) -> int:
        return sum(self._last.values())


def collate(samples: Sequence[dict[str, Any]], *, paired: bool = False, corrupt: int = 0, worker: int = 0) -> Batch:
    """Stack per-video samples into a :class:`Batch`, padding T to the longest.

    Each sample holds ``frames`` uint8 (T, S, H, W, 3) or ``features`` float32 (T, D), ``mask`` (T,),
    ``labels`` (T,), ``progress`` (T,), ``steps`` (T,), ``frame_idx`` (T,), ``num_frames``, ``key``,
    ``activity``.
    """
    if not samples:
        raise ValueError("collate needs at least one sample")
    b = len(samples)
    t_max = max(len(s["mask"]) for s in samples)
    video = samples[0].get("frames") is not None
    mask = np.zeros((b, t_max), dtype=bool)
    labels = np.full((b, t_max), IGNORE_LABEL, dtype=np.int64)
    progress = np.full((b, t_max), np.nan, dtype=np.float32)
    steps = np.full((b, t_max), NO_STEP, dtype=np.int64)
    frame_idx = np.full((b, t_max), -1, dtype=np.int64)
    if video:
        shape = samples[0]["frames"].shape[1:]
        data = np.zeros((b, t_max) + shape, dtype=np.uint8)
    else:
        data = np.zeros((b, t_max, samples[0]["features"].shape[1]), dtype=np.float32)
    for i, s in enumerate(samples):
        t = len(s["mask"])
        x = s["frames"] if video else s["features"]
        if x.shape[1:] != data.shape[2:]:
            raise ValueError(f"sample {s['key']}: per-frame shape {x.shape[1:]} differs from {data.shape[2:]} "
                             "of the first sample in the batch")
        data[i, :t] = x
        mask[i, :t] = s["mask"]
        labels[i, :t] = s["labels"]
        progress[i, :t] = s["progress"]
        steps[i, :t] = s["steps"]
        frame_idx[i, :t] = s["frame_idx"]
    tensor = torch.from_numpy(data)
    return Batch(
        frames=tensor if video else None,
        features=None if video else tensor,
        mask=torch.from_numpy(mask),
        labels=torch.from_numpy(labels),
        progress=torch.from_numpy(progress),
        steps=torch.from_numpy(steps),
        frame_idx=torch.from_numpy(frame_idx),
        num_frames=torch.tensor([int(s["num_frames"]) for s in samples], dtype=torch.int64),
        keys=[s["key"] for s in samples],
        activities=[s["activity"] for s in samples],
        paired=paired,
        padded=not bool(mask.all()),
        corrupt=int(corrupt),
        worker=int(worker),
    )
