"""Streaming data: WebDataset shards -> uint8 frames (or features) on the device.

- :mod:`.format`: the shard format (names, ``<key>.json`` and ``dataset.json`` schemas, version), shared
  with the writers in ``vasot_pipelines``.
- :mod:`.index`: ``dataset.json`` (:class:`DatasetIndex`).
- :mod:`.decode`: :func:`decode_frames` over decord (default) / pyav, :class:`CorruptSample`.
- :mod:`.samplers`: :class:`BinSampler`, :class:`RandomSampler`, :class:`AllFramesSampler`, :func:`context_indices`.
- :mod:`.augment`: :class:`VideoAugment` (identical over a video's frames).
- :mod:`.batch`: :class:`Batch`, :class:`CorruptTally`.
- :mod:`.pipeline`: :func:`make_train_loader`, :func:`make_eval_loader`.
- :mod:`.epoch`: batches per rank, and how readers share a split (whole shards, or samples).
- :mod:`.catalog`: the supported datasets, where to get them, the ``vasot-shard`` line for each.
- :mod:`.workers`: DataLoader workers that ignore preemption signals (the trainer checkpoints instead).
"""

import importlib

# name -> submodule. Loaded on first use (PEP 562), so that the checks every command runs before it starts
# (``vasot_dist.train.preflight``: dataset.json, shard lists, the catalogue) do not import torch and webdataset:
# a launch that fails its checks under torchrun ends in seconds.
_EXPORTS = {
    "VideoAugment": "augment",
    "IGNORE_LABEL": "batch", "Batch": "batch", "CorruptTally": "batch", "collate": "batch",
    "CorruptSample": "decode", "available_decoders": "decode", "decode_frames": "decode",
    "register_decoder": "decode",
    "DatasetIndex": "index",
    "build_eval_dataset": "pipeline", "build_train_dataset": "pipeline", "corrupt_count": "pipeline",
    "make_eval_loader": "pipeline", "make_train_loader": "pipeline",
    "epoch_batches": "epoch",
    "AllFramesSampler": "samplers", "BinSampler": "samplers", "FrameSampler": "samplers",
    "RandomSampler": "samplers", "context_indices": "samplers", "make_sampler": "samplers",
    "ShardSource": "sources", "resolve_shards": "sources",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
