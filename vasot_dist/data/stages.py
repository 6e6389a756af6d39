"""The stages of the streaming pipelines, as module-level picklable callables.

Each stage is ``stage(iterator) -> iterator`` (or an ``IterableDataset`` for the sources) and holds a
reference to one :class:`StreamState`, the per-worker state that the copy of the pipeline living in a
DataLoader worker shares between its stages: which (logical) worker it is, the pass over the shards,
the unit counter that seeds per-video randomness, and the corrupt-sample count.

Records flowing between stages:

- raw sample (from ``wds.tarfile_to_samples``): ``{"__key__", "__url__", "json": bytes, "mp4"|"npy": bytes}``;
- :class:`Record` after :class:`ParseSamples` (JSON parsed and checked, payload still encoded);
- unit: a tuple of Records decoded together (one video, or a pair of one activity);
- decoded sample dict (see :func:`vasot_dist.data.batch.collate`).
"""

from __future__ import annotations

import io
import json
import logging
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np
import torch.utils.data
import webdataset as wds

from . import format as fmt
from .augment import VideoAugment
from .batch import IGNORE_LABEL, NO_STEP, Batch, collate
from .decode import CorruptSample, decode_frames
from .samplers import FrameSampler, context_indices

log = logging.getLogger("vasot_dist.data")

MEMBERS = {"video": fmt.VIDEO_EXT, "features": fmt.FEATURES_EXT}  # the payload member of a sample
# Stream tags keep the random streams drawn from one (seed, epoch, rank, worker) independent.
_TAG_SHARDS, _TAG_RESAMPLE, _TAG_SHUFFLE, _TAG_UNIT, _TAG_READERS = 1, 2, 3, 4, 5


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that is a pure function of the integer ``parts`` (negative values allowed)."""
    words = [int(p) % 2**64 for p in parts]
    state = np.random.SeedSequence(words).generate_state(2, dtype=np.uint32)
    return int(state.view(np.uint64)[0] >> np.uint64(1))


def share(n: int, worker: int, num_workers: int) -> int:
    """How many of the items ``0..n-1`` dealt round-robin over ``num_workers`` go to ``worker``.

    The DataLoader takes batch ``i`` of an epoch from worker ``i % num_workers``.
    """
    return max(0, (n - worker + num_workers - 1) // num_workers)


def worker_slot(offset: int = 0) -> tuple[int, int]:
    """(logical worker id, number of workers) of the calling process.

    The logical id is the physical one rotated by ``offset`` (the resume batch): the DataLoader always
    asks physical worker 0 first, so after skipping ``start_batch`` batches physical worker 0 must
    play the worker that owns batch ``start_batch`` of the uninterrupted epoch.
    """
    info = torch.utils.data.get_worker_info()
    if info is None:
        return 0, 1
    return (info.id + offset) % info.num_workers, info.num_workers


class StreamState:
    """Mutable per-worker state shared by the stages of one pipeline copy (see module docstring)."""

    def __init__(self, *, seed: int, epoch: int, rank: int, world_size: int, num_workers: int = 0):
        self.seed, self.epoch, self.rank, self.world_size = int(seed), int(epoch), int(rank), int(world_size)
        # One slot per worker in shared memory (created before the DataLoader forks or pickles the
        # pipeline), so the main process reads exact counts even for samples after a worker's last batch.
        self.counts = torch.zeros(max(1, int(num_workers)), dtype=torch.int64).share_memory_()
        self.begin(0, 1)

    def begin(self, worker: int, num_workers: int, skip_batches: int = 0) -> None:
        """Reset at the start of an iteration in this process."""
        self.worker, self.num_workers = worker, num_workers
        self.pass_index = 0
        self.corrupt = 0  # corrupt samples + unreadable shard events, cumulative in this worker
        self.read_errors = 0  # unreadable shard events alone
        if worker < len(self.counts):
            self.counts[worker] = 0
        self.good = 0  # samples that parsed
        self.unit_counter = 0  # units (videos or pairs) seen, skipped ones included
        self.skip_batches_left = skip_batches
        self.skipped_in_pass = 0

    def seed_for(self, *parts: int) -> int:
        return derive_seed(self.seed, self.epoch, self.rank, self.worker, *parts)

    def count_corrupt(self) -> None:
        self.corrupt += 1
        if self.worker < len(self.counts):
            self.counts[self.worker] = self.corrupt

    def report(self, exc: CorruptSample) -> None:
        self.count_corrupt()
        log.warning("%s (rank %d, worker %d: %d skipped so far)", exc, self.rank, self.worker, self.corrupt)


# -------------------------------------------------------------------------------------------- sources
class ShardPasses(torch.utils.data.IterableDataset):
    """One pass over all shards, in an order shuffled by (seed, epoch, pass), BEFORE any split.

    Every rank and worker computes the same order, so the node and worker splits that follow hand out
    disjoint shards. A worker that needs more batches than its shards hold starts another pass (new
    order), see :class:`EpochPipeline`.
    """

    def __init__(self, urls: list[str], state: StreamState, shuffle: bool = True):
        super().__init__()
        self.urls, self.state, self.shuffle = list(urls), state, shuffle

    def __iter__(self) -> Iterator[dict[str, str]]:
        urls = list(self.urls)
        if self.shuffle:
            s = self.state
            random.Random(derive_seed(s.seed, s.epoch, s.pass_index, _TAG_SHARDS)).shuffle(urls)
        for url in urls:
            yield {"url": url}


class ShardDraws(torch.utils.data.IterableDataset):
    """Resampling: shards drawn with replacement forever, seeded by (seed, epoch, rank, worker).

    Replaces ``wds.ResampledShards``, whose seed also mixes in a per-object iteration counter and
    reads the rank from the environment by default.
    """

    def __init__(self, urls: list[str], state: StreamState):
        super().__init__()
        self.urls, self.state = list(urls), state

    def __iter__(self) -> Iterator[dict[str, str]]:
        rng = random.Random(self.state.seed_for(_TAG_RESAMPLE))
        while True:
            yield {"url": self.urls[rng.randrange(len(self.urls))]}


class SplitByNode:
    """Keep items ``rank, rank + world_size, ...`` (rank and world size given, not read from the env)."""

    def __init__(self, rank: int, world_size: int):
        self.rank, self.world_size = rank, world_size

    def __call__(self, src: Iterable) -> Iterator:
        return islice(src, self.rank, None, self.world_size)


class SplitByWorker:
    """Keep items ``worker, worker + num_workers, ...`` of this (logical) DataLoader worker."""

    def __init__(self, state: StreamState):
        self.state = state

    def __call__(self, src: Iterable) -> Iterator:
        return islice(src, self.state.worker, None, self.state.num_workers)


class SplitSamplesByReader:
    """Training with fewer shards than readers (:mod:`vasot_dist.data.epoch`): every reader reads every shard of
    the pass, in the pass's order (the same on all readers), and keeps one block of its ``total`` samples.

    The pass's sample positions ``g`` are cut into ``readers = world_size x num_workers`` contiguous blocks,
    reader ``rank * num_workers + worker`` keeping block ``((g - offset) mod total) * readers // total``; the
    offset is drawn per (seed, epoch, pass), so the blocks are disjoint and cover the split in every pass and a
    reader does not get the same videos every epoch. Contiguous blocks keep neighbouring videos together
    (``vasot-shard`` writes a manifest's videos in order, one activity's after another), which pairs need.
    """

    def __init__(self, state: StreamState, total: int):
        if total < 1:
            raise ValueError(f"SplitSamplesByReader needs the split's sample count, got {total}")
        self.state, self.total = state, int(total)

    def __call__(self, src: Iterable[dict]) -> Iterator[dict]:
        s = self.state
        readers = s.world_size * s.num_workers
        reader = s.rank * s.num_workers + s.worker
        offset = derive_seed(s.seed, s.epoch, s.pass_index, _TAG_READERS) % self.total
        for g, sample in enumerate(src):
            if ((g - offset) % self.total) * readers // self.total == reader:
                yield sample


class DryShardGuard:
    """Raise when ``limit`` consecutive shards of this worker yield no valid sample (resampled streams
    never end, so without this an all-corrupt shard set would spin until the DataLoader timeout)."""

    def __init__(self, state: StreamState, limit: int):
        self.state, self.limit = state, limit

    def __call__(self, src: Iterable[dict]) -> Iterator[dict]:
        dry, last_good, first = 0, self.state.good, True
        for item in src:
            # Pulling the next url means the previous shard has been read to its end.
            if not first:
                dry = dry + 1 if self.state.good == last_good else 0
                if dry >= self.limit:
                    raise RuntimeError(
                        f"rank {self.state.rank} worker {self.state.worker}: {dry} shards in a row without one "
                        f"valid sample ({self.state.corrupt} corrupt so far); check the shards")
            first, last_good = False, self.state.good
            yield item


class CountingHandler:
    """``handler=`` of ``wds.tarfile_to_samples``: log the unreadable shard data, count it, go on."""

    def __init__(self, state: StreamState):
        self.state = state

    def __call__(self, exn: BaseException) -> bool:
        self.state.read_errors += 1
        self.state.count_corrupt()
        text = repr(exn)
        log.warning("unreadable shard data skipped: %s (rank %d, worker %d: %d skipped so far)",
                    text[:300], self.state.rank, self.state.worker, self.state.corrupt)
        return True


class TarSamples:
    """``wds.tarfile_to_samples`` with the warn-and-count handler, one shard at a time, so that each shard
    read to its end is held to the sample count its index states (``stated``: url -> num_samples, from
    ``index``). Epoch lengths come from those counts; an overstated one would have the loader make up
    the difference by silently reading the same videos again, so a mismatch raises ValueError. Shards
    with read errors (already counted as corrupt) are not held to their count."""

    def __init__(self, state: StreamState, stated: dict[str, int] | None = None, index: str = "dataset.json"):
        self.state, self.stated, self.index = state, dict(stated or {}), index
        self.expand = wds.tarfile_to_samples(handler=CountingHandler(state))

    def __call__(self, src: Iterable[dict]) -> Iterator[dict]:
        for item in src:
            errors, n = self.state.read_errors, 0
            for sample in self.expand(iter([item])):
                n += 1
                yield sample
            stated = self.stated.get(item["url"])
            if stated is not None and n != stated and self.state.read_errors == errors:
                raise ValueError(f"shard {item['url']} holds {n} samples but {self.index} says {stated}: the index "
                                 "does not describe these shards (rewrite them with vasot-shard, or copy them again)")


# ---------------------------------------------------------------------------------------------- parse
@dataclass
class Record:
    """One sample with its JSON parsed and checked; ``payload`` still encoded (mp4 or npy bytes)."""

    key: str
    shard: str
    activity: str
    num_frames: int
    labels: np.ndarray  # (N,) int64
    progress: np.ndarray | None  # (N,) float32
    steps: np.ndarray | None  # (N,) int64
    payload: bytes
    meta: dict[str, Any]


def _int_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)


def parse_sample(sample: dict[str, Any], modality: str, label_ids: frozenset[int] | None = None) -> Record:
    """Check members and ``<key>.json`` of a raw sample; raise :class:`CorruptSample` naming what is wrong.

    ``label_ids``: the ids of the dataset's label map (None: unknown, e.g. shards given by pattern); a label
    outside it makes the sample corrupt (its metrics would compare ids that mean nothing)."""
    key = str(sample.get("__key__", "?"))
    shard = str(sample.get("__url__", "?"))

    def bad(reason: str) -> CorruptSample:
        return CorruptSample(reason, key=key, shard=shard)

    member = MEMBERS[modality]
    present = sorted(k for k in sample if not k.startswith("__"))
    for m in ("json", member):
        if m not in sample:
            raise bad(f"missing member {key}.{m} (has {present})")
    try:
        meta = json.loads(sample["json"])
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(f"{key}.json is not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise bad(f"{key}.json must be an object, got {type(meta).__name__}")
    n = meta.get("num_frames")
    if not isinstance(n, int) or isinstance(n, bool):
        raise bad(f"{key}.json num_frames must be an int, got {n!r}")
    if n < 1:
        raise bad(f"zero frames ({key}.json num_frames={n})")
    labels = meta.get("labels")
    if not _int_list(labels) or len(labels) != n:
        got = len(labels) if isinstance(labels, list) else repr(labels)[:40]
        raise bad(f"{key}.json labels must be num_frames={n} ints, got {got}")
    if label_ids is not None:
        outside = sorted(set(labels) - label_ids)
        if outside:
            raise bad(f"{key}.json labels {outside[:5]}{' ...' if len(outside) > 5 else ''} are not ids of the "
                      f"label map (ids {sorted(label_ids)[:12]}{' ...' if len(label_ids) > 12 else ''})")
    progress = meta.get("progress")
    if progress is not None:
        if not isinstance(progress, list) or len(progress) != n or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in progress):
            raise bad(f"{key}.json progress must be null or num_frames={n} numbers")
        progress = np.asarray(progress, dtype=np.float32)
    steps = meta.get("steps")
    if steps is not None:
        if not _int_list(steps) or len(steps) != n:
            raise bad(f"{key}.json steps must be null or num_frames={n} ints")
        steps = np.asarray(steps, dtype=np.int64)
    activity = meta.get("activity")
    if not isinstance(activity, str) or not activity:
        activity = key.split("__", 1)[0]  # the key is {activity}__{video_id}
    payload = sample[member]
    if not payload:
        raise bad(f"{key}.{member} is empty")
    return Record(key, shard, activity, n, np.asarray(labels, dtype=np.int64), progress, steps, payload, meta)


class ParseSamples:
    """Raw tar samples -> :class:`Record`; corrupt ones (labels outside ``label_ids`` included) are logged with
    key and shard, counted, skipped."""

    def __init__(self, state: StreamState, modality: str, label_ids: Iterable[int] | None = None):
        self.state, self.modality = state, modality
        self.label_ids = None if label_ids is None else frozenset(int(i) for i in label_ids)

    def __call__(self, src: Iterable[dict]) -> Iterator[Record]:
        for sample in src:
            try:
                rec = parse_sample(sample, self.modality, self.label_ids)
            except CorruptSample as exc:
                self.state.report(exc)
                continue
            self.state.good += 1
            yield rec


# ---------------------------------------------------------------------------------- shuffle and units
class SeededShuffle:
    """``wds.shuffle`` with an rng seeded by (seed, epoch, rank, worker, pass)."""

    def __init__(self, state: StreamState, bufsize: int):
        self.state, self.bufsize = state, int(bufsize)

    def __call__(self, src: Iterable) -> Iterator:
        if self.bufsize <= 1:
            return iter(src)
        rng = random.Random(self.state.seed_for(self.state.pass_index, _TAG_SHUFFLE))
        return wds.shuffle(self.bufsize, min(self.bufsize, 100), rng=rng)(src)


class SingleUnits:
    """Each record is its own unit: ``(record,)``."""

    def __call__(self, src: Iterable[Record]) -> Iterator[tuple[Record, ...]]:
        for rec in src:
            yield (rec,)


class PairByActivity:
    """Buffer records by activity and emit ``(first, second)`` as soon as two different videos of one
    activity are waiting (VAOT / VAVA / REALIGN train on pairs of videos of one activity).

    At most ``max_waiting`` records wait per activity (the oldest is dropped beyond), which only
    happens when an activity keeps delivering the same video.
    """

    def __init__(self, max_waiting: int = 16):
        self.max_waiting = max_waiting

    def __call__(self, src: Iterable[Record]) -> Iterator[tuple[Record, Record]]:
        waiting: dict[str, list[Record]] = {}
        for rec in src:
            queue = waiting.setdefault(rec.activity, [])
            partner = next((i for i, r in enumerate(queue) if r.key != rec.key), None)
            if partner is None:
                queue.append(rec)
                if len(queue) > self.max_waiting:
                    queue.pop(0)
                continue
            yield (queue.pop(partner), rec)


class SkipBatches:
    """Number the units and drop the first ``state.skip_batches_left`` batches' worth, undecoded.

    The unit number (skipped units included) seeds the unit's randomness, so the units after the skip
    point are sampled and augmented exactly as in an uninterrupted run. Batches never straddle a pass
    (the batcher drops a pass's incomplete tail), hence the per-pass accounting.
    """

    def __init__(self, state: StreamState, units_per_batch: int):
        self.state, self.units_per_batch = state, units_per_batch

    def __call__(self, src: Iterable[tuple]) -> Iterator[tuple[int, tuple]]:
        s = self.state
        pending = 0  # units of the batch being skipped
        for unit in src:
            number = s.unit_counter
            s.unit_counter += 1
            if s.skip_batches_left > 0:
                pending += 1
                if pending == self.units_per_batch:
                    pending = 0
                    s.skip_batches_left -= 1
                    s.skipped_in_pass += 1
                continue
            yield number, unit


# --------------------------------------------------------------------------------------------- decode
@dataclass
class DecodeSpec:
    """How to turn a Record into a training/eval sample."""

    modality: str
    sampler: FrameSampler
    num_context: int = 1
    context_stride: int = 0
    size: int | tuple[int, int] | None = 224
    augment: VideoAugment | None = None
    backend: str = "decord"
    standardize: bool = False  # features: per-video standardisation (:func:`standardize_features`)


def load_features(rec: Record) -> np.ndarray:
    """``<key>.npy`` -> float32 (N, D); CorruptSample when unreadable or not num_frames rows."""
    try:
        arr = np.load(io.BytesIO(rec.payload), allow_pickle=False)
    except Exception as exc:  # np.load raises several types on garbage
        raise CorruptSample(f"{rec.key}.npy unreadable: {type(exc).__name__}: {exc}", key=rec.key,
                            shard=rec.shard) from None
    if arr.ndim != 2 or arr.shape[0] != rec.num_frames or not np.issubdtype(arr.dtype, np.floating):
        raise CorruptSample(f"{rec.key}.npy is {arr.dtype} {arr.shape}, expected float (num_frames={rec.num_frames}, D)",
                            key=rec.key, shard=rec.shard)
    return arr.astype(np.float32, copy=False)


def standardize_features(x: np.ndarray) -> np.ndarray:
    """ASOT's ``-s``: zero mean and unit variance per dimension over the video's non-zero frames, then / sqrt(D).

    x: (N, D) float32. All-zero frames (missing features) stay zero; constant dimensions become 0. Over all
    frames of the video, where the reference standardises the frames it sampled: the same transform at
    training and evaluation, and no sampling noise in the statistics.
    """
    keep = np.any(x != 0, axis=1)
    out = np.zeros_like(x)
    if keep.any():
        z = x[keep] - x[keep].mean(axis=0)
        std = z.std(axis=0)
        out[keep] = np.divide(z, std, out=np.zeros_like(z), where=std > 0)
    return out / np.float32(np.sqrt(x.shape[1]))


def load_sample(rec: Record, spec: DecodeSpec, rng: np.random.Generator | None) -> dict[str, Any]:
    """Sample frame indices, decode them (with context frames), augment; gather per-frame targets.

    Returns the dict :func:`collate` expects: ``frames`` uint8 (T, S, H, W, 3) or ``features`` (T, D),
    ``mask`` (T,), ``labels``, ``progress``, ``steps``, ``frame_idx`` (T,), ``num_frames``, ``key``,
    ``activity``.
    """
    idx, valid = spec.sampler(rec.num_frames, rng)
    out: dict[str, Any] = {"frames": None, "features": None}
    if spec.modality == "video":
        ctx = context_indices(idx, spec.num_context, spec.context_stride)  # (T, S)
        try:
            flat = decode_frames(rec.payload, ctx.reshape(-1), spec.size, num_frames=rec.num_frames,
                                 backend=spec.backend)
        except CorruptSample as exc:
            exc.key, exc.shard = rec.key, rec.shard
            raise
        frames = flat.reshape(ctx.shape + flat.shape[1:])
        if spec.augment is not None:
            frames = spec.augment(frames, rng)
        out["frames"] = frames
    else:
        feats = load_features(rec)
        out["features"] = (standardize_features(feats) if spec.standardize else feats)[idx]
    labels = rec.labels[idx].copy()
    labels[~valid] = IGNORE_LABEL
    progress = rec.progress[idx].copy() if rec.progress is not None else np.full(idx.shape, np.nan, np.float32)
    progress[~valid] = np.nan
    steps = rec.steps[idx].copy() if rec.steps is not None else np.full(idx.shape, NO_STEP, np.int64)
    steps[~valid] = NO_STEP
    out.update(mask=valid, labels=labels, progress=progress, steps=steps, frame_idx=idx,
               num_frames=rec.num_frames, key=rec.key, activity=rec.activity)
    return out


class DecodeUnits:
    """``(number, unit)`` -> decoded samples. A unit with a corrupt member is dropped whole (a pair
    without its partner is useless); the corrupt member is logged and counted."""

    def __init__(self, state: StreamState, spec: DecodeSpec):
        self.state, self.spec = state, spec

    def __call__(self, src: Iterable[tuple[int, tuple[Record, ...]]]) -> Iterator[dict[str, Any]]:
        for number, unit in src:
            rng = np.random.default_rng(self.state.seed_for(number, _TAG_UNIT))
            try:
                decoded = [load_sample(rec, self.spec, rng) for rec in unit]
            except CorruptSample as exc:
                self.state.report(exc)
                if len(unit) > 1:
                    log.warning("dropped the pair %s with it", [r.key for r in unit])
                continue
            yield from decoded


class DecodeEach:
    """Evaluation: Record -> decoded sample, deterministic (no rng); corrupt ones logged, counted, skipped."""

    def __init__(self, state: StreamState, spec: DecodeSpec):
        self.state, self.spec = state, spec

    def __call__(self, src: Iterable[Record]) -> Iterator[dict[str, Any]]:
        for rec in src:
            try:
                yield load_sample(rec, self.spec, None)
            except CorruptSample as exc:
                self.state.report(exc)


class CollateBatch:
    """``collation_fn`` of ``wds.batched``: stamps the worker's corrupt count on the batch."""

    def __init__(self, state: StreamState, paired: bool):
        self.state, self.paired = state, paired

    def __call__(self, samples: list[dict[str, Any]]) -> Batch:
        return collate(samples, paired=self.paired, corrupt=self.state.corrupt, worker=self.state.worker)


class CollateEach:
    """Evaluation: one video per Batch (B = 1)."""

    def __init__(self, state: StreamState):
        self.state = state

    def __call__(self, src: Iterable[dict[str, Any]]) -> Iterator[Batch]:
        for sample in src:
            yield collate([sample], corrupt=self.state.corrupt, worker=self.state.worker)


class SplitSamples:
    """Evaluation split by sample position ``g`` in the (fixed) shard order: rank ``g % world_size``,
    then worker ``(g // world_size) % num_workers``, so one rank's DataLoader (which takes items from
    its workers round-robin) yields its videos in increasing ``g``."""

    def __init__(self, state: StreamState, rank: int, world_size: int):
        self.state, self.rank, self.world_size = state, rank, world_size

    def __call__(self, src: Iterable[dict]) -> Iterator[dict]:
        w, nw = self.state.worker, self.state.num_workers
        for g, sample in enumerate(src):
            if g % self.world_size == self.rank and (g // self.world_size) % nw == w:
                yield sample


# ------------------------------------------------------------------------------------------ datasets
class EpochPipeline(wds.DataPipeline):
    """A training pipeline that yields exactly ``batches_per_rank - start_batch`` batches per rank.

    Each worker computes its share of the rank's batches (batch ``i`` comes from worker
    ``i % num_workers``) and ends its stream with ``with_epoch(share)``. When its shards run out
    first, it starts another pass over them (:class:`ShardPasses` reshuffles by pass), so uneven
    shards never make ranks disagree on the number of steps (which would hang DDP). A pass that yields
    no batch at all raises instead of spinning. ``batches_per_rank=None`` (resampled, size unknown):
    endless stream.
    """

    def __init__(self, *stages: Any, state: StreamState, batches_per_rank: int | None, start_batch: int = 0):
        super().__init__(*stages)
        self.state = state
        self.batches_per_rank = batches_per_rank
        self.start_batch = int(start_batch)

    def __len__(self) -> int:
        if self.batches_per_rank is None:
            raise TypeError("endless stream (resampled shards without a known size) has no length")
        return max(0, self.batches_per_rank - self.start_batch)

    def __iter__(self) -> Iterator[Batch]:
        worker, num_workers = worker_slot(self.start_batch)
        skip = share(self.start_batch, worker, num_workers)
        self.state.begin(worker, num_workers, skip_batches=skip)
        if self.batches_per_rank is None:
            return self.iterator()
        quota = share(self.batches_per_rank, worker, num_workers) - skip
        if quota <= 0:
            return iter(())
        self.with_epoch(nbatches=quota)
        return super().__iter__()

    def iterator(self) -> Iterator[Batch]:
        """Passes over this worker's shards until the epoch quota (``with_epoch``) stops asking."""
        p = 0
        while True:
            self.state.pass_index, self.state.skipped_in_pass = p, 0
            count = 0
            for batch in self.iterator1():
                count += 1
                yield batch
            if count == 0 and self.state.skipped_in_pass == 0:
                s = self.state
                raise RuntimeError(
                    f"rank {s.rank} worker {s.worker}: a full pass over its shards gave no complete batch "
                    f"({s.good} valid samples, {s.corrupt} corrupt); too few valid samples per shard for the "
                    "batch size, or pairs that never match")
            p += 1


class OrderedPipeline(wds.DataPipeline):
    """An evaluation pipeline: one deterministic pass."""

    def __init__(self, *stages: Any, state: StreamState):
        super().__init__(*stages)
        self.state = state

    def __iter__(self) -> Iterator[Batch]:
        worker, num_workers = worker_slot(0)
        self.state.begin(worker, num_workers)
        return self.iterator1()
