"""The synthetic procedural benchmark: determinism, ground truth consistency, temporal variations."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from pl_helpers import decode_all, read_shards
from vasot_pipelines import synthetic as syn

from vasot_dist.config.schema import SyntheticConfig
from vasot_dist.data.format import read_frame_index

SMALL = SyntheticConfig(num_activities=2, steps_per_activity=3, videos_per_activity=2, test_videos_per_activity=1,
                        frames_min=16, frames_max=40, size=32, feature_dim=16, seed=0)


def cfg(**kw) -> SyntheticConfig:
    return dataclasses.replace(SMALL, **kw)


def timelines(c: SyntheticConfig, n: int = 30):
    return [(a, syn.video_timeline(c, a, "train", v)) for a in range(c.num_activities) for v in range(n)]


def segments_of(tl):
    """Runs of equal (label, step) as (kind, step, start, length), recomputed from the per-frame arrays."""
    out, start = [], 0
    for i in range(1, tl.num_frames + 1):
        if i == tl.num_frames or tl.labels[i] != tl.labels[start]:
            out.append((int(tl.steps[start]), start, i - start))
            start = i
    return out


def test_same_seed_same_arrays_other_seed_differs():
    f1, t1 = syn.render_video(SMALL, 1, "train", 1)
    f2, t2 = syn.render_video(SMALL, 1, "train", 1)
    assert f1.dtype == np.uint8 and f1.shape == (t1.num_frames, 32, 32, 3)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(t1.progress, t2.progress)
    x1, _ = syn.synth_features(SMALL, 1, "train", 1)
    x2, _ = syn.synth_features(SMALL, 1, "train", 1)
    np.testing.assert_array_equal(x1, x2)
    f3, t3 = syn.render_video(cfg(seed=1), 1, "train", 1)
    assert f3.shape != f1.shape or np.abs(f3.astype(int) - f1).mean() > 10
    x3, _ = syn.synth_features(cfg(seed=1), 1, "train", 1)
    assert x3.shape != x1.shape or not np.allclose(x3, x1)
    # videos of one run differ from each other too
    assert not np.array_equal(syn.render_video(SMALL, 1, "train", 0)[0][:16], f1[:16])


def test_ground_truth_arrays_agree_with_each_other_and_the_activity_plan():
    c = cfg(p_time_warp=0.5, p_background=0.5, p_redundant=0.5, p_repeat=0.5, p_permute=0.3)
    k, bg = c.steps_per_activity, c.num_activities * c.steps_per_activity
    assert syn.label_map(c)["background"] == bg
    for a, tl in timelines(c):
        plan = syn.activity_plan(c, a)
        assert c.frames_min <= tl.num_frames <= c.frames_max
        is_bg = tl.labels == bg
        np.testing.assert_array_equal(is_bg, tl.steps == -1)
        np.testing.assert_array_equal(is_bg, tl.progress == -1)
        np.testing.assert_array_equal(tl.labels[~is_bg], a * k + tl.steps[~is_bg])
        st = tl.steps[~is_bg]
        lo, hi = plan.starts[st], plan.starts[st] + plan.durations[st]
        p = tl.progress[~is_bg]
        assert ((p > lo) & (p < hi)).all()  # a frame's progress lies inside its own step's canonical span
        assert sum(s.length for s in tl.segments) == tl.num_frames
        if not tl.flags["permute"] and not tl.flags["repeat"]:
            assert (np.diff(p) > 0).all(), "progress must increase within an in-order video"
            assert [s for s, _, _ in segments_of(tl) if s >= 0] == list(range(k))


def test_defaults_off_give_clean_in_order_videos_with_canonical_durations():
    c = cfg(p_time_warp=0.0, p_background=0.0, p_redundant=0.0, p_repeat=0.0, p_permute=0.0)
    for a, tl in timelines(c, 10):
        plan = syn.activity_plan(c, a)
        runs = segments_of(tl)
        assert [s for s, _, _ in runs] == list(range(c.steps_per_activity))
        for s, start, length in runs:
            assert abs(length - tl.num_frames * plan.durations[s]) <= 2  # proportional to canonical durations
            u = (np.arange(length) + 0.5) / length  # linear pace inside the step
            np.testing.assert_allclose(tl.progress[start:start + length], plan.starts[s] + u * plan.durations[s])


def test_each_variation_changes_what_it_should():
    k = SMALL.steps_per_activity
    off = dict(p_time_warp=0.0, p_background=0.0, p_redundant=0.0, p_repeat=0.0, p_permute=0.0)
    for _, tl in timelines(cfg(**{**off, "p_permute": 1.0}), 10):
        steps = [s for s, _, _ in segments_of(tl)]
        assert sorted(steps) == list(range(k)) and steps != list(range(k))
        assert (np.diff(tl.progress) < 0).any()
    for _, tl in timelines(cfg(**{**off, "p_repeat": 1.0}), 10):
        steps = [s for s, _, _ in segments_of(tl)]
        assert len(steps) == k + 1 and len(set(steps)) == k  # one step twice, not back to back
        assert all(x != y for x, y in zip(steps, steps[1:]))
    bg = SMALL.num_activities * k
    for _, tl in timelines(cfg(**{**off, "p_redundant": 1.0}), 10):
        kinds = [s.kind for s in tl.segments]
        assert kinds.count("redundant") == 1 and (tl.labels == bg).sum() >= 1
    for _, tl in timelines(cfg(**{**off, "p_background": 1.0}), 10):
        assert 1 <= [s.kind for s in tl.segments].count("background") <= 2 and (tl.labels == bg).any()
    assert not any((tl.labels == bg).any() for _, tl in timelines(cfg(**off), 10))
    # time warp: durations leave the canonical proportions and the pace inside a step is not linear
    deviations, nonlinear = [], 0
    for a, tl in timelines(cfg(**{**off, "p_time_warp": 1.0}), 10):
        plan = syn.activity_plan(SMALL, a)
        for s, start, length in segments_of(tl):
            deviations.append(abs(length - tl.num_frames * plan.durations[s]))
            u = (tl.progress[start:start + length] - plan.starts[s]) / plan.durations[s]
            nonlinear += not np.allclose(u, (np.arange(length) + 0.5) / length, atol=1e-9)
    assert max(deviations) > 4 and nonlinear > len(deviations) // 2


def test_features_follow_the_same_timeline_and_are_linearly_learnable():
    c = cfg(p_background=0.5, feature_dim=32)
    xs, ys = [], []
    for v in range(8):
        x, tl = syn.synth_features(c, 0, "train", v)
        np.testing.assert_array_equal(tl.labels, syn.video_timeline(c, 0, "train", v).labels)
        assert x.dtype == np.float32 and x.shape == (tl.num_frames, 32)
        xs.append(x)
        ys.append(tl.labels)
    fit_x, fit_y = np.concatenate(xs[:4]), np.concatenate(ys[:4])
    test_x, test_y = np.concatenate(xs[4:]), np.concatenate(ys[4:])
    labs = np.unique(fit_y)
    # linear probe: least squares onto one-hot targets (with bias), predict by argmax
    design = np.c_[fit_x, np.ones(len(fit_x))]
    w = np.linalg.lstsq(design, (fit_y[:, None] == labs[None]).astype(float), rcond=None)[0]
    probe_acc = (labs[(np.c_[test_x, np.ones(len(test_x))] @ w).argmax(1)] == test_y).mean()
    assert probe_acc > 0.95  # held-out videos: the step structure is real
    # ... but the per-video nuisance offsets make raw nearest-centroid matching clearly worse
    cents = np.stack([fit_x[fit_y == lab].mean(0) for lab in labs])
    nearest = labs[((test_x[:, None] - cents[None]) ** 2).sum(-1).argmin(1)]
    assert (nearest == test_y).mean() < probe_acc


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="frames_min"):
        syn.validate_config(cfg(frames_min=5))
    with pytest.raises(ValueError, match="size"):
        syn.validate_config(cfg(size=33))
    with pytest.raises(ValueError, match="p_repeat"):
        syn.validate_config(cfg(p_repeat=1.5))
    with pytest.raises(ValueError, match="overlay"):
        syn.validate_config(cfg(size=24), index_overlay=True)


def test_generated_video_dataset_matches_timelines_and_overlay(tmp_path):
    c = cfg(size=64)
    path = syn.generate_synthetic(tmp_path / "v", c, index_overlay=True)
    index = json.loads(path.read_text())
    assert index["modality"] == "video" and index["short_side"] == 64 and index["fps"] == syn.SYNTHETIC_FPS
    assert index["splits"]["train"]["activities"] == {"activity0": 2, "activity1": 2}
    assert index["splits"]["test"]["num_samples"] == 2 and len(index["shards"]) == 6
    samples = read_shards(tmp_path / "v")
    assert len(samples) == 6
    for key, s in samples.items():
        meta = s["json"]
        a, split, v = int(meta["activity"][-1]), meta["split"], int(key[-4:])
        tl = syn.video_timeline(c, a, split, v)
        assert meta["labels"] == tl.labels.tolist() and meta["steps"] == tl.steps.tolist()
        np.testing.assert_allclose(meta["progress"], tl.progress)
        frames = decode_all(s["mp4"])
        assert frames.shape == (meta["num_frames"], 64, 64, 3) and meta["num_frames"] == tl.num_frames
        assert [read_frame_index(f) for f in frames] == list(range(tl.num_frames))
    # same seed -> byte-identical shards; a rerun keeps the existing shards
    path2 = syn.generate_synthetic(tmp_path / "w", c, index_overlay=True)
    for sh in index["shards"]:
        assert (tmp_path / "v" / sh["path"]).read_bytes() == (tmp_path / "w" / sh["path"]).read_bytes()
    assert path2.read_text() == path.read_text()


def test_feature_dataset_and_cli(tmp_path):
    assert syn.main(["--out", str(tmp_path / "f"), "--modality", "features", "--num-activities", "1",
                     "--steps-per-activity", "3", "--videos-per-activity", "2", "--test-videos-per-activity", "1",
                     "--frames-min", "16", "--frames-max", "20", "--feature-dim", "8"]) == 0
    samples = read_shards(tmp_path / "f")
    assert len(samples) == 3
    c = SyntheticConfig(num_activities=1, steps_per_activity=3, videos_per_activity=2, test_videos_per_activity=1,
                        frames_min=16, frames_max=20, feature_dim=8)
    for s in samples.values():
        meta = s["json"]
        x = np.load(__import__("io").BytesIO(s["npy"]))
        ref, _ = syn.synth_features(c, 0, meta["split"], int(meta["key"][-4:]))
        np.testing.assert_array_equal(x, ref)
        assert meta["feature_dim"] == 8 and "height" not in meta
