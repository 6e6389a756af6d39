"""Streaming data: WebDataset shards -> uint8 frames (or features) on the device.

- :mod:`.format`: the shard format (names, ``<key>.json`` and ``dataset.json`` schemas, version), shared
  with the writers in ``vasot_pipelines``.
- :mod:`.index`: ``dataset.json`` (:class:`DatasetIndex`).
- :mod:`.decode`: :func:`decode_frames` over decord (default) / pyav, :class:`CorruptSample`.
- :mod:`.samplers`: :class:`BinSampler`, :class:`RandomSampler`, :class:`AllFramesSampler`, :func:`context_indices`.
- :mod:`.augment`: :class:`VideoAugment` (identical over a video's frames).
- :mod:`.batch`: :class:`Batch`, :class:`CorruptTally`.
- :mod:`.pipeline`: :func:`make_train_loader`, :func:`make_eval_loader`.
- :mod:`.workers`: DataLoader workers that ignore preemption signals (the trainer checkpoints instead).
"""

from .augment import VideoAugment
from .batch import IGNORE_LABEL, Batch, CorruptTally, collate
from .decode import CorruptSample, available_decoders, decode_frames, register_decoder
from .index import DatasetIndex
from .pipeline import (
    build_eval_dataset,
    build_train_dataset,
    corrupt_count,
    epoch_batches,
    make_eval_loader,
    make_train_loader,
)
from .samplers import AllFramesSampler, BinSampler, FrameSampler, RandomSampler, context_indices, make_sampler
from .sources import ShardSource, resolve_shards

__all__ = [
    "IGNORE_LABEL",
    "AllFramesSampler",
    "Batch",
    "BinSampler",
    "CorruptSample",
    "CorruptTally",
    "DatasetIndex",
    "FrameSampler",
    "RandomSampler",
    "ShardSource",
    "VideoAugment",
    "available_decoders",
    "build_eval_dataset",
    "build_train_dataset",
    "collate",
    "context_indices",
    "corrupt_count",
    "decode_frames",
    "epoch_batches",
    "make_eval_loader",
    "make_sampler",
    "make_train_loader",
    "register_decoder",
    "resolve_shards",
]
