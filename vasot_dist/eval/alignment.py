"""Alignment metrics on frozen per-frame embeddings: the TCC / LAV / VAOT / VAVA protocols.

Protocols as coded by the authors (``docs/evaluation.md#alignment-tcc-lav-vaot-vava``). Inputs are lists
with one entry per video, in the order the caller wants the "first n videos" to be (sort by name first).
Alignment scores are fractions in [0, 1] (R² and τ can be negative), as the authors' code returns them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import cdist
from scipy.stats import kendalltau
from sklearn.linear_model import LinearRegression
from sklearn.neighbors import NearestNeighbors
from sklearn.svm import SVC

from vasot_dist.eval._checks import as_label_array, check_same_lengths, embedding_list, label_list

DEFAULT_FRACTIONS = (0.1, 0.5, 1.0)


def num_videos_for_fraction(fraction: float, n_videos: int) -> int:
    """``max(1, int(fraction * n_videos))``: how many of the first videos a fraction uses (TCC/LAV/VAOT)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fractions: each fraction must be in (0, 1], got {fraction}")
    return max(1, int(fraction * n_videos))


def phase_classification(
    train_embs: Sequence[np.ndarray],
    train_labels: Sequence[np.ndarray],
    test_embs: Sequence[np.ndarray],
    test_labels: Sequence[np.ndarray],
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> dict[float, float]:
    """Few-shot phase classification accuracy (TCC ``evaluation/classification.py``; LAV/VAOT
    ``evals/phase_classification.py``).

    train_embs / test_embs: lists of (T_i, D) embeddings; train_labels / test_labels: lists of (T_i,) phase ids.
    For each fraction f, an ``SVC(decision_function_shape='ovo')`` (RBF, C = 1, sklearn defaults) is fitted on
    all frames of the *first* ``n = max(1, int(f · #train videos))`` training videos (no random sampling) and
    scored as frame accuracy over all test frames. Protocol "tcc": train split to fit, test split to score;
    protocol "lav" (LAV/VAOT): pass the test videos as both train and test.
    Returns ``{f: accuracy}``. If the selected videos hold a single phase, an SVM cannot be fitted; the
    classifier then predicts that phase for every frame (the authors' code would crash).
    """
    tr_e, tr_l = _videos(train_embs, train_labels, "train_embs", "train_labels")
    te_e, te_l = _videos(test_embs, test_labels, "test_embs", "test_labels")
    _same_dim(tr_e, te_e)
    x_test = np.concatenate(te_e)
    y_test = np.concatenate(te_l)
    out: dict[float, float] = {}
    for f in fractions:
        n = num_videos_for_fraction(f, len(tr_e))
        x = np.concatenate(tr_e[:n])
        y = np.concatenate(tr_l[:n])
        if len(np.unique(y)) == 1:
            pred = np.full_like(y_test, y[0])
        else:
            pred = SVC(decision_function_shape="ovo").fit(x, y).predict(x_test)
        out[float(f)] = float(np.mean(pred == y_test))
    return out


def progression_targets(labels: np.ndarray, key_events: Sequence[int]) -> np.ndarray:
    """TCC event-completion regression targets of one video.

    labels: (L,) phase ids. For each key event e (a phase id), ``t_e`` = last frame labelled e and the target
    is ``(t - t_e) / L`` for every frame t. As in LAV/VAOT, ``t_e = -1`` when e does not occur in the video
    (TCC itself would fail). Returns (L, #key_events).
    """
    labels = as_label_array(labels, "labels")
    length = len(labels)
    t = np.arange(length, dtype=np.float64)
    cols = []
    for e in key_events:
        hits = np.flatnonzero(labels == e)
        t_e = hits[-1] if len(hits) else -1
        cols.append((t - t_e) / length)
    return np.stack(cols, axis=1)


def phase_progression(
    train_embs: Sequence[np.ndarray],
    train_labels: Sequence[np.ndarray],
    test_embs: Sequence[np.ndarray],
    test_labels: Sequence[np.ndarray],
    num_classes: int | None = None,
    key_events: Sequence[int] | None = None,
    fractions: Sequence[float] = (1.0,),
) -> dict[float, float]:
    """Phase progression R² (TCC ``evaluation/event_completion.py`` + ``task_utils.py``; LAV/VAOT
    ``evals/phase_progression.py``).

    Embeddings (T_i, D) and phase ids (T_i,) per video. Key events default to phases ``0 … C-2`` with
    ``C = num_classes`` (default: max label + 1 over train and test); pass ``key_events`` for datasets whose
    phase ids need remapping (LAV's ``IDX_TO_CLASS``). Targets: :func:`progression_targets`. One
    ``LinearRegression`` per target (TCC's ``VectorRegression``) is fitted on the first
    ``max(1, int(f · #train videos))`` videos; the score is the mean over targets of sklearn's R² on all test
    frames. The reported number is the value at fraction 1.0. Returns ``{f: mean R²}``.
    """
    tr_e, tr_l = _videos(train_embs, train_labels, "train_embs", "train_labels")
    te_e, te_l = _videos(test_embs, test_labels, "test_embs", "test_labels")
    _same_dim(tr_e, te_e)
    if key_events is None:
        if num_classes is None:
            num_classes = int(max(int(x.max()) for x in tr_l + te_l)) + 1
        if num_classes < 2:
            raise ValueError(f"num_classes: need at least 2 phases for a key event, got {num_classes}")
        key_events = list(range(num_classes - 1))
    key_events = list(key_events)
    if not key_events:
        raise ValueError("key_events: empty")
    x_test = np.concatenate(te_e)
    y_test = np.concatenate([progression_targets(lab, key_events) for lab in te_l])
    out: dict[float, float] = {}
    for f in fractions:
        n = num_videos_for_fraction(f, len(tr_e))
        x = np.concatenate(tr_e[:n])
        y = np.concatenate([progression_targets(lab, key_events) for lab in tr_l[:n]])
        # One multi-output least-squares fit = TCC's separate regressor per target (the problem separates by
        # column), and sklearn's multi-output R² is the uniform mean over targets = VectorRegression.score.
        out[float(f)] = float(LinearRegression().fit(x, y).score(x_test, y_test))
    return out


def kendalls_tau(embs: Sequence[np.ndarray], stride: int = 5) -> float:
    """Kendall's τ of nearest-neighbour alignment (TCC ``evaluation/kendalls_tau.py``, copied by LAV/VAOT).

    embs: list of (T_i, D). For every ordered pair (i, j), i != j: queries ``embs[i][::stride]``, candidates
    ``embs[j][::stride]``, squared-Euclidean ``cdist``, nearest candidate per query, then
    ``scipy.stats.kendalltau(arange, nn)`` (tau-b). NaN pairs (constant nn) are dropped, and so are pairs whose
    strided query has fewer than 2 frames (a clip shorter than ``stride`` + 1: no order to compare; scipy
    would warn and return NaN); the mean over the rest is returned (NaN when none is left). TCC/LAV use
    stride 5, VAOT 4, TCC's Pouring 2.
    """
    videos = embedding_list(embs, "embs")
    if len(videos) < 2:
        raise ValueError(f"embs: Kendall's tau needs at least 2 videos, got {len(videos)}")
    if stride < 1:
        raise ValueError(f"stride: expected >= 1, got {stride}")
    taus = []
    for i, q in enumerate(videos):
        query = q[::stride]
        for j, c in enumerate(videos):
            if i == j:
                continue
            if len(query) < 2:
                continue
            nn = np.argmin(cdist(query, c[::stride], "sqeuclidean"), axis=1)
            taus.append(kendalltau(np.arange(len(nn)), nn).statistic)
    taus_arr = np.asarray(taus, dtype=np.float64)
    taus_arr = taus_arr[~np.isnan(taus_arr)]
    return float(np.mean(taus_arr)) if taus_arr.size else float("nan")


def retrieval_ap(
    embs: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    ks: Sequence[int] = (5, 10, 15),
    within_video: bool = False,
) -> dict[int, float]:
    """Frame retrieval "AP@k" (really precision@k), per k.

    embs: list of (T_i, D); labels: list of (T_i,) phase ids. Euclidean ``sklearn.NearestNeighbors``.

    - ``within_video=False`` (VAOT ``compute_ap``, the default): every frame of video i queries the support
      set of all frames of *all other* videos; score = fraction of its k neighbours with the query's phase;
      averaged over all frames of the dataset.
    - ``within_video=True`` (LAV ``compute_ap``): neighbours are searched within the query's own video,
      the query itself included; mean per video, then mean over videos.

    The two are not comparable. Returns ``{k: value}``.
    """
    videos, labs = _videos(embs, labels, "embs", "labels")
    ks = [int(k) for k in ks]
    if any(k < 1 for k in ks):
        raise ValueError(f"ks: expected positive ints, got {ks}")
    # One neighbour search at the largest k serves every k: neighbours come back sorted by distance, so the
    # first k of them are the k nearest (sklearn's order, ties included).
    k_max = max(ks)
    if within_video:
        per_video: dict[int, list[float]] = {k: [] for k in ks}
        for i, (e, lab) in enumerate(zip(videos, labs)):
            if len(e) < k_max:
                raise ValueError(
                    f"ks: k={k_max} exceeds the {len(e)} frames of video {i} (within_video=True)"
                )
            _, idx = NearestNeighbors(n_neighbors=k_max).fit(e).kneighbors(e)
            same = lab[idx] == lab[:, None]
            for k in ks:
                per_video[k].append(float(np.mean(same[:, :k])))
        return {k: float(np.mean(per_video[k])) for k in ks}
    if len(videos) < 2:
        raise ValueError("embs: cross-video retrieval needs at least 2 videos (or within_video=True)")
    n_frames = sum(len(e) for e in videos)
    totals = dict.fromkeys(ks, 0.0)
    for i, (e, lab) in enumerate(zip(videos, labs)):
        support = np.concatenate([v for j, v in enumerate(videos) if j != i])
        support_lab = np.concatenate([v for j, v in enumerate(labs) if j != i])
        if len(support) < k_max:
            raise ValueError(f"ks: k={k_max} exceeds the {len(support)} support frames outside video {i}")
        _, idx = NearestNeighbors(n_neighbors=k_max).fit(support).kneighbors(e)
        same = support_lab[idx] == lab[:, None]
        for k in ks:
            totals[k] += float(np.sum(same[:, :k])) / k
    return {k: totals[k] / n_frames for k in ks}


def matches_from_plan(plan: np.ndarray, virtual_col: bool = False) -> np.ndarray:
    """Hard frame matches from a transport plan / soft alignment.

    plan: (N, M) (or (N, M+1) with a last virtual "unmatched" column when ``virtual_col``). Returns (N,) the
    argmax column per row; rows whose argmax is the virtual column get -1.
    """
    plan = np.asarray(plan, dtype=np.float64)
    if plan.ndim != 2 or plan.shape[1] < 1 + int(virtual_col):
        raise ValueError(f"plan: expected a 2-D (N, M) array, got shape {plan.shape}")
    match = np.argmax(plan, axis=1).astype(np.int64)
    if virtual_col:
        match[match == plan.shape[1] - 1] = -1
    return match


def gt_match_from_progress(progress_x: np.ndarray, progress_y: np.ndarray) -> np.ndarray:
    """Ground-truth correspondence of the synthetic benchmark from its per-frame canonical progress.

    progress_x: (N,), progress_y: (M,), values in [0, 1], NaN where a frame has no counterpart (background,
    redundant frames). Each frame of x with finite progress is matched to the frame of y with the closest
    finite progress (first one on ties); others get -1. Returns (N,) int64.
    """
    px = _progress(progress_x, "progress_x")
    py = _progress(progress_y, "progress_y")
    out = np.full(len(px), -1, dtype=np.int64)
    valid_y = np.flatnonzero(np.isfinite(py))
    if valid_y.size == 0:
        return out
    rows = np.flatnonzero(np.isfinite(px))
    if rows.size:
        out[rows] = valid_y[np.argmin(np.abs(px[rows, None] - py[None, valid_y]), axis=1)]
    return out


def _matches(pred_match: np.ndarray, n_x: int, x_name: str, n_y: int) -> np.ndarray:
    """``pred_match`` as ints, one per frame of x (``x_name`` has ``n_x``), each -1 or a frame of y (``n_y``)."""
    pred_match = as_label_array(pred_match, "pred_match")
    if len(pred_match) != n_x:
        raise ValueError(f"pred_match has {len(pred_match)} frames but {x_name} has {n_x}")
    _check_index(pred_match, n_y, "pred_match")
    return pred_match


def alignment_accuracy(pred_match: np.ndarray, gt_match: np.ndarray, labels_y: np.ndarray) -> float:
    """Frame alignment accuracy where ground-truth correspondence is known (synthetic benchmark; our metric).

    pred_match: (N,) predicted frame of y for each frame of x, -1 = unmatched (virtual frame).
    gt_match: (N,) ground-truth counterpart in y, -1 = x frame has no counterpart.
    labels_y: (M,) step labels of y.
    Scored frames: those of x with a ground-truth counterpart (``gt_match >= 0``). A scored frame is correct
    when its predicted match lies in the same step as its ground-truth counterpart,
    ``labels_y[pred_match] == labels_y[gt_match]``; a -1 prediction is wrong. Frames without a counterpart
    are not scored. Returns the fraction correct (NaN when no frame is scored).
    """
    gt_match = as_label_array(gt_match, "gt_match")
    labels_y = as_label_array(labels_y, "labels_y")
    pred_match = _matches(pred_match, len(gt_match), "gt_match", len(labels_y))
    _check_index(gt_match, len(labels_y), "gt_match")
    scored = gt_match >= 0
    if not np.any(scored):
        return float("nan")
    pm, gm = pred_match[scored], gt_match[scored]
    correct = (pm >= 0) & (labels_y[np.maximum(pm, 0)] == labels_y[gm])
    return float(np.mean(correct))


def alignment_progress_error(pred_match: np.ndarray, progress_x: np.ndarray, progress_y: np.ndarray) -> float:
    """Mean absolute progress error of predicted matches (synthetic benchmark; our metric).

    pred_match: (N,) predicted frame of y per frame of x, -1 = unmatched; progress_x: (N,), progress_y: (M,)
    canonical progress in [0, 1], NaN where a frame has no counterpart. Scored frames: finite progress_x.
    Error = ``|progress_x[i] - progress_y[pred_match[i]]|``; a frame matched to -1 or to a y frame without
    progress gets the maximal error 1. Lower is better; NaN when no frame is scored.
    """
    px = _progress(progress_x, "progress_x")
    py = _progress(progress_y, "progress_y")
    pred_match = _matches(pred_match, len(px), "progress_x", len(py))
    scored = np.isfinite(px)
    if not np.any(scored):
        return float("nan")
    pm = pred_match[scored]
    matched_p = np.where(pm >= 0, py[np.maximum(pm, 0)], np.nan)
    err = np.abs(px[scored] - matched_p)
    err[~np.isfinite(err)] = 1.0
    return float(np.mean(err))


def _videos(
    embs: Sequence[np.ndarray], labels: Sequence[np.ndarray], name_e: str, name_l: str
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    e = embedding_list(embs, name_e)
    lab = label_list(labels, name_l)
    check_same_lengths(e, lab, name_e, name_l)
    return e, lab


def _same_dim(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    if a[0].shape[1] != b[0].shape[1]:
        raise ValueError(f"train_embs have D={a[0].shape[1]} but test_embs have D={b[0].shape[1]}")


def _progress(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    finite = arr[np.isfinite(arr)]
    if np.any((finite < 0) | (finite > 1)):
        raise ValueError(f"{name}: progress values must lie in [0, 1] (NaN = no counterpart)")
    return arr


def _check_index(idx: np.ndarray, size: int, name: str) -> None:
    if np.any(idx < -1) or np.any(idx >= size):
        raise ValueError(
            f"{name}: frame indices must be -1 or in [0, {size}), got range [{idx.min()}, {idx.max()}]"
        )
