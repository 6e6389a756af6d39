"""How one split is shared among the readers of a training run (ranks x DataLoader workers), from the sizes in
``dataset.json``; pure arithmetic, no torch (the checks before a run starts use it too).

- Batches per rank per epoch: ``floor(num_samples / (world_size * batch_size))``, identical on every rank.
- Whole shards per reader when there are at least as many shards as readers (each reader opens only its own).
  With fewer shards than readers (5 videos written as 1 shard, trained on 2 GPUs) every reader reads every
  shard and keeps its own share of the samples (:class:`vasot_dist.data.stages.SplitSamplesByReader`): the
  same data, deterministic and without overlap, at the cost of each reader reading the whole split.
"""

from __future__ import annotations


def epoch_batches(num_samples: int, world_size: int, batch_size: int, pairs: bool = False) -> int:
    """Batches per rank per epoch, the same on every rank:
    ``floor(num_samples / (world_size * batch_size))``, or with pairs
    ``floor((num_samples // 2) / (world_size * batch_size // 2))``."""
    if pairs:
        return (num_samples // 2) // (world_size * (batch_size // 2))
    return num_samples // (world_size * batch_size)


def readers(world_size: int, num_workers: int) -> int:
    """Processes that read shards: every rank's DataLoader workers (the rank itself when it has none)."""
    return world_size * max(1, num_workers)


def splits_samples(num_shards: int, world_size: int, num_workers: int) -> bool:
    """True when the readers share the split by samples (fewer shards than readers), False by whole shards."""
    return num_shards < readers(world_size, num_workers)
