"""Streaming loaders: WebDataset shards -> uint8 frame batches, equal step counts on every rank.

Training pipeline, built explicitly from webdataset's public pieces (per DataLoader worker)::

    ShardPasses (order shuffled by (seed, epoch, pass), same on every rank)  |  ShardDraws (resampled)
    -> SplitByNode(rank, world_size) -> SplitByWorker                        |  (no split)
    -> TarSamples (wds.tarfile_to_samples per shard, warn and count; each shard held to its stated count)
       [fewer shards than ranks x workers: no shard split above; every reader reads every shard and
        SplitSamplesByReader keeps its block of the samples here (vasot_dist.data.epoch)]
    -> ParseSamples (JSON, members, sizes, label ids in the label map; corrupt ones counted and skipped)
    -> wds.shuffle(rng seeded by (seed, epoch, rank, worker, pass))
    -> SingleUnits | PairByActivity (two videos of one activity, adjacent in the batch)
    -> SkipBatches (resume: drop the first batches undecoded)
    -> DecodeUnits (sample indices, context frames, decode at the target size, augment)
    -> wds.batched(partial=False, collate -> Batch)
    -> EpochPipeline.with_epoch(this worker's share of the rank's batches)

Epoch length: ``floor(num_samples / (world_size * batch_size))`` batches per rank from ``dataset.json``
(pairs: ``floor((num_samples // 2) / (world_size * batch_size / 2))``), identical on every rank. A
shard that holds another number of samples than ``dataset.json`` says is an error (ValueError naming
both): with overstated counts the extra passes would repeat videos to fill the epoch.

Reproducibility: a worker's stream is a pure function of (seed, epoch, rank, worker); per-video
randomness is seeded by the video's position in that stream, so ``start_batch=k`` skips k batches
without decoding them and then yields exactly the batches k, k+1, ... of the uninterrupted epoch.
Caveat: a video that fails to DECODE inside the skipped prefix is not detected by the skip (JSON,
member and size errors are, since they are checked before it), which shifts the resumed stream by one
video; corrupt mp4s are rare after ``vasot-shard --verify``.

Corrupt samples (and unreadable shard data): logged with key and shard, skipped, counted per worker.
The exact count of a loader, read by the main process after (or during) the epoch, is
:func:`corrupt_count` (shared-memory counters, one per worker; includes samples a worker read after its
last batch). Every batch also carries its worker's running count (``Batch.corrupt``, ``Batch.worker``)
for progress logs.
"""

from __future__ import annotations

import torch
import webdataset as wds
from torch.utils.data import DataLoader

from ..config.rules import check_section
from ..config.schema import DataConfig
from .augment import VideoAugment
from .epoch import epoch_batches, readers, splits_samples
from .samplers import AllFramesSampler, make_sampler
from .sources import ShardSource, resolve_shards
from .stages import (
    CollateBatch,
    CollateEach,
    DecodeEach,
    DecodeSpec,
    DecodeUnits,
    DryShardGuard,
    EpochPipeline,
    OrderedPipeline,
    PairByActivity,
    ParseSamples,
    SeededShuffle,
    ShardDraws,
    ShardPasses,
    SingleUnits,
    SkipBatches,
    SplitByNode,
    SplitByWorker,
    SplitSamples,
    SplitSamplesByReader,
    StreamState,
    TarSamples,
)
from .workers import SignalSafeLoader


def _check_rank(rank: int, world_size: int) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")


def _check_modality(cfg: DataConfig, source: ShardSource) -> None:
    if source.modality is not None and source.modality != cfg.modality:
        raise ValueError(f"data.modality={cfg.modality!r} but {source.index.path} holds {source.modality!r} shards")


def _label_ids(source: ShardSource) -> list[int] | None:
    """The label ids a sample may hold: those of ``dataset.json``'s label map (None: no index to ask)."""
    return None if source.index is None else list(source.index.label_map.values())


def _tar_samples(source: ShardSource, state: StreamState) -> TarSamples:
    """Tar reading that holds each shard to the count ``dataset.json`` states (none known for patterns)."""
    if source.index is None:
        return TarSamples(state)
    stated = {s.url: s.num_samples for s in source.index.shards_of(source.split)}
    return TarSamples(state, stated, str(source.index.path))


def _decode_spec(cfg: DataConfig, sampler, *, augment: bool, decoder: str) -> DecodeSpec:
    return DecodeSpec(
        modality=cfg.modality,
        sampler=sampler,
        num_context=cfg.context_frames,
        context_stride=cfg.context_stride,
        size=cfg.image_size,
        augment=VideoAugment() if (augment and cfg.modality == "video") else None,
        backend=decoder,
        standardize=cfg.standardize,
    )


def build_train_dataset(cfg: DataConfig, *, rank: int, world_size: int, epoch: int, seed: int,
                        start_batch: int = 0, split: str | None = None, batches_per_epoch: int | None = None,
                        decoder: str = "decord") -> EpochPipeline:
    """The batched training ``IterableDataset`` of one rank (see the module docstring).

    Args:
        batches_per_epoch: batches per rank; default computed from ``dataset.json``. Required (or
            ``cfg.resampled``) when ``cfg.shards`` is a pattern or ``pipe:`` command with unknown sizes;
            resampled without it gives an endless stream.
        start_batch: batches of this epoch already consumed (exact resume).
    """
    check_section(cfg, "data")
    _check_rank(rank, world_size)
    if start_batch < 0:
        raise ValueError(f"start_batch must be >= 0, got {start_batch}")
    split = cfg.train_split if split is None else split
    source = resolve_shards(cfg.shards, split)
    _check_modality(cfg, source)
    if cfg.pairs and cfg.batch_size % 2:
        raise ValueError(f"data.pairs needs an even data.batch_size (2 videos per pair), got {cfg.batch_size}")
    if cfg.pairs and source.activities is not None and max(source.activities.values(), default=0) < 2:
        raise ValueError(f"data.pairs: no activity of split {split!r} in {cfg.shards} has 2 videos to pair "
                         f"({source.activities})")
    by_samples = not cfg.resampled and splits_samples(len(source.urls), world_size, cfg.num_workers)
    if by_samples and source.num_samples is None:
        raise ValueError(
            f"split {split!r} of data.shards={cfg.shards!r} has {len(source.urls)} shard(s), fewer than "
            f"world_size {world_size} x data.num_workers {max(1, cfg.num_workers)} = "
            f"{readers(world_size, cfg.num_workers)} readers, and no dataset.json to share its samples by: "
            "point data.shards at the dataset.json folder, or set data.resampled=true")

    if batches_per_epoch is not None:
        if batches_per_epoch < 1:
            raise ValueError(f"batches_per_epoch must be >= 1, got {batches_per_epoch}")
        n_batches: int | None = int(batches_per_epoch)
    elif source.num_samples is not None:
        n_batches = epoch_batches(source.num_samples, world_size, cfg.batch_size, cfg.pairs)
        if n_batches < 1:
            raise ValueError(f"split {split!r} has {source.num_samples} samples, not enough for one batch of "
                             f"{cfg.batch_size} on each of {world_size} ranks")
    elif cfg.resampled:
        n_batches = None
    else:
        raise ValueError(
            f"data.shards={cfg.shards!r} is a pattern/command without dataset.json, so the epoch length is "
            "unknown: set data.resampled=true or pass batches_per_epoch")

    if n_batches is not None and start_batch > n_batches:
        raise ValueError(f"start_batch {start_batch} is past the end of the epoch ({n_batches} batches per rank)")
    state = StreamState(seed=seed, epoch=epoch, rank=rank, world_size=world_size, num_workers=cfg.num_workers)
    if cfg.resampled:
        head = [ShardDraws(source.urls, state), DryShardGuard(state, limit=max(8, 2 * len(source.urls)))]
    elif by_samples:  # every reader reads every shard; SplitSamplesByReader below keeps its share
        head = [ShardPasses(source.urls, state)]
    else:
        head = [ShardPasses(source.urls, state), SplitByNode(rank, world_size), SplitByWorker(state)]
    read = [_tar_samples(source, state)]
    if by_samples:
        read.append(SplitSamplesByReader(state, source.num_samples))
    units = PairByActivity() if cfg.pairs else SingleUnits()
    units_per_batch = cfg.batch_size // 2 if cfg.pairs else cfg.batch_size
    spec = _decode_spec(cfg, make_sampler(cfg.sampler, cfg.frames_per_video), augment=cfg.augment, decoder=decoder)
    return EpochPipeline(
        *head,
        *read,
        ParseSamples(state, cfg.modality, _label_ids(source)),
        SeededShuffle(state, cfg.shuffle_buffer),
        units,
        SkipBatches(state, units_per_batch),
        DecodeUnits(state, spec),
        wds.batched(cfg.batch_size, collation_fn=CollateBatch(state, cfg.pairs), partial=False),
        state=state,
        batches_per_rank=n_batches,
        start_batch=start_batch,
    )


def _loader(dataset, cfg: DataConfig) -> DataLoader:
    workers = cfg.num_workers
    return SignalSafeLoader(  # workers survive a preemption signal sent to the whole job (.workers)
        dataset,
        batch_size=None,  # the pipeline batches
        num_workers=workers,
        timeout=float(cfg.timeout_s) if workers > 0 else 0.0,  # a hung decoder becomes an error
        persistent_workers=False,  # a fresh worker per epoch re-derives its stream from (seed, epoch)
        pin_memory=torch.cuda.is_available(),
    )


def make_train_loader(cfg: DataConfig, *, rank: int, world_size: int, epoch: int, seed: int,
                      start_batch: int = 0, batches_per_epoch: int | None = None,
                      decoder: str = "decord") -> DataLoader:
    """DataLoader over one rank's training batches of epoch ``epoch`` (build a new one per epoch).

    Yields :class:`~vasot_dist.data.batch.Batch`: ``frames`` uint8 (B, T, S, H, W, 3) with
    B = ``cfg.batch_size``, T = ``cfg.frames_per_video``, S = ``cfg.context_frames``, H = W =
    ``cfg.image_size`` (or ``features`` float32 (B, T, D)); ``len(loader)`` batches, the same number on
    every rank. ``start_batch`` resumes mid-epoch exactly.
    """
    ds = build_train_dataset(cfg, rank=rank, world_size=world_size, epoch=epoch, seed=seed,
                             start_batch=start_batch, batches_per_epoch=batches_per_epoch, decoder=decoder)
    return _loader(ds, cfg)


def build_eval_dataset(cfg: DataConfig, split: str, *, rank: int, world_size: int, max_frames: int | None = None,
                       stride: int = 1, decoder: str = "decord") -> OrderedPipeline:
    """Whole videos of ``split``, one per Batch (B = 1), deterministic, split across ranks by sample
    position: rank r gets samples r, r + world_size, ... in index order (counts differ by at most one
    between ranks; evaluation must not assume equal counts).

    Every ``stride``-th frame, thinned to ``max_frames`` evenly spaced frames when longer; context frames
    as in training; no augmentation.
    """
    check_section(cfg, "data")
    _check_rank(rank, world_size)
    source = resolve_shards(cfg.shards, split)
    _check_modality(cfg, source)
    state = StreamState(seed=0, epoch=0, rank=rank, world_size=world_size, num_workers=cfg.num_workers)
    spec = _decode_spec(cfg, AllFramesSampler(stride=stride, max_frames=max_frames), augment=False, decoder=decoder)
    return OrderedPipeline(
        ShardPasses(source.urls, state, shuffle=False),
        _tar_samples(source, state),
        SplitSamples(state, rank, world_size),
        ParseSamples(state, cfg.modality, _label_ids(source)),
        DecodeEach(state, spec),
        CollateEach(state),
        state=state,
    )


def make_eval_loader(cfg: DataConfig, split: str, *, rank: int, world_size: int, max_frames: int | None = None,
                     stride: int = 1, decoder: str = "decord") -> DataLoader:
    """DataLoader of whole videos (see :func:`build_eval_dataset`); Batch B = 1, T = its frame count."""
    ds = build_eval_dataset(cfg, split, rank=rank, world_size=world_size, max_frames=max_frames, stride=stride,
                            decoder=decoder)
    return _loader(ds, cfg)


def corrupt_count(loader: DataLoader | EpochPipeline | OrderedPipeline) -> int:
    """Corrupt samples + unreadable shard events skipped by all workers of this loader's latest
    iteration (sum it over ranks for the epoch report)."""
    dataset = getattr(loader, "dataset", loader)
    state = getattr(dataset, "state", None)
    if state is None:
        raise ValueError(f"{type(loader).__name__} is not a vasot_dist data loader")
    return int(state.counts.sum())

