"""The synthetic procedural benchmark: determinism, ground truth consistency, temporal variations, and the
statistics of the presets that mimic real datasets (``configs/synthetic/``; docs/benchmark.md)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pl_helpers import decode_all, read_shards
from vasot_pipelines import synthetic as syn

from vasot_dist.config import load_config
from vasot_dist.config.schema import SyntheticConfig
from vasot_dist.data.format import read_frame_index
from vasot_dist.data.stages import standardize_features
from vasot_dist.eval.segmentation import segmentation_metrics
from vasot_dist.models.kmeans import spherical_kmeans

PRESETS = Path(__file__).resolve().parents[2] / "configs" / "synthetic"

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
    c = cfg(p_time_warp=0.5, p_background=0.5, p_redundant=0.5, p_repeat=0.5, p_permute=0.3, p_swap=0.3,
            optional_steps=0.4, min_steps=2, steps_per_activity=5, frames_min=20)
    lm = syn.label_map(c)
    assert lm["background"] == syn.background_id(c) == 0
    assert sorted(lm.values()) == list(range(syn.total_steps(c) + 1))  # consecutive ids, nothing shared
    for a, tl in timelines(c):
        plan = syn.activity_plan(c, a)
        k = plan.num_steps
        assert 2 <= k <= 5 and k == syn.num_steps(c, a)
        assert plan.first_label == lm[f"activity{a}_step0"]
        assert c.frames_min <= tl.num_frames <= c.frames_max
        is_bg = tl.labels == 0
        np.testing.assert_array_equal(is_bg, tl.steps == -1)
        np.testing.assert_array_equal(is_bg, tl.progress == -1)
        np.testing.assert_array_equal(tl.labels[~is_bg], plan.first_label + tl.steps[~is_bg])
        st = tl.steps[~is_bg]
        lo, hi = plan.starts[st], plan.starts[st] + plan.durations[st]
        p = tl.progress[~is_bg]
        assert ((p > lo) & (p < hi)).all()  # a frame's progress lies inside its own step's canonical span
        assert sum(s.length for s in tl.segments) == tl.num_frames
        present = sorted({s for s, _, _ in segments_of(tl) if s >= 0})
        assert tl.flags["missing"] == (len(present) < k)
        assert all(plan.skip[s] > 0 for s in set(range(k)) - set(present))  # only optional steps go missing
        if not any(tl.flags[f] for f in ("permute", "repeat", "swap")):
            assert (np.diff(p) > 0).all(), "progress must increase within an in-order video"
            assert [s for s, _, _ in segments_of(tl) if s >= 0] == present


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
    for _, tl in timelines(cfg(**{**off, "p_swap": 1.0, "steps_per_activity": 4}), 10):
        assert [s for s, _, _ in segments_of(tl)] == [1, 0, 3, 2]  # every adjacent pair, left to right
    for _, tl in timelines(cfg(**{**off, "p_permute": 1.0}), 10):
        steps = [s for s, _, _ in segments_of(tl)]
        assert sorted(steps) == list(range(k)) and steps != list(range(k))
        assert (np.diff(tl.progress) < 0).any()
    for _, tl in timelines(cfg(**{**off, "p_repeat": 1.0}), 10):
        steps = [s for s, _, _ in segments_of(tl)]
        assert len(steps) == k + 1 and len(set(steps)) == k  # one step twice, not back to back
        assert all(x != y for x, y in zip(steps, steps[1:]))
    bg = 0
    for _, tl in timelines(cfg(**{**off, "p_redundant": 1.0}), 10):
        kinds = [s.kind for s in tl.segments]
        assert kinds.count("redundant") == 1 and (tl.labels == bg).sum() >= 1
    for _, tl in timelines(cfg(**{**off, "p_background": 1.0}), 10):
        assert 1 <= [s.kind for s in tl.segments].count("background") <= 2 and (tl.labels == bg).any()
    for _, tl in timelines(cfg(**{**off, "p_background": 1.0, "background_placement": "ends"}), 10):
        kinds = [s.kind for s in tl.segments]
        assert kinds[0] == kinds[-1] == "background" and kinds.count("background") == 2
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


def test_activity_subset_keeps_the_global_label_ids(tmp_path):
    c = cfg(num_activities=3, min_steps=2, steps_per_activity=4, activities=[2], test_videos_per_activity=0)
    path = syn.generate_synthetic(tmp_path / "f", c, modality="features", splits=("train",))
    index = json.loads(path.read_text())
    assert index["splits"]["train"]["activities"] == {"activity2": 2}
    assert index["label_map"] == syn.label_map(c) and index["background_id"] == 0
    first = syn.activity_plan(c, 2).first_label
    for s in read_shards(tmp_path / "f").values():
        labels = set(s["json"]["labels"])
        assert labels <= {0, *range(first, first + syn.num_steps(c, 2))}
    with pytest.raises(ValueError, match="activities"):
        syn.validate_config(cfg(activities=[2]))


# ------------------------------------------------------------------ presets that mimic real datasets
def preset(name: str) -> SyntheticConfig:
    return load_config(PRESETS / f"{name}.yaml").data.synthetic


def all_timelines(c: SyntheticConfig, split: str = "train"):
    count = c.videos_per_activity if split == "train" else c.test_videos_per_activity
    return [(a, syn.video_timeline(c, a, split, v)) for a in range(c.num_activities) for v in range(count)]


def test_breakfast_like_statistics():
    c = preset("breakfast_like")
    ks = [syn.num_steps(c, a) + 1 for a in range(c.num_activities)]  # + the SIL-like background class
    assert min(ks) >= 5 and max(ks) <= 14 and len(set(ks)) >= 4  # Breakfast: 5-14 classes per activity
    ratios = [p.durations.max() / p.durations.min() for p in (syn.activity_plan(c, a) for a in range(10))]
    assert np.median(ratios) > 4  # long-tailed canonical durations: a step can be 5x another
    tls = all_timelines(c)
    lengths = np.array([tl.num_frames for _, tl in tls])
    assert lengths.min() >= 300 and lengths.max() <= 2000 and lengths.max() > 1700 and lengths.min() < 400
    for _, tl in tls:  # SIL at both ends, and only there
        kinds = [s.kind for s in tl.segments if s.kind != "redundant"]
        assert kinds[0] == kinds[-1] == "background" and kinds.count("background") == 2
    share = np.mean([np.mean(tl.labels == 0) for _, tl in tls])
    assert 0.07 < share < 0.16
    # optional steps: missing from 20-40 % of the videos of their activity (24 videos: a loose band)
    for a in range(c.num_activities):
        plan = syn.activity_plan(c, a)
        vids = [tl for b, tl in tls if b == a]
        for s in np.flatnonzero(plan.skip):
            missing = np.mean([s not in set(tl.steps.tolist()) for tl in vids])
            assert 0.0 < missing < 0.7, (a, s, missing)
    assert 0.1 < np.mean([tl.flags["missing"] for _, tl in tls]) < 0.9
    assert 0.05 < np.mean([tl.flags["swap"] for _, tl in tls]) < 0.6
    assert 0.02 < np.mean([tl.flags["repeat"] for _, tl in tls]) < 0.25


def test_yti_like_statistics():
    c = preset("yti_like")
    ks = [syn.num_steps(c, a) for a in range(c.num_activities)]
    assert c.num_activities == 5 and min(ks) >= 7 and max(ks) <= 12  # YTI: 5 activities, 7-12 steps
    tls = all_timelines(c)
    assert len(tls) == 150  # YTI's 150 videos
    share = np.mean([np.mean(tl.labels == 0) for _, tl in tls])
    assert 0.5 < share < 0.7  # YTI is ~60 % background
    assert np.mean([sum(s.kind == "background" for s in tl.segments) for _, tl in tls]) > 2.5  # between steps


def test_alignment_presets_statistics():
    pouring = preset("pouring_like")
    tls = all_timelines(pouring) + all_timelines(pouring, "test")
    assert len(tls) == 102 and all(tl.flags == {**tl.flags, "missing": False, "swap": False, "permute": False,
                                                "repeat": False, "background": False} for _, tl in tls)
    assert all((np.diff(tl.progress) > 0).all() for _, tl in tls)  # monotonic
    ikea = preset("ikea_like")
    tls = all_timelines(ikea) + all_timelines(ikea, "test")
    assert len(tls) == 38  # LAV's 27 / 11 split sizes
    out_of_order = np.mean([(np.diff(tl.progress[tl.progress >= 0]) < 0).any() for _, tl in tls])
    assert out_of_order > 0.4  # non-monotonic: swaps, permutations, repeats
    assert 0.15 < np.mean([np.mean(tl.labels == 0) for _, tl in tls]) < 0.45  # background (and redundant) frames


def _probe_and_kmeans(c: SyntheticConfig, a: int, videos: int, standardize: bool) -> tuple[float, float]:
    xs, ys = [], []
    for v in range(videos):
        x, tl = syn.synth_features(c, a, "train", v)
        xs.append(standardize_features(x) if standardize else x)
        ys.append(tl.labels)
    half = videos // 2
    fx, fy, tx, ty = np.concatenate(xs[:half]), np.concatenate(ys[:half]), np.concatenate(xs[half:]), np.concatenate(
        ys[half:])
    labs = np.unique(fy)
    w = np.linalg.lstsq(np.c_[fx, np.ones(len(fx))], (fy[:, None] == labs[None]).astype(float), rcond=None)[0]
    probe = 100 * float((labs[(np.c_[tx, np.ones(len(tx))] @ w).argmax(1)] == ty).mean())
    k = len(np.unique(np.concatenate(ys)))
    xs, ys = [x[::4] for x in xs], [y[::4] for y in ys]  # every 4th frame is plenty for k-means
    km = spherical_kmeans(torch.from_numpy(np.concatenate(xs)), k, n_init=1, seed=0).labels.numpy()
    parts = np.split(km, np.cumsum([len(y) for y in ys])[:-1])
    return probe, segmentation_metrics(parts, ys, mode="full")["MoF"]


@pytest.mark.parametrize("name,standardize", [("breakfast_like", True), ("yti_like", False), ("ikea_like", False)])
def test_preset_features_hide_a_learnable_structure(name, standardize):
    """A supervised linear probe finds the steps on held-out videos; k-means on the raw features does not."""
    c = preset(name)
    probe, kmeans_mof = _probe_and_kmeans(c, 0, 6, standardize)
    assert probe > 85
    assert 20 < kmeans_mof < 45  # the target: 30-45 on the preset's scale, a loose band on 6 videos
