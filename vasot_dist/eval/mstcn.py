"""Segmental Edit score and F1@IoU, the MS-TCN definitions (yabufarha/ms-tcn ``eval.py``; ``docs/evaluation.md``).

Both compare *label sequences in ground-truth label space*: for unsupervised segmentation the caller first
maps clusters to classes (Hungarian, :mod:`vasot_dist.eval.hungarian`).

- Segments are the runs of equal labels; runs whose label is a background class are dropped.
  Segments here are half-open ``[start, end)`` runs. MS-TCN's ``get_labels_start_end_time`` ends the *last*
  segment of a video at ``T - 1`` instead of ``T`` (one frame short); we use the exact runs, which can change
  an IoU by at most one frame of the last segment of each video.
- Edit = ``(1 - Levenshtein(P, Y) / max(|P|, |Y|)) * 100`` on the segment label sequences, averaged over
  videos. Two empty sequences (everything background) score 100.
- F1@τ: each predicted segment takes the same-label ground-truth segment of highest IoU; a true positive
  when that IoU >= τ and the ground-truth segment is not hit yet, otherwise a false positive; unhit
  ground-truth segments are false negatives. TP/FP/FN are summed over videos, then
  ``P = TP/(TP+FP)``, ``R = TP/(TP+FN)``, ``F1 = 2PR/(P+R)`` (0 when undefined), in percent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vasot_dist.eval._checks import as_class_set, as_label_array


def label_runs(
    labels: np.ndarray, bg_class: int | Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of equal labels.

    labels: (T,) ints. Returns ``(run_labels (S,), starts (S,), ends (S,))`` with half-open runs
    ``[starts[s], ends[s])``; runs labelled with a ``bg_class`` value are left out.
    """
    labels = as_label_array(labels, "labels")
    if labels.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [len(labels)]))
    run_labels = labels[starts]
    keep = ~np.isin(run_labels, as_class_set(bg_class, "bg_class"))
    return run_labels[keep], starts[keep], ends[keep]


def levenshtein(a: Sequence[int], b: Sequence[int]) -> int:
    """Edit distance (insert / delete / substitute, unit costs) between two label sequences."""
    a, b = list(a), list(b)
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def edit_score(pred: np.ndarray, gt: np.ndarray, bg_class: int | Sequence[int] | None = None) -> float:
    """MS-TCN segmental edit score of one video, in percent. pred, gt: (T,) labels in the same label space."""
    p, _, _ = label_runs(pred, bg_class)
    y, _, _ = label_runs(gt, bg_class)
    longest = max(len(p), len(y))
    if longest == 0:
        return 100.0
    return (1.0 - levenshtein(p.tolist(), y.tolist()) / longest) * 100.0


def f1_overlap_counts(
    pred: np.ndarray, gt: np.ndarray, overlap: float, bg_class: int | Sequence[int] | None = None
) -> tuple[int, int, int]:
    """MS-TCN ``f_score`` of one video: ``(tp, fp, fn)`` at IoU threshold ``overlap`` (a fraction, e.g. 0.5)."""
    if not 0.0 < overlap <= 1.0:
        raise ValueError(f"overlap: expected an IoU threshold in (0, 1], got {overlap}")
    p_lab, p_start, p_end = label_runs(pred, bg_class)
    y_lab, y_start, y_end = label_runs(gt, bg_class)
    hits = np.zeros(len(y_lab), dtype=bool)
    tp = fp = 0
    for j in range(len(p_lab)):
        if len(y_lab) == 0:
            fp += 1
            continue
        inter = np.minimum(p_end[j], y_end) - np.maximum(p_start[j], y_start)
        union = np.maximum(p_end[j], y_end) - np.minimum(p_start[j], y_start)
        iou = np.clip(inter, 0, None) / union * (y_lab == p_lab[j])
        best = int(np.argmax(iou))
        if iou[best] >= overlap and not hits[best]:
            tp += 1
            hits[best] = True
        else:
            fp += 1
    fn = int(len(y_lab) - hits.sum())
    return tp, fp, fn


def f1_from_counts(tp: int, fp: int, fn: int) -> float:
    """F1 in percent from summed counts; 0 where precision + recall is 0 or undefined (MS-TCN nan_to_num)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    if precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall) * 100.0
