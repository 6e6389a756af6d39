"""Procedure-learning key-step metrics: the EgoProceL protocol used by OPEL / RGWOT / REALIGN.

Protocol (``docs/evaluation.md#procedure-learning-realign``; Sid2697 EgoProceL ``evaluate/metrics.py:
compute_align_MoF_UoI``, default ``per_keystep=False``), per video:

1. One-hot ``Z_pred`` (T, M) over the M clusters and ``Z_gt`` (T, C) over the C = n_keystep + 1 classes,
   class 0 = background. Both use the full class / cluster ranges, also columns absent from the video.
2. Hungarian on ``1 - Z_gtᵀ Z_pred / T`` (``linear_sum_assignment``, minimise). The background class takes
   part in the matching.
3. Over the matched columns: recall (the papers call it MoF) = Σ intersection / Σ gt, precision =
   Σ intersection / Σ predicted, IoU = Σ intersection / Σ union.

P, R and IoU are averaged over videos and ``F1 = 2PR / (P + R)`` is computed from the averages (the exact F1
aggregation of OPEL/RGWOT/REALIGN is in no public code; this is the one the EgoProceL script implies).
A 0/0 ratio (possible only when M > C leaves matched columns empty) counts as 0, where the original gives NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans

from vasot_dist.eval._checks import as_embedding_array, check_same_lengths, label_list


def keystep_video_scores(
    pred: np.ndarray, gt: np.ndarray, n_classes: int, n_clusters: int
) -> dict[str, float]:
    """EgoProceL ``compute_align_MoF_UoI`` for one video: ``{"recall", "precision", "IoU"}`` as fractions.

    pred: (T,) cluster ids in [0, n_clusters); gt: (T,) key-step ids in [0, n_classes), 0 = background.
    """
    t = len(gt)
    z_pred = np.eye(n_clusters)[pred]
    z_gt = np.eye(n_classes)[gt]
    rows, cols = linear_sum_assignment(1.0 - z_gt.T @ z_pred / t)
    zp, zg = z_pred[:, cols], z_gt[:, rows]
    inter = float(np.sum(zp * zg))
    union = float(np.sum(np.clip(zp + zg, 0, 1)))
    n_pred, n_gt = float(zp.sum()), float(zg.sum())
    return {
        "recall": inter / n_gt if n_gt else 0.0,
        "precision": inter / n_pred if n_pred else 0.0,
        "IoU": inter / union if union else 0.0,
    }


def keystep_metrics(
    preds: Sequence[np.ndarray],
    gts: Sequence[np.ndarray],
    n_classes: int | None = None,
    n_clusters: int | None = None,
) -> dict[str, float]:
    """Key-step localisation metrics over videos, in percent.

    preds: list of (T_i,) cluster ids (e.g. :func:`cluster_keysteps`); gts: list of (T_i,) key-step ids with
    0 = background. n_classes: C = #key steps + 1 (default: max gt label + 1); n_clusters: M (default: max
    predicted id + 1). Returns ``{"MoF" (= recall), "precision", "IoU", "F1"}`` with P, R, IoU averaged over
    videos and F1 = 2PR/(P+R) from those averages.
    """
    preds_l = label_list(preds, "preds")
    gts_l = label_list(gts, "gts")
    check_same_lengths(preds_l, gts_l, "preds", "gts")
    if any(len(g) == 0 for g in gts_l):
        raise ValueError("gts: a video with 0 frames")
    if n_classes is None:
        n_classes = int(max(g.max() for g in gts_l)) + 1
    if n_clusters is None:
        n_clusters = int(max(p.max() for p in preds_l)) + 1
    for i, (p, g) in enumerate(zip(preds_l, gts_l)):
        if g.min() < 0 or g.max() >= n_classes:
            raise ValueError(
                f"gts[{i}]: labels must lie in [0, n_classes={n_classes}), got [{g.min()}, {g.max()}]"
            )
        if p.min() < 0 or p.max() >= n_clusters:
            raise ValueError(
                f"preds[{i}]: ids must lie in [0, n_clusters={n_clusters}), got [{p.min()}, {p.max()}]"
            )
    scores = [keystep_video_scores(p, g, n_classes, n_clusters) for p, g in zip(preds_l, gts_l)]
    recall = float(np.mean([s["recall"] for s in scores]))
    precision = float(np.mean([s["precision"] for s in scores]))
    iou = float(np.mean([s["IoU"] for s in scores]))
    f1 = 2.0 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"MoF": recall * 100.0, "precision": precision * 100.0, "IoU": iou * 100.0, "F1": f1 * 100.0}


def cluster_keysteps(embs: np.ndarray, k: int = 7, seed: int = 0) -> np.ndarray:
    """Per-video key-step discovery by k-means on frame embeddings (EgoProceL / OPEL evaluation setup).

    embs: (T, D) one video. Returns (T,) cluster ids in [0, k) from ``sklearn.cluster.KMeans(n_clusters=k,
    random_state=seed, n_init=10)``.
    """
    x = as_embedding_array(embs, "embs")
    if k < 1:
        raise ValueError(f"k: expected >= 1 clusters, got {k}")
    if len(x) < k:
        raise ValueError(f"embs: {len(x)} frames cannot form k={k} clusters")
    return KMeans(n_clusters=k, random_state=seed, n_init=10).fit_predict(x).astype(np.int64)
