"""Hungarian matching of predicted clusters to ground-truth classes (ASOT/VASOT/CLOT ``src/metrics.py``).

Protocol (ASOT ``src/metrics.py`` ``pred_to_gt_match``; ``docs/evaluation.md``): build the count matrix ``C[p, g] = #frames with
pred == p and gt == g`` over the *sorted unique* predicted labels × sorted unique ground-truth labels, and
solve ``scipy.optimize.linear_sum_assignment(C, maximize=True)``. The matrix may be rectangular; clusters
(or classes) left without a partner count as wrong. Building the matrix over the same sorted label order as
the authors makes scipy break ties the same way.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from vasot_dist.eval._checks import as_label_array


def count_matrix(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Contingency table of two label sequences.

    pred, gt: (T,) integer labels.
    Returns ``(counts (P, G), pred_uniq (P,), gt_uniq (G,))`` with ``counts[i, j] = #{t: pred[t] ==
    pred_uniq[i] and gt[t] == gt_uniq[j]}``.
    """
    pred = as_label_array(pred, "pred")
    gt = as_label_array(gt, "gt")
    if len(pred) != len(gt):
        raise ValueError(f"pred has {len(pred)} frames but gt has {len(gt)}")
    pred_uniq, pred_idx = np.unique(pred, return_inverse=True)
    gt_uniq, gt_idx = np.unique(gt, return_inverse=True)
    counts = np.zeros((len(pred_uniq), len(gt_uniq)), dtype=np.int64)
    np.add.at(counts, (pred_idx, gt_idx), 1)
    return counts, pred_uniq, gt_uniq


def hungarian_mapping(pred: np.ndarray, gt: np.ndarray) -> dict[int, int]:
    """One-to-one map predicted label -> ground-truth label maximising the matched frame count.

    pred, gt: (T,) integer labels of the frames to be matched (one video, or all videos concatenated for the
    "full" protocol). Unmatched predicted labels are absent from the returned dict.
    """
    counts, pred_uniq, gt_uniq = count_matrix(pred, gt)
    if counts.size == 0:
        return {}
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return {int(pred_uniq[r]): int(gt_uniq[c]) for r, c in zip(rows, cols)}


def relabel(pred: np.ndarray, mapping: dict[int, int], unmatched_start: int) -> np.ndarray:
    """Predicted labels translated into ground-truth label space.

    pred: (T,) predicted cluster ids; mapping: from :func:`hungarian_mapping`. Each unmatched cluster gets its
    own fresh label ``unmatched_start + rank`` (rank among the unmatched ids, sorted), so it never agrees with
    any ground-truth label and two unmatched clusters stay distinct segments. Returns (T,) int64.
    """
    pred = as_label_array(pred, "pred")
    out = np.empty_like(pred)
    unmatched = np.setdiff1d(np.unique(pred), np.fromiter(mapping.keys(), dtype=np.int64, count=len(mapping)))
    fresh = {int(u): unmatched_start + i for i, u in enumerate(unmatched)}
    lut = {**fresh, **mapping}
    for p in np.unique(pred):
        out[pred == p] = lut[int(p)]
    return out
