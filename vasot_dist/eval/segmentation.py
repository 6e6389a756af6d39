"""Unsupervised action-segmentation metrics: the ASOT/VASOT/CLOT protocol plus MS-TCN's Edit and F1@k.

Protocol (``docs/evaluation.md``; ASOT / VASOT ``src/metrics.py``, blob 750081e in both repositories):

- ``exclude_cls`` drops every frame whose *ground-truth* label is excluded, before anything else
  (YouTube Instructions: ``-1``, background).
- Hungarian matching of predicted clusters to ground-truth classes (:mod:`vasot_dist.eval.hungarian`):
  ``mode="full"`` matches once on all videos concatenated (per activity: call once per activity) and reuses
  the mapping for every metric; ``mode="per_video"`` matches each video on its own and averages the metrics
  over videos *unweighted* (the authors' Lightning mean at test batch size 1).
- MoF = Σ_matched |pred = p ∧ gt = g| / #frames.
- mIoU = Σ_matched IoU(p, g) / #unique ground-truth labels (unmatched classes add 0).
- F1 as ASOT codes it (:func:`sampled_f1`).
- Edit and F1@{10, 25, 50}: MS-TCN definitions (:mod:`vasot_dist.eval.mstcn`) on the Hungarian-relabelled
  predictions, per video; ``bg_class`` segments are left out; TP/FP/FN summed over videos, Edit averaged.

All values are returned in percent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vasot_dist.eval._checks import as_class_set, as_label_array, check_same_lengths, label_list
from vasot_dist.eval.hungarian import hungarian_mapping, relabel
from vasot_dist.eval.mstcn import edit_score, f1_from_counts, f1_overlap_counts

F1_OVERLAPS = (0.10, 0.25, 0.50)


def mof(pred: np.ndarray, gt: np.ndarray, mapping: dict[int, int]) -> float:
    """Mean over frames of the matched prediction being right, as a fraction. pred, gt: (T,), T > 0."""
    pred, gt = _pair(pred, gt)
    correct = sum(int(np.sum((pred == p) & (gt == g))) for p, g in mapping.items())
    return correct / len(gt)


def miou(pred: np.ndarray, gt: np.ndarray, mapping: dict[int, int]) -> float:
    """Σ over matched pairs of IoU(p, g), divided by the number of unique ground-truth labels (fraction)."""
    pred, gt = _pair(pred, gt)
    total = 0.0
    for p, g in mapping.items():
        inter = np.sum((pred == p) & (gt == g))
        union = np.sum((pred == p) | (gt == g))
        total += inter / union if union else 0.0
    return total / len(np.unique(gt))


def sampled_f1(
    pred: np.ndarray,
    gt: np.ndarray,
    mapping: dict[int, int],
    n_videos: int,
    rng: np.random.Generator,
    n_samples: int = 15,
    n_repeats: int = 50,
    eps: float = 1e-8,
) -> tuple[float, float, float]:
    """ASOT's segment F1 (``eval_f1``, "Kukleva-style"), returned as fractions ``(f1, precision, recall)``.

    pred, gt: (T,) one video, or all videos concatenated ("full" mode, where a ground-truth segment can span
    two videos when their labels agree, exactly as in the authors' code).

    - Ground-truth segment bounds are ``[0, change points..., T - 1]``; segment s is ``[lo_s, up_s]`` with an
      *inclusive* upper bound, so all but the last segment also sample the first frame of the next segment.
    - Per segment, ``n_samples`` (15) frame indices are drawn uniformly from ``[lo, up]`` inclusive; the
      segment is a true positive when more than half of them carry the predicted label matched to the
      segment's ground-truth label (never when that label is unmatched).
    - Repeated ``n_repeats`` (50) times. ``precision = TP / (n_videos · n_actions · n_repeats)`` with
      n_actions = #unique ground-truth labels (it assumes every video shows each action once, so it can
      exceed 1 for videos that repeat actions); ``recall = TP / (#segments · n_repeats + eps)``;
      ``f1 = 2PR / (P + R + eps)``.

    Deviation: the authors draw with the unseeded, deprecated ``np.random.random_integers``; here the draws
    come from ``rng`` (``np.random.default_rng(seed)``, ``integers(lo, up, endpoint=True)``) so a result is
    reproducible. The distribution of the draws is the same.
    """
    pred, gt = _pair(pred, gt)
    if n_videos < 1:
        raise ValueError(f"n_videos: expected >= 1, got {n_videos}")
    gt_to_pred = {g: p for p, g in mapping.items()}
    change = np.flatnonzero(gt[1:] != gt[:-1]) + 1
    bounds = np.concatenate(([0], change, [len(gt) - 1]))
    los, ups = bounds[:-1], bounds[1:]
    n_segments = len(los)
    tp = 0
    for _ in range(n_repeats):
        for lo, up in zip(los, ups):
            target = gt_to_pred.get(int(gt[lo]))
            if target is None:
                continue  # this ground-truth class was never matched: no true positive possible
            idx = rng.integers(lo, up, size=n_samples, endpoint=True)
            if np.sum(pred[idx] == target) / n_samples > 0.5:
                tp += 1
    n_actions = len(np.unique(gt))
    precision = tp / (n_videos * n_actions * n_repeats)
    recall = tp / (n_segments * n_repeats + eps)
    f1 = 2.0 * precision * recall / (precision + recall + eps)
    return f1, precision, recall


def segmentation_metrics(
    preds: Sequence[np.ndarray],
    gts: Sequence[np.ndarray],
    mode: str = "full",
    exclude_cls: int | Sequence[int] | None = None,
    bg_class: int | Sequence[int] | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """All segmentation metrics of one activity (or one dataset), in percent.

    preds: list of (T_i,) predicted cluster ids; gts: list of (T_i,) ground-truth class ids.
    mode: ``"full"`` (one Hungarian matching over all videos concatenated) or ``"per_video"``.
    exclude_cls: ground-truth label(s) whose frames are removed first (YTI: -1).
    bg_class: ground-truth label(s) treated as background by Edit and F1@k only (MS-TCN).
    seed: seeds the sampled F1.

    Returns ``{"MoF", "F1", "F1_precision", "F1_recall", "mIoU", "Edit", "F1@10", "F1@25", "F1@50"}``.
    In per-video mode a video left with no frames after exclusion is skipped.
    """
    if mode not in ("full", "per_video"):
        raise ValueError(f"mode: expected 'full' or 'per_video', got {mode!r}")
    preds_l = label_list(preds, "preds")
    gts_l = label_list(gts, "gts")
    check_same_lengths(preds_l, gts_l, "preds", "gts")
    excl = as_class_set(exclude_cls, "exclude_cls")
    bg = as_class_set(bg_class, "bg_class")
    kept = [(p[~np.isin(g, excl)], g[~np.isin(g, excl)]) for p, g in zip(preds_l, gts_l)]
    kept = [(p, g) for p, g in kept if len(g)]
    if not kept:
        raise ValueError("gts: no frames left after removing exclude_cls")
    rng = np.random.default_rng(seed)
    n_videos = len(preds_l)

    if mode == "full":
        cat_p = np.concatenate([p for p, _ in kept])
        cat_g = np.concatenate([g for _, g in kept])
        mapping = hungarian_mapping(cat_p, cat_g)
        f1, prec, rec = sampled_f1(cat_p, cat_g, mapping, n_videos, rng)
        out = {
            "MoF": mof(cat_p, cat_g, mapping),
            "F1": f1,
            "F1_precision": prec,
            "F1_recall": rec,
            "mIoU": miou(cat_p, cat_g, mapping),
        }
        mappings = [mapping] * len(kept)
    else:
        mappings = [hungarian_mapping(p, g) for p, g in kept]
        rows = []
        for (p, g), m in zip(kept, mappings):
            f1, prec, rec = sampled_f1(p, g, m, 1, rng)
            rows.append((mof(p, g, m), f1, prec, rec, miou(p, g, m)))
        means = np.mean(np.asarray(rows, dtype=np.float64), axis=0)
        out = dict(zip(("MoF", "F1", "F1_precision", "F1_recall", "mIoU"), means.tolist()))

    out = {k: float(v) * 100.0 for k, v in out.items()}
    out.update(_segmental_scores(kept, mappings, bg))
    return out


def _segmental_scores(
    kept: list[tuple[np.ndarray, np.ndarray]], mappings: list[dict[int, int]], bg: np.ndarray
) -> dict[str, float]:
    """Edit (mean over videos) and F1@k (counts summed over videos) on Hungarian-relabelled predictions."""
    all_gt = np.concatenate([g for _, g in kept] + [bg])
    fresh = int(all_gt.max()) + 1  # labels for unmatched clusters: agree with no class, not background
    edits = []
    counts = np.zeros((len(F1_OVERLAPS), 3), dtype=np.int64)
    for (p, g), m in zip(kept, mappings):
        mapped = relabel(p, m, fresh)
        edits.append(edit_score(mapped, g, bg))
        for i, ov in enumerate(F1_OVERLAPS):
            counts[i] += f1_overlap_counts(mapped, g, ov, bg)
    out = {"Edit": float(np.mean(edits))}
    for ov, (tp, fp, fn) in zip(F1_OVERLAPS, counts):
        out[f"F1@{round(ov * 100)}"] = f1_from_counts(int(tp), int(fp), int(fn))
    return out


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = as_label_array(pred, "pred")
    gt = as_label_array(gt, "gt")
    if len(pred) != len(gt):
        raise ValueError(f"pred has {len(pred)} frames but gt has {len(gt)}")
    if len(gt) == 0:
        raise ValueError("gt: no frames")
    return pred, gt
