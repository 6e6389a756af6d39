"""Checks that need more than the config file: run before a process group, a run directory, a checkpoint or
a W&B run exists, so a wrong path or a mismatched dataset costs nothing and leaves nothing behind."""

from __future__ import annotations

from vasot_dist.config import ALIGNMENT_METHODS, ConfigError, RunConfig
from vasot_dist.data import ShardSource, resolve_shards
from vasot_dist.runtime.ranklog import get_logger

log = get_logger(__name__)

_ENCODER_FOR = {"video": "resnet50", "features": "mlp"}


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


def check_data(cfg: RunConfig, *, training: bool = True) -> None:
    """Every split the run reads is there, and holds what the config expects.

    Raises:
        ConfigError: naming ``data.shards`` and the path for missing shards or splits, ``data.modality``
            and the dataset for a modality mismatch, ``model.encoder`` for an encoder that cannot read it.
    """
    check_model_fits_data(cfg)
    for split in splits_read(cfg, training=training):
        try:
            source = resolve_shards(cfg.data.shards, split)
        except ValueError as e:
            raise ConfigError(f"{e} (data.name={cfg.data.name!r}; only data.name=synthetic writes missing "
                              "shards, with vasot-train / vasot-tune)") from None
        if source.modality is not None and source.modality != cfg.data.modality:
            raise ConfigError(f"data.modality={cfg.data.modality!r} but {source.index.path} holds "
                              f"{source.modality!r} shards; set data.modality={source.modality}")
    check_values(cfg, training=training)


def check_values(cfg: RunConfig, *, training: bool) -> None:
    """The values that are valid only for this machine or this dataset, so that a run that would fail after
    training (an evaluation setting) or at its first batch fails here instead, before it costs anything.
    (Values wrong on their own, ``eval.fractions=[0, 2]``, are refused by the config loader.)

    Raises:
        ConfigError: naming the key, its value and what it should be.
    """
    check_device(cfg)
    if training:
        check_pairs(cfg)
    check_eval_against_data(cfg, resolve_shards(cfg.data.shards, cfg.data.eval_split))
    if training:
        warn_frames_per_video(cfg, resolve_shards(cfg.data.shards, cfg.data.train_split))


def check_device(cfg: RunConfig) -> None:
    """``train.device=cuda`` and ``dist.backend=nccl`` need CUDA on this machine."""
    import torch

    cuda = torch.cuda.is_available()
    if cfg.train.device == "cuda" and not cuda:
        raise ConfigError(f"train.device=cuda but CUDA is not available on this machine (torch {torch.__version__}, "
                          "built for CUDA " f"{torch.version.cuda or 'none'}); use train.device=auto or cpu")
    if cfg.dist.backend == "nccl" and (cfg.train.device == "cpu" or not cuda):
        raise ConfigError(f"dist.backend=nccl needs CUDA devices, but this run is on the CPU (train.device="
                          f"{cfg.train.device}, CUDA available: {cuda}); use dist.backend=gloo or auto")


def check_pairs(cfg: RunConfig) -> None:
    """Methods that align two videos train on pairs, two videos of a batch each: an even ``data.batch_size``."""
    pairs = cfg.data.pairs or cfg.method.name in ALIGNMENT_METHODS
    if pairs and cfg.data.batch_size % 2:
        why = f"method.name={cfg.method.name} aligns pairs of videos" if not cfg.data.pairs else "data.pairs=true"
        raise ConfigError(f"data.batch_size={cfg.data.batch_size}: {why} of one activity, two videos per pair, so "
                          "data.batch_size must be even (2, 4, ...)")


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
    # every frame queries the frames of the other videos: at least the split's frames less its longest video's
    # (at most its largest shard's)
    longest = max((s.num_frames for s in index.shards_of(split)), default=0)
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
