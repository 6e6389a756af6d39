"""Statistics of the synthetic presets (``configs/synthetic/<preset>.yaml``), for docs/benchmark.md.

Usage::

    python benchmarks/study_synthetic_presets.py      # prints a markdown table, writes
                                                      # benchmarks/results/study_synthetic_presets.json

Per preset, over every video of the preset (generator seed 0): activities, classes per activity (steps, plus the
background class where the preset's protocol counts it), videos, frames per video, background share, the
spread of canonical step durations (largest / smallest step of an activity, median over activities), the
share of videos missing an optional step / with a swap / a repeat / out of canonical order; and, on the
features of the first activity (first 12 videos; standardised per video where the preset says so): a
supervised linear probe (least squares on one-hot labels, fit on half the videos, scored on the other half)
and spherical k-means with K = the classes (MoF, Hungarian over the activity), i.e. what the raw features
give without learning.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vasot_pipelines import synthetic as syn  # noqa: E402

from vasot_dist.config import load_config  # noqa: E402
from vasot_dist.data.stages import standardize_features  # noqa: E402
from vasot_dist.eval.segmentation import segmentation_metrics  # noqa: E402
from vasot_dist.models.kmeans import spherical_kmeans  # noqa: E402

PRESETS = ("breakfast_like", "yti_like", "pouring_like", "ikea_like")


def feature_structure(cfg, videos: int = 12) -> dict[str, float]:
    """Linear probe accuracy (%) and k-means MoF (%) on the raw features of activity 0 (see the module docstring)."""
    syn_cfg = cfg.data.synthetic
    xs, ys = [], []
    for v in range(videos):
        x, tl = syn.synth_features(syn_cfg, 0, "train", v)
        xs.append(standardize_features(x) if cfg.data.standardize else x)
        ys.append(tl.labels)
    half = videos // 2
    fx, fy = np.concatenate(xs[:half]), np.concatenate(ys[:half])
    tx, ty = np.concatenate(xs[half:]), np.concatenate(ys[half:])
    labs = np.unique(fy)
    w = np.linalg.lstsq(np.c_[fx, np.ones(len(fx))], (fy[:, None] == labs[None]).astype(float), rcond=None)[0]
    probe = float((labs[(np.c_[tx, np.ones(len(tx))] @ w).argmax(1)] == ty).mean() * 100)
    excluded = cfg.eval.exclude_cls
    k = len(set(np.concatenate(ys).tolist()) - ({excluded} if excluded is not None else set()))
    km = spherical_kmeans(torch.from_numpy(np.concatenate(xs)), k, n_init=2, seed=0).labels.numpy()
    parts = np.split(km, np.cumsum([len(y) for y in ys])[:-1])
    mof = segmentation_metrics(parts, ys, mode="full", exclude_cls=excluded)["MoF"]
    return {"linear_probe_acc": probe, "kmeans_mof": float(mof)}


def preset_stats(name: str) -> dict[str, object]:
    cfg = load_config(ROOT / "configs" / "synthetic" / f"{name}.yaml")
    c = cfg.data.synthetic
    has_background = c.p_background > 0 or c.p_redundant > 0
    counts_background = has_background and cfg.eval.exclude_cls != syn.background_id(c)
    splits = {"train": c.videos_per_activity, "test": c.test_videos_per_activity}
    tls = [syn.video_timeline(c, a, split, v) for a in range(c.num_activities) for split, n in splits.items()
           for v in range(n)]
    steps = [syn.num_steps(c, a) for a in range(c.num_activities)]
    ratios = [float(p.durations.max() / p.durations.min()) for p in (syn.activity_plan(c, a)
                                                                    for a in range(c.num_activities))]
    lengths = np.array([tl.num_frames for tl in tls])

    def share(flag: str) -> float:
        return float(np.mean([tl.flags[flag] for tl in tls]) * 100)

    out_of_order = np.mean([(np.diff(tl.progress[tl.progress >= 0]) < 0).any() for tl in tls]) * 100
    return {
        "activities": c.num_activities,
        "classes_per_activity": [k + int(counts_background) for k in steps],
        "background_counted_as_class": bool(counts_background),
        "videos": len(tls), "videos_per_split": splits,
        "frames_mean": float(lengths.mean()), "frames_min": int(lengths.min()), "frames_max": int(lengths.max()),
        "background_share_pct": float(np.mean([np.mean(tl.labels == syn.background_id(c)) for tl in tls]) * 100),
        "duration_ratio_median": float(np.median(ratios)),
        "videos_missing_a_step_pct": share("missing"), "videos_with_swap_pct": share("swap"),
        "videos_with_repeat_pct": share("repeat"), "videos_out_of_order_pct": float(out_of_order),
        "feature_dim": c.feature_dim, "standardized": cfg.data.standardize,
        **feature_structure(cfg),
    }


def main() -> int:
    stats = {name: preset_stats(name) for name in PRESETS}
    cols = ["activities", "classes", "videos", "frames (mean, min-max)", "background %", "duration max/min",
            "missing a step %", "swap %", "repeat %", "out of order %", "probe %", "k-means MoF %"]
    print("| preset | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for name, s in stats.items():
        ks = s["classes_per_activity"]
        row = [s["activities"], f"{min(ks)}-{max(ks)}" if min(ks) != max(ks) else ks[0], s["videos"],
               f"{s['frames_mean']:.0f} ({s['frames_min']}-{s['frames_max']})", f"{s['background_share_pct']:.0f}",
               f"{s['duration_ratio_median']:.1f}", f"{s['videos_missing_a_step_pct']:.0f}",
               f"{s['videos_with_swap_pct']:.0f}", f"{s['videos_with_repeat_pct']:.0f}",
               f"{s['videos_out_of_order_pct']:.0f}", f"{s['linear_probe_acc']:.0f}", f"{s['kmeans_mof']:.0f}"]
        print(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    out = ROOT / "benchmarks" / "results" / "study_synthetic_presets.json"
    out.write_text(json.dumps({"command": "benchmarks/study_synthetic_presets.py", "presets": stats}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
