"""Checks that need more than the config file: run before a process group, a run directory, a checkpoint or
a W&B run exists, so a wrong path or a mismatched dataset costs nothing and leaves nothing behind.

This module imports neither torch nor webdataset (only ``dataset.json`` and the shard list are read): the
commands run it before they import the training code, so a launch that fails here under torchrun ends in
seconds.
"""

from __future__ import annotations

import dataclasses
import logging
import os

from vasot_dist.config import ConfigError, RunConfig
from vasot_dist.data.catalog import missing_data_hint
from vasot_dist.data.epoch import epoch_batches, readers, splits_samples
from vasot_dist.data.format import index_path
from vasot_dist.data.index import DatasetIndex
from vasot_dist.data.sources import ShardSource, resolve_shards
from vasot_dist.runtime.ranklog import get_logger

log = get_logger(__name__)
_ENCODER_FOR = {"video": "resnet50", "features": "mlp"}


def launch_world_size() -> int:
    """The number of processes of this launch, as torchrun states it (``WORLD_SIZE``; 1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def check_model_fits_data(cfg: RunConfig) -> None:
    """``model.encoder`` must read what ``data.modality`` yields (frames: resnet50; features: mlp)."""
    want = _ENCODER_FOR.get(cfg.data.modality)
    if want is not None and cfg.model.encoder != want:
        raise ConfigError(f"data.modality={cfg.data.modality!r} needs model.encoder={want!r}, "
                          f"got {cfg.model.encoder!r}")


def splits_read(cfg: RunConfig, *, training: bool) -> list[str]:
    """The splits a run reads: training's split (when ``training``), the evaluation split, and for the TCC
    protocol the train split again (its phase classifier is fitted there)."""
    splits = [cfg.data.train_split] if training or cfg.eval.protocol == "tcc" else []
    if cfg.data.eval_split not in splits:
        splits.append(cfg.data.eval_split)
    return splits


def _source(cfg: RunConfig, split: str) -> ShardSource:
    try:
        return resolve_shards(cfg.data.shards, split)
    except ValueError as e:
        if cfg.data.name == "synthetic":
            raise ConfigError(f"{e} (data.name='synthetic': vasot-train and vasot-tune write the built-in "
                              "benchmark there before they start)") from None
        if index_path(cfg.data.shards).is_file():  # the dataset is there, something in it is not
            raise ConfigError(str(e)) from None
        raise ConfigError(f"{e} (data.name={cfg.data.name!r}; only data.name=synthetic is written when missing)\n"
                          f"{missing_data_hint(cfg.data.name, cfg.data.shards)}") from None


def check_data(cfg: RunConfig, *, training: bool = True, world_size: int | None = None) -> None:
    """Every split the run reads is there, holds what the config expects, and (``training``) gives every one
    of ``world_size`` ranks (default :func:`launch_world_size`) at least one batch per epoch.

    Raises:
        ConfigError: naming ``data.shards`` and the path for missing shards or splits (with the dataset's source
            page and the ``vasot-shard`` line that writes them, docs/datasets.md), ``data.modality`` and the
            dataset for a modality mismatch, ``model.encoder`` for an encoder that cannot read it,
            ``data.batch_size`` and the world size for a split too small for one batch per rank.
    """
    check_model_fits_data(cfg)
    for split in splits_read(cfg, training=training):
        source = _source(cfg, split)
        if source.modality is not None and source.modality != cfg.data.modality:
            raise ConfigError(f"data.modality={cfg.data.modality!r} but {source.index.path} holds "
                              f"{source.modality!r} shards; set data.modality={source.modality}")
        if training and split == cfg.data.train_split:
            check_readers(cfg, source, launch_world_size() if world_size is None else world_size)
    check_values(cfg, training=training)


def check_readers(cfg: RunConfig, source: ShardSource, world_size: int) -> None:
    """The training split fits ``world_size`` ranks x ``data.num_workers`` readers: every rank gets at least one
    batch per epoch, and pairs (alignment methods) have two videos of one activity to pair. Fewer shards than
    readers is fine with ``dataset.json`` (the readers share the samples: :mod:`vasot_dist.data.epoch`); a
    pattern without it needs ``data.resampled``."""
    d = cfg.data
    where = f"split {source.split!r} of data.shards={d.shards!r}"
    pairs = d.pairs or cfg.method.needs_pairs
    if not d.resampled and splits_samples(len(source.urls), world_size, d.num_workers) and source.index is None:
        raise ConfigError(
            f"{where} has {len(source.urls)} shard(s) for world_size {world_size} x data.num_workers "
            f"{max(1, d.num_workers)} = {readers(world_size, d.num_workers)} readers and no dataset.json to share "
            "its videos by: point data.shards at the folder holding dataset.json, or set data.resampled=true")
    if pairs and d.batch_size % 2:
        why = f"method.name={cfg.method.name} aligns pairs of videos" if not d.pairs else "data.pairs=true"
        raise ConfigError(f"data.batch_size={d.batch_size}: {why} of one activity, two videos per pair, so "
                          "data.batch_size (videos per rank) must be even (2, 4, ...)")
    if pairs and source.activities is not None and max(source.activities.values(), default=0) < 2:
        raise ConfigError(f"{where}: {cfg.method.name} trains on pairs of videos of one activity, but no "
                          f"activity has two videos ({source.activities})")
    if source.num_samples is not None and epoch_batches(source.num_samples, world_size, d.batch_size, pairs) < 1:
        need = world_size * d.batch_size
        raise ConfigError(
            f"{where} has {source.num_samples} videos, fewer than one batch of data.batch_size={d.batch_size} on "
            f"each of {world_size} ranks ({need} videos); lower data.batch_size or the number of processes")


def fill_from_data(cfg: RunConfig, *, world_size: int = 1, training: bool = True, report: bool = True) -> RunConfig:
    """``cfg`` with what the dataset decides and the config left open, logged when ``report`` (rank 0: every rank
    decides the same):
    ``model.num_actions`` from ``dataset.json``'s label map when the config does not set it; and how the
    ``world_size`` x ``data.num_workers`` readers share the training split. Call after :func:`check_data`.

    A config that sets ``model.num_actions`` keeps it: the segmentation presets train per activity (Breakfast
    pancake: K = 14 of the label map's 48 actions) and procedure learning picks K key steps, so a K below the
    label map's count is stated in the log; a K above it (prototypes no ground-truth action can match) is
    warned about.

    Raises:
        ConfigError: ``model.num_actions`` unset and no ``dataset.json`` to count the actions of.
    """
    index = _index(cfg)
    cfg, level, message = _num_actions(cfg, index)
    if report:
        log.log(level, message)
    if report and training and index is not None and not cfg.data.resampled:
        shards = len(index.urls(cfg.data.train_split))
        if splits_samples(shards, world_size, cfg.data.num_workers):
            log.info("split %r has %d shard(s) for %d readers (world_size %d x data.num_workers %d): every reader "
                     "reads every shard and keeps its share of the videos (more shards, vasot-shard "
                     "--max-shard-samples, read less)", cfg.data.train_split, shards,
                     readers(world_size, cfg.data.num_workers), world_size, max(1, cfg.data.num_workers))
    return cfg


def _index(cfg: RunConfig) -> DatasetIndex | None:
    try:
        return resolve_shards(cfg.data.shards, cfg.data.eval_split).index
    except ValueError:  # patterns of another split: check_data has vouched for what the run reads
        return None


def num_actions_in(index: DatasetIndex) -> int:
    """The number of actions of a label map: its distinct ids, the background's excluded (several names may
    share an id, as 50 Salads' eval granularity does)."""
    return len({i for i in index.label_map.values() if i != index.background_id})


def _num_actions(cfg: RunConfig, index: DatasetIndex | None) -> tuple[RunConfig, int, str]:
    """``cfg`` with ``model.num_actions`` decided, and what to log about it (level, message)."""
    given = cfg.model.num_actions
    if index is None:
        if given is None:
            raise ConfigError(f"model.num_actions is not set and data.shards={cfg.data.shards!r} has no "
                              "dataset.json whose label map would give it: set model.num_actions")
        return cfg, logging.INFO, f"model.num_actions = {given} (config)"
    counted = num_actions_in(index)
    source = f"the label map of {index.path}: {counted} actions" + (
        "" if index.background_id is None else f", background id {index.background_id} excluded")
    if given is None:
        filled = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, num_actions=counted))
        return filled, logging.INFO, f"model.num_actions = {counted} (from {source})"
    if given > counted:
        return cfg, logging.WARNING, (f"model.num_actions = {given} (config) but {source}: {given - counted} "
                                      "prototypes can match no ground-truth action; leave model.num_actions unset "
                                      "to take the label map's count")
    if given < counted:
        return cfg, logging.INFO, (f"model.num_actions = {given} (config; {source}, e.g. a per-activity model or a "
                                   "chosen number of key steps)")
    return cfg, logging.INFO, f"model.num_actions = {given} (config; the same as {source})"


def check_values(cfg: RunConfig, *, training: bool) -> None:
    """The values that are valid only for this machine or this dataset, so that a run that would fail after
    training (an evaluation setting) or at its first batch fails here instead, before it costs anything.
    (Values wrong on their own, ``eval.fractions=[0, 2]``, are refused by the config loader.)

    Raises:
        ConfigError: naming the key, its value and what it should be.
    """
    check_device(cfg)
    check_eval_against_data(cfg, resolve_shards(cfg.data.shards, cfg.data.eval_split))
    if training:
        warn_frames_per_video(cfg, resolve_shards(cfg.data.shards, cfg.data.train_split))


def check_device(cfg: RunConfig) -> None:
    """``train.device=cuda`` and ``dist.backend=nccl`` need CUDA on this machine."""
    if cfg.train.device != "cuda" and cfg.dist.backend != "nccl":
        return  # nothing to ask torch: the checks before a launch stay free of it
    import torch

    cuda = torch.cuda.is_available()
    if cfg.train.device == "cuda" and not cuda:
        raise ConfigError(f"train.device=cuda but CUDA is not available on this machine (torch {torch.__version__}, "
                          "built for CUDA " f"{torch.version.cuda or 'none'}); use train.device=auto or cpu")
    if cfg.dist.backend == "nccl" and (cfg.train.device == "cpu" or not cuda):
        raise ConfigError(f"dist.backend=nccl needs CUDA devices, but this run is on the CPU (train.device="
                          f"{cfg.train.device}, CUDA available: {cuda}); use dist.backend=gloo or auto")


def check_eval_against_data(cfg: RunConfig, source: ShardSource) -> None:
    """``eval.exclude_cls`` is a label of the dataset, and AP@K can find K frames of other videos for every
    query frame of the evaluation split (``dataset.json``'s counts; nothing to check without an index)."""
    index = source.index
    if index is None:
        return
    ids = sorted(set(index.label_map.values()))
    if cfg.eval.exclude_cls is not None and cfg.eval.exclude_cls not in ids:
        raise ConfigError(f"eval.exclude_cls={cfg.eval.exclude_cls} is not a label id of {index.path} (ids "
                          f"{ids[:20]}{' ...' if len(ids) > 20 else ''}; the background is "
                          f"{index.background_id})")
    if not cfg.eval.alignment_metrics or not cfg.eval.retrieval_ks:
        return
    split = source.split
    frames, videos = index.num_frames(split), index.num_samples(split)
    if cfg.eval.max_videos and cfg.eval.max_videos < videos:
        frames, videos = frames * cfg.eval.max_videos // videos, cfg.eval.max_videos
    # every frame queries the frames of the other videos: the longest video's frames have the fewest, the split's
    # frames less its own. dataset.json counts frames per shard: exact where every shard holds one video; else
    # the longest video is at least the mean length, so a K above frames - mean fails for sure (and is refused)
    shards = index.shards_of(split)
    if shards and all(s.num_samples == 1 for s in shards) and not cfg.eval.max_videos:
        longest = max(s.num_frames for s in shards)
    else:
        longest = -(-frames // max(videos, 1))
    support = max(frames - longest, 0)
    k = max(cfg.eval.retrieval_ks)
    if k > support:
        raise ConfigError(
            f"eval.retrieval_ks={list(cfg.eval.retrieval_ks)}: AP@{k} needs {k} frames of other videos for every "
            f"frame of split {split!r}, which has {frames} frames in {videos} videos ({index.path}"
            f"{', eval.max_videos=' + str(cfg.eval.max_videos) if cfg.eval.max_videos else ''}): at most "
            f"{support} besides its longest video; use values up to {support}")


def warn_frames_per_video(cfg: RunConfig, source: ShardSource) -> None:
    """A warning when ``data.frames_per_video`` is more than twice the training videos' mean length: shorter
    videos are padded and masked, so most of each batch would be padding."""
    if source.index is None:
        return
    videos = source.index.num_samples(source.split)
    mean = source.index.num_frames(source.split) / max(videos, 1)
    if cfg.data.frames_per_video > 2 * mean:
        log.warning("data.frames_per_video=%d is far above the %.0f frames the videos of split %r have on average "
                    "(%s): each video gives its frames once and is padded (masked) to %d, about %.0f%% of the "
                    "sampled positions are padding", cfg.data.frames_per_video, mean, source.split,
                    source.index.path, cfg.data.frames_per_video, 100 * (1 - mean / cfg.data.frames_per_video))
