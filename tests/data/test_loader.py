"""Shards -> loader: right frames and labels, corrupt samples counted, equal batches per rank, exact resume."""

from __future__ import annotations

import json
import logging
import pickle

import numpy as np
import pytest
import torch
from data_fixtures import build_dataset, frame_code, read_frame_index, read_video_level, video_level

from vasot_dist.config.schema import DataConfig
from vasot_dist.data import (
    IGNORE_LABEL,
    Batch,
    CorruptTally,
    build_eval_dataset,
    build_train_dataset,
    collate,
    corrupt_count,
    epoch_batches,
    make_eval_loader,
    make_train_loader,
)

STRIDE = 3


def cfg_for(fx, **kw) -> DataConfig:
    base = dict(shards=str(fx.root), frames_per_video=8, context_frames=2, context_stride=STRIDE, image_size=32,
                batch_size=2, num_workers=0, shuffle_buffer=4, augment=False, timeout_s=120.0)
    base.update(kw)
    return DataConfig(**base)


def run_epoch(cfg: DataConfig, **kw) -> list[Batch]:
    args = dict(rank=0, world_size=1, epoch=0, seed=0)
    args.update(kw)
    loader = make_train_loader(cfg, **args)
    batches = list(loader)
    assert len(batches) == len(loader)
    return batches


def check_video_batch(batch: Batch, fx, cfg: DataConfig) -> None:
    """Every frame is the one frame_idx/context names, of the right video; targets exactly the truth's."""
    b, t_len, s_len = batch.frames.shape[:3]
    assert batch.frames.dtype == torch.uint8 and batch.frames.shape[3:] == (cfg.image_size, cfg.image_size, 3)
    assert (b, t_len, s_len) == (len(batch.keys), cfg.frames_per_video, cfg.context_frames)
    for i, key in enumerate(batch.keys):
        truth = fx.truth[key]
        assert batch.activities[i] == truth.activity and batch.num_frames[i] == truth.num_frames
        fidx = batch.frame_idx[i].numpy()
        mask = batch.mask[i].numpy()
        assert mask.sum() == min(truth.num_frames, t_len)
        valid = fidx[mask]
        assert np.all(np.diff(valid) > 0) and valid.max() < truth.num_frames
        for t in range(t_len):
            for s in range(s_len):
                frame = batch.frames[i, t, s].numpy()
                want = max(0, fidx[t] - STRIDE * (s_len - 1 - s))
                assert read_frame_index(frame) == want, (key, t, s)
                assert abs(read_video_level(frame) - video_level(truth.video)) < 4
                if not cfg.augment:  # codec error on the flat interior of the index quarters
                    hi, lo = frame_code(want)
                    w = frame.shape[1]
                    assert np.abs(frame[8:24, 2:6].astype(int) - hi).max() <= 6
                    assert np.abs(frame[8:24, w // 4 + 2: w // 4 + 6].astype(int) - lo).max() <= 6
        np.testing.assert_array_equal(batch.labels[i][mask].numpy(), truth.labels[valid])
        np.testing.assert_array_equal(batch.progress[i][mask].numpy(), truth.progress[valid])
        np.testing.assert_array_equal(batch.steps[i][mask].numpy(), truth.steps[valid])
        assert (batch.labels[i][~batch.mask[i]] == IGNORE_LABEL).all()
        assert torch.isnan(batch.progress[i][~batch.mask[i]]).all()
        assert (batch.steps[i][~batch.mask[i]] == -1).all()


def test_video_round_trip(video_ds):
    cfg = cfg_for(video_ds)
    batches = run_epoch(cfg)
    assert len(batches) == 8
    keys = [k for b in batches for k in b.keys]
    assert sorted(keys) == sorted(video_ds.keys["train"])  # one epoch = every video once
    for batch in batches:
        check_video_batch(batch, video_ds, cfg)
        assert batch.features is None and not batch.paired and batch.corrupt == 0
    short = video_ds.keys["train"][0]  # 6 frames < 8 requested: padded and masked
    (batch,) = [b for b in batches if short in b.keys]
    assert batch.mask[batch.keys.index(short)].sum() == 6


def test_tcc_sampler(video_ds):
    cfg = cfg_for(video_ds, sampler="tcc", context_frames=3)
    for batch in run_epoch(cfg, seed=3)[:3]:
        check_video_batch(batch, video_ds, cfg)


def _flip_state(plain: np.ndarray, jittered: np.ndarray) -> bool | None:
    """Whether ``jittered`` is ``plain`` mirrored, from their column profiles (standardised, so colour
    jitter, an affine map of the levels, drops out); None when the profile is too symmetric to tell."""
    def profile(x):
        p = x.astype(float).mean(axis=(0, 2))
        return (p - p.mean()) / (p.std() + 1e-6)

    pa, pb = profile(plain), profile(jittered)
    same, mirrored = np.abs(pb - pa).mean(), np.abs(pb - pa[::-1]).mean()
    if abs(same - mirrored) < 0.2:
        return None
    return bool(mirrored < same)


def test_augment_changes_pixels_only_and_per_video(video_ds):
    plain = run_epoch(cfg_for(video_ds), seed=6)
    jittered = run_epoch(cfg_for(video_ds, augment=True), seed=6)
    flips = []
    for a, b in zip(plain, jittered, strict=True):
        assert a.keys == b.keys and torch.equal(a.frame_idx, b.frame_idx) and torch.equal(a.labels, b.labels)
        assert not torch.equal(a.frames, b.frames)
        for va, vb in zip(a.frames.numpy(), b.frames.numpy()):
            shape = (-1,) + va.shape[-3:]
            states = {_flip_state(fa, fb) for fa, fb in zip(va.reshape(shape), vb.reshape(shape))} - {None}
            assert len(states) == 1  # one flip decision for all frames of a video
            flips += states
    assert 0 < sum(flips) < len(flips)


def test_features_round_trip_bit_exact(features_ds):
    cfg = cfg_for(features_ds, modality="features")
    batches = run_epoch(cfg)
    assert sorted(k for b in batches for k in b.keys) == sorted(features_ds.keys["train"])
    for batch in batches:
        assert batch.frames is None and batch.features.dtype == torch.float32
        assert batch.features.shape == (2, 8, 5)
        for i, key in enumerate(batch.keys):
            truth = features_ds.truth[key]
            m = batch.mask[i].numpy()
            fidx = batch.frame_idx[i].numpy()[m]
            np.testing.assert_array_equal(batch.features[i].numpy()[m], truth.features[fidx])
            np.testing.assert_array_equal(batch.labels[i].numpy()[m], truth.labels[fidx])
    for b in make_eval_loader(cfg, "test", rank=0, world_size=1):
        truth = features_ds.truth[b.keys[0]]
        np.testing.assert_array_equal(b.features[0].numpy(), truth.features)


def test_fuzz_shards_skip_and_count(fuzz_ds, caplog):
    good, bad = fuzz_ds.keys["train"], fuzz_ds.bad
    cfg = cfg_for(fuzz_ds, batch_size=1)
    tally = CorruptTally()
    loader = make_train_loader(cfg, rank=0, world_size=1, epoch=0, seed=0, batches_per_epoch=len(good))
    with caplog.at_level(logging.WARNING, logger="vasot_dist.data"):
        batches = list(loader)
    assert corrupt_count(loader) == len(bad)
    for b in batches:
        tally.update(b)
        check_video_batch(b, fuzz_ds, cfg)
    assert sorted(k for b in batches for k in b.keys) == sorted(good)
    assert tally.total == len(bad) == 11
    log = caplog.text
    for key in bad:
        assert key in log  # logged with its key ...
    assert "train-0000" in log  # ... and its shard
    assert "reports 12 frames, the sample JSON says num_frames=40" in log  # over-claimed length caught, not hung


def test_a_short_sidecar_count_and_labels_outside_the_map_are_skipped_and_named(fuzz_ds, caplog):
    # A sidecar num_frames below the video's (7 of 12) used to train on the video's first 7 frames without a
    # word, and labels outside the label map passed to the metrics; both are now corrupt samples: skipped,
    # counted, and the warning names the sample, its shard and what is wrong.
    short = next(k for k, kind in fuzz_ds.bad.items() if kind == "frames_underclaimed")
    outside = next(k for k, kind in fuzz_ds.bad.items() if kind == "labels_outside_map")
    shard_of = {k: str(s) for s in fuzz_ds.shards["train"] for k in _keys_in(s)}
    loader = make_eval_loader(cfg_for(fuzz_ds), "train", rank=0, world_size=1)
    with caplog.at_level(logging.WARNING, logger="vasot_dist.data"):
        keys = [k for b in loader for k in b.keys]
    assert short not in keys and outside not in keys and keys == fuzz_ds.keys["train"]
    lines = caplog.text.splitlines()
    said = next(line for line in lines if short in line)
    assert f"corrupt sample {short} in {shard_of[short]}: container reports 12 frames, the sample JSON says " \
           "num_frames=7: its labels do not describe this video" in said
    said = next(line for line in lines if outside in line)
    assert f"corrupt sample {outside} in {shard_of[outside]}: {outside}.json labels [9] are not ids of the label " \
           "map (ids [0, 1, 2, 3])" in said


def _keys_in(shard) -> list[str]:
    import tarfile

    with tarfile.open(shard) as tar:
        return sorted({m.name.split(".", 1)[0] for m in tar})


def test_fuzz_eval_with_workers_counts_each_bad_sample_once(fuzz_ds):
    cfg = cfg_for(fuzz_ds, num_workers=2)
    loader = make_eval_loader(cfg, "train", rank=0, world_size=1)
    keys = [k for b in loader for k in b.keys]
    assert keys == fuzz_ds.keys["train"]  # in shard order, bad ones removed
    assert corrupt_count(loader) == len(fuzz_ds.bad)  # including those after a worker's last video


def test_two_ranks_two_workers_disjoint_and_equal(video_ds):
    cfg = cfg_for(video_ds, num_workers=2)
    loader = make_train_loader(cfg, rank=0, world_size=2, epoch=0, seed=5)
    assert loader.timeout == cfg.timeout_s and not loader.persistent_workers and loader.batch_size is None
    per_rank = [run_epoch(cfg, rank=r, world_size=2, seed=5) for r in range(2)]
    assert [len(b) for b in per_rank] == [4, 4]
    keys = [[k for b in batches for k in b.keys] for batches in per_rank]
    assert len(set(keys[0])) == 8 and len(set(keys[1])) == 8
    assert not set(keys[0]) & set(keys[1])
    assert set(keys[0]) | set(keys[1]) == set(video_ds.keys["train"])
    assert {b.worker for b in per_rank[0]} == {0, 1}


@pytest.mark.parametrize("workers", [0, 2])
def test_uneven_shards_still_equal_batches(tmp_path, workers):
    fx = build_dataset(tmp_path, splits={"train": 13}, frames=(8, 12), samples_per_shard=3)  # 3,3,3,3,1
    cfg = cfg_for(fx, num_workers=workers)
    counts = [len(run_epoch(cfg, rank=r, world_size=2, seed=1)) for r in range(2)]
    assert counts == [epoch_batches(13, 2, 2)] * 2 == [3, 3]


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_yields_the_uninterrupted_batches(video_ds, workers):
    cfg = cfg_for(video_ds, num_workers=workers, augment=True, shuffle_buffer=6)
    full = run_epoch(cfg, epoch=2, seed=11)
    again = run_epoch(cfg, epoch=2, seed=11)
    for start in (1, 3):
        resumed = run_epoch(cfg, epoch=2, seed=11, start_batch=start)
        assert len(resumed) == len(full) - start
        for a, b in zip(full[start:], resumed, strict=True):
            assert a.keys == b.keys
            assert torch.equal(a.frames, b.frames) and torch.equal(a.labels, b.labels)
    assert all(torch.equal(a.frames, b.frames) for a, b in zip(full, again, strict=True))
    other = run_epoch(cfg, epoch=3, seed=11)
    assert [b.keys for b in other] != [b.keys for b in full]


@pytest.mark.parametrize("resampled", [False, True])
def test_resume_across_passes(video_ds, resampled):
    # 12 batches of 2 from 16 videos: each worker needs a second pass over (reshuffled) shards.
    cfg = cfg_for(video_ds, num_workers=2, augment=True, resampled=resampled)
    full = run_epoch(cfg, seed=2, batches_per_epoch=12)
    resumed = run_epoch(cfg, seed=2, batches_per_epoch=12, start_batch=9)
    assert len(full) == 12 and len(resumed) == 3
    for a, b in zip(full[9:], resumed, strict=True):
        assert a.keys == b.keys and torch.equal(a.frames, b.frames)
    assert run_epoch(cfg, seed=2, batches_per_epoch=12, start_batch=12) == []
    with pytest.raises(ValueError, match="past the end"):
        make_train_loader(cfg, rank=0, world_size=1, epoch=0, seed=2, batches_per_epoch=12, start_batch=13)


def test_pairs_share_activity(video_ds):
    cfg = cfg_for(video_ds, pairs=True, batch_size=4, shuffle_buffer=8)
    batches = run_epoch(cfg, seed=4)
    assert len(batches) == epoch_batches(16, 1, 4, pairs=True) == 4
    for b in batches:
        assert b.paired and len(b) == 4
        for i in (0, 2):
            assert b.activities[i] == b.activities[i + 1]
            assert b.keys[i] != b.keys[i + 1]
            assert b.keys[i].split("__")[0] == b.activities[i]
        check_video_batch(b, video_ds, cfg)


def test_pair_config_errors(video_ds, tmp_path):
    with pytest.raises(ValueError, match="even data.batch_size"):
        build_train_dataset(cfg_for(video_ds, pairs=True, batch_size=3), rank=0, world_size=1, epoch=0, seed=0)
    lone = build_dataset(tmp_path, splits={"train": 2})  # one video per activity
    with pytest.raises(ValueError, match="no activity"):
        build_train_dataset(cfg_for(lone, pairs=True), rank=0, world_size=1, epoch=0, seed=0)


def test_fewer_shards_than_readers_share_the_samples(tmp_path):
    # 12 videos in one shard for 2 ranks: each rank reads the shard and keeps its own 6, the two halves disjoint
    fx = build_dataset(tmp_path / "one", modality="features", splits={"train": 12}, frames=(6, 12),
                       samples_per_shard=12)
    assert len(json.loads((fx.root / "dataset.json").read_text())["shards"]) == 1
    cfg = cfg_for(fx, modality="features", num_workers=0, shuffle_buffer=4)
    seen = []
    for epoch in range(3):
        per_rank = [run_epoch(cfg, rank=r, world_size=2, epoch=epoch, seed=3) for r in range(2)]
        assert [len(b) for b in per_rank] == [epoch_batches(12, 2, 2)] * 2 == [3, 3]
        keys = [[k for b in batches for k in b.keys] for batches in per_rank]
        assert len(set(keys[0])) == len(set(keys[1])) == 6 and not set(keys[0]) & set(keys[1])
        assert set(keys[0]) | set(keys[1]) == set(fx.keys["train"])
        for b in per_rank[0]:  # each row is the video its key names
            for i, key in enumerate(b.keys):
                np.testing.assert_array_equal(b.labels[i][b.mask[i]].numpy(),
                                              fx.truth[key].labels[b.frame_idx[i][b.mask[i]].numpy()])
        assert [b.keys for b in run_epoch(cfg, rank=0, world_size=2, epoch=epoch, seed=3)] == [
            b.keys for b in per_rank[0]]  # deterministic
        seen.append(frozenset(keys[0]))
    assert len(set(seen)) > 1  # the shares rotate between epochs

    # with DataLoader workers too (2 ranks x 2 workers = 4 readers of 1 shard): equal batches on both ranks
    with_workers = cfg_for(fx, modality="features", num_workers=2)
    assert [len(run_epoch(with_workers, rank=r, world_size=2, seed=1)) for r in range(2)] == [3, 3]


def test_fewer_shards_than_readers_without_an_index(video_ds):
    pattern = str(video_ds.root / "train-{000000..000001}.tar")  # 2 shards, sizes unknown, 3 readers
    with pytest.raises(ValueError, match=r"2 shard\(s\).*world_size 3 x data.num_workers 1 = 3 readers.*"
                                         "no dataset.json.*resampled=true"):
        make_train_loader(cfg_for(video_ds, shards=pattern), rank=0, world_size=3, epoch=0, seed=0,
                          batches_per_epoch=1)
    resampled = cfg_for(video_ds, num_workers=2, resampled=True)
    batches = run_epoch(resampled, rank=2, world_size=3)
    assert len(batches) == epoch_batches(16, 3, 2) == 2
    for b in batches:
        check_video_batch(b, video_ds, resampled)


def test_pattern_and_pipe_sources(video_ds):
    pattern = str(video_ds.root / "train-{000000..000003}.tar")
    cfg = cfg_for(video_ds, shards=pattern)
    with pytest.raises(ValueError, match="resampled=true or pass batches_per_epoch"):
        make_train_loader(cfg, rank=0, world_size=1, epoch=0, seed=0)
    assert len(run_epoch(cfg, batches_per_epoch=3)) == 3
    piped = run_epoch(cfg_for(video_ds, shards="pipe:cat " + pattern), batches_per_epoch=2)
    assert len(piped) == 2 and all(k in video_ds.truth for b in piped for k in b.keys)
    endless = make_train_loader(cfg_for(video_ds, shards=pattern, resampled=True), rank=0, world_size=1,
                                epoch=0, seed=0)
    it = iter(endless)
    assert [len(next(it)) for _ in range(10)] == [2] * 10  # 10 batches from 8 samples: it never ends


def test_config_errors(video_ds):
    with pytest.raises(ValueError, match="holds 'video' shards"):
        make_train_loader(cfg_for(video_ds, modality="features"), rank=0, world_size=1, epoch=0, seed=0)
    with pytest.raises(ValueError, match="rank < world_size"):
        make_train_loader(cfg_for(video_ds), rank=2, world_size=2, epoch=0, seed=0)
    with pytest.raises(ValueError, match="not enough for one batch"):
        make_train_loader(cfg_for(video_ds, batch_size=20), rank=0, world_size=1, epoch=0, seed=0)


@pytest.mark.parametrize("workers", [0, 2])
def test_eval_loader_whole_videos_split_by_rank(video_ds, workers):
    cfg = cfg_for(video_ds, num_workers=workers)
    test_keys = video_ds.keys["test"]
    for rank, want in [(0, [test_keys[0], test_keys[2]]), (1, [test_keys[1]])]:
        batches = list(make_eval_loader(cfg, "test", rank=rank, world_size=2))
        assert [b.keys[0] for b in batches] == want
        for b in batches:
            truth = video_ds.truth[b.keys[0]]
            assert len(b) == 1 and b.frames.shape[1] == truth.num_frames and b.mask.all()
            assert b.frame_idx[0].tolist() == list(range(truth.num_frames))
            for t in range(truth.num_frames):
                assert read_frame_index(b.frames[0, t, -1].numpy()) == t
                assert read_frame_index(b.frames[0, t, 0].numpy()) == max(0, t - STRIDE)
            np.testing.assert_array_equal(b.labels[0].numpy(), truth.labels)
    (b,) = list(make_eval_loader(cfg, "test", rank=1, world_size=2, max_frames=5))
    n = video_ds.truth[b.keys[0]].num_frames
    assert b.frame_idx[0].tolist() == np.round(np.linspace(0, n - 1, 5)).astype(int).tolist()


def test_pipelines_pickle(video_ds):
    cfg = cfg_for(video_ds)
    ds = pickle.loads(pickle.dumps(build_train_dataset(cfg, rank=0, world_size=1, epoch=0, seed=0)))
    check_video_batch(next(iter(ds)), video_ds, cfg)
    ev = pickle.loads(pickle.dumps(build_eval_dataset(cfg, "test", rank=0, world_size=1)))
    assert next(iter(ev)).keys == [video_ds.keys["test"][0]]


def _sample(t: int, key: str) -> dict:
    return dict(frames=np.full((t, 1, 2, 2, 3), t, np.uint8), mask=np.ones(t, bool), labels=np.arange(t),
                progress=np.linspace(0, 1, t, dtype=np.float32), steps=np.arange(t), frame_idx=np.arange(t),
                num_frames=t, key=key, activity="a")


def test_collate_pads_and_tally():
    batch = collate([_sample(3, "a__1"), _sample(5, "a__2")], corrupt=2, worker=1)
    assert batch.frames.shape == (2, 5, 1, 2, 2, 3)
    assert batch.mask.tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    assert batch.labels[0].tolist() == [0, 1, 2, IGNORE_LABEL, IGNORE_LABEL]
    assert batch.frame_idx[0, 3:].tolist() == [-1, -1] and torch.isnan(batch.progress[0, 3:]).all()
    assert (batch.frames[0, 3:] == 0).all()
    assert batch.padded and not collate([_sample(4, "a__1"), _sample(4, "a__2")]).padded
    moved = batch.to("cpu")
    assert isinstance(moved, Batch) and torch.equal(moved.frames, batch.frames) and moved.keys == batch.keys
    assert moved.padded  # host-side flag survives the copy
    tally = CorruptTally()
    for worker, count in [(0, 1), (1, 2), (0, 3)]:
        tally.update(collate([_sample(2, "a__1")], corrupt=count, worker=worker))
    assert tally.total == 5


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_pinned_batch_to_gpu(video_ds):
    loader = make_train_loader(cfg_for(video_ds, num_workers=2), rank=0, world_size=1, epoch=0, seed=0)
    assert loader.pin_memory
    batch = next(iter(loader))
    assert batch.frames.is_pinned()
    on_gpu = batch.to("cuda")
    assert on_gpu.frames.is_cuda and on_gpu.frames.dtype == torch.uint8
    assert torch.equal(on_gpu.labels.cpu(), batch.labels)
