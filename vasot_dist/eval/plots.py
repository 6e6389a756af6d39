"""Report figures: each function takes arrays and a path, writes one PNG and returns the path.

Uses matplotlib's object API with the Agg canvas directly (no pyplot, no global backend switch), so it is
safe in headless workers and does not leak figures.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from vasot_dist.eval._checks import as_label_array, check_same_lengths, label_list
from vasot_dist.eval.hungarian import hungarian_mapping, relabel

_BACKGROUND_GREY = (0.82, 0.82, 0.82, 1.0)


def _save(fig: Figure, path: str | os.PathLike[str]) -> str:
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=100)
    return path


def _palette() -> list[tuple[float, float, float, float]]:
    """60 distinct colours: tab10 first (strong, easy to tell apart), then the light tab20 shades, tab20b/c."""
    cmaps = matplotlib.colormaps
    colours = [cmaps["tab10"](i) for i in range(10)]
    colours += [cmaps["tab20"](i) for i in range(1, 20, 2)]
    colours += [cmaps["tab20b"](i) for i in range(20)] + [cmaps["tab20c"](i) for i in range(20)]
    return [tuple(c) for c in colours]


def label_colours(labels: np.ndarray) -> dict[int, tuple[float, float, float, float]]:
    """Fixed colour per label value: negative labels (excluded / background) grey, others by rank of value."""
    palette = _palette()
    out: dict[int, tuple[float, float, float, float]] = {}
    positives = [int(v) for v in np.unique(labels) if v >= 0]
    for rank, v in enumerate(positives):
        out[v] = palette[rank % len(palette)]
    for v in np.unique(labels):
        if v < 0:
            out[int(v)] = _BACKGROUND_GREY
    return out


def plot_transport_plan(
    plan: np.ndarray,
    path: str | os.PathLike[str],
    title: str = "transport plan",
    gt_match: np.ndarray | None = None,
    axes: tuple[str, str] = ("frames of x", "frames of y"),
) -> str:
    """Heat map of a transport plan / soft alignment.

    plan: (N, M); ``axes``: what its rows and columns are (frames of two videos, or a video's frames and the
    actions' prototypes). gt_match: optional (N,) ground-truth column per row (-1 = none), drawn as white dots.
    Ticks are integers (row and column indices), also for a 2-frame clip.
    """
    return _save(transport_plan_figure(plan, title, gt_match, axes), path)


def transport_plan_figure(
    plan: np.ndarray,
    title: str = "transport plan",
    gt_match: np.ndarray | None = None,
    axes: tuple[str, str] = ("frames of x", "frames of y"),
) -> Figure:
    """The figure of :func:`plot_transport_plan`, unsaved."""
    plan = np.asarray(plan, dtype=np.float64)
    if plan.ndim != 2 or plan.size == 0:
        raise ValueError(f"plan: expected a non-empty 2-D (N, M) array, got shape {plan.shape}")
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(plan, aspect="auto", interpolation="nearest", cmap="viridis")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if gt_match is not None:
        gm = as_label_array(gt_match, "gt_match")
        if len(gm) != plan.shape[0]:
            raise ValueError(f"gt_match has {len(gm)} entries but plan has {plan.shape[0]} rows")
        rows = np.flatnonzero(gm >= 0)
        ax.plot(gm[rows], rows, "o", ms=2.5, color="white", label="ground truth")
        ax.legend(loc="lower right", fontsize=7)
    ax.set_xlabel(axes[1])
    ax.set_ylabel(axes[0])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    fig.tight_layout()
    return fig


def label_names_of(label_map: Mapping[str, int]) -> dict[int, str]:
    """``{id: name}`` from a dataset's label map ``{name: id}``; names sharing an id are joined with ``/``."""
    out: dict[int, list[str]] = {}
    for name, i in label_map.items():
        out.setdefault(int(i), []).append(str(name))
    return {i: "/".join(names) for i, names in out.items()}


def _label_text(v: int, label_names: Mapping[int, str] | None, first_unmatched: int | None) -> str:
    if first_unmatched is not None and v >= first_unmatched:
        return f"unmatched cluster {v - first_unmatched + 1}"
    if label_names is None:
        return str(v)
    return label_names.get(v, "ignored" if v < 0 else str(v))


def plot_segmentation_bars(
    pred_list: Sequence[np.ndarray],
    gt_list: Sequence[np.ndarray],
    path: str | os.PathLike[str],
    names: Sequence[str] | None = None,
    match_clusters: bool = False,
    label_names: Mapping[int, str] | None = None,
) -> str:
    """Colour bars per video: ground truth above prediction, one colour per label over the whole figure.

    pred_list, gt_list: lists of (T_i,) labels. Colours only mean something when predictions are in
    ground-truth label space: pass them mapped already (:func:`vasot_dist.eval.hungarian.relabel`), or set
    ``match_clusters=True`` to map raw cluster ids here with one Hungarian matching over the given videos
    (the "full" protocol; unmatched clusters get their own colours). Negative labels are drawn grey.
    ``label_names``: ``{id: name}`` for the legend (:func:`label_names_of`), else the ids.
    """
    return _save(segmentation_figure(pred_list, gt_list, names, match_clusters, label_names), path)


def segmentation_figure(
    pred_list: Sequence[np.ndarray],
    gt_list: Sequence[np.ndarray],
    names: Sequence[str] | None = None,
    match_clusters: bool = False,
    label_names: Mapping[int, str] | None = None,
) -> Figure:
    """The figure of :func:`plot_segmentation_bars`, unsaved."""
    preds = label_list(pred_list, "pred_list")
    gts = label_list(gt_list, "gt_list")
    check_same_lengths(preds, gts, "pred_list", "gt_list")
    first_unmatched = None
    if match_clusters:
        all_gt = np.concatenate(gts)
        mapping = hungarian_mapping(np.concatenate(preds), all_gt)
        fresh = max(int(all_gt.max()), -1) + 1
        preds = [relabel(p, mapping, fresh) for p in preds]
        first_unmatched = fresh
    if names is not None and len(names) != len(gts):
        raise ValueError(f"names has {len(names)} entries but there are {len(gts)} videos")
    colours = label_colours(np.concatenate(preds + gts))
    values = sorted(colours)
    index = {v: i for i, v in enumerate(values)}
    cmap = ListedColormap([colours[v] for v in values])
    n = len(gts)
    fig = Figure(figsize=(9, 0.9 * n + 0.9 + 0.15 * len(values) / (10 if label_names is None else 4)))
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for i, ax in enumerate(axes):
        rows = np.stack([[index[int(v)] for v in gts[i]], [index[int(v)] for v in preds[i]]])
        ax.imshow(rows, aspect="auto", interpolation="nearest", cmap=cmap, vmin=-0.5, vmax=len(values) - 0.5)
        ax.set_yticks([0, 1], ["gt", "pred"], fontsize=7)
        ax.set_xticks([])
        ax.set_title(names[i] if names is not None else f"video {i}", fontsize=8, loc="left")
    handles = [Patch(color=colours[v], label=_label_text(v, label_names, first_unmatched)) for v in values]
    ncol = min(len(values), 10 if label_names is None else 4)  # names need the width
    rows = -(-len(values) // ncol)
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, min(0.45, 0.06 * rows + 0.02), 1, 1))
    return fig


def plot_retrieval_strip(
    query_frames: np.ndarray,
    retrieved: np.ndarray,
    path: str | os.PathLike[str],
    query_label: int | None = None,
    retrieved_labels: Sequence[int] | None = None,
    label_names: Mapping[int, str] | None = None,
) -> str:
    """One query frame followed by its k retrieved nearest-neighbour frames.

    query_frames: (H, W, 3) uint8; retrieved: (k, H', W', 3) uint8. With labels given, each retrieved frame's
    title shows its label (its name from ``label_names``) in green (same phase as the query) or red.
    """
    q = np.asarray(query_frames)
    r = np.asarray(retrieved)
    if q.ndim != 3 or q.shape[-1] != 3 or q.dtype != np.uint8:
        raise ValueError(f"query_frames: expected a uint8 (H, W, 3) image, got {q.dtype} {q.shape}")
    if r.ndim != 4 or r.shape[-1] != 3 or r.dtype != np.uint8 or len(r) == 0:
        raise ValueError(
            f"retrieved: expected uint8 (k, H, W, 3) images with k >= 1, got {r.dtype} {r.shape}"
        )
    if retrieved_labels is not None and len(retrieved_labels) != len(r):
        raise ValueError(
            f"retrieved_labels has {len(retrieved_labels)} entries but retrieved has {len(r)} frames"
        )
    k = len(r)
    fig = Figure(figsize=(1.6 * (k + 1), 2.0))
    axes = fig.subplots(1, k + 1, squeeze=False)[0]
    axes[0].imshow(q)
    def text(v: int) -> str:
        return _label_text(int(v), label_names, None)

    axes[0].set_title("query" + (f"\n{text(query_label)}" if query_label is not None else ""), fontsize=8)
    for i in range(k):
        axes[i + 1].imshow(r[i])
        if retrieved_labels is not None:
            same = query_label is not None and int(retrieved_labels[i]) == int(query_label)
            axes[i + 1].set_title(
                f"#{i + 1}\n{text(retrieved_labels[i])}", fontsize=8, color="green" if same else "red"
            )
        else:
            axes[i + 1].set_title(f"#{i + 1}", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return _save(fig, path)


def plot_curves(
    metrics_rows: Sequence[Mapping[str, float]],
    keys: Sequence[str],
    path: str | os.PathLike[str],
    x_key: str = "step",
) -> str:
    """Training curves: one line per key against ``x_key`` (row index when rows lack it).

    metrics_rows: e.g. the parsed lines of a metrics.jsonl; rows missing a key (or holding a non-number) are
    skipped for that key. Keys are drawn on one shared axis each (stacked panels).
    """
    if not keys:
        raise ValueError("keys: give at least one metric name to plot")
    rows = list(metrics_rows)
    present = [k for k in keys if any(_is_number(r.get(k)) for r in rows)]
    if not present:
        raise ValueError(f"metrics_rows: none of the keys {list(keys)} appears with a numeric value")
    fig = Figure(figsize=(6.5, 2.2 * len(present)))
    axes = fig.subplots(len(present), 1, squeeze=False)[:, 0]
    for ax, key in zip(axes, present):
        xs, ys = [], []
        for i, row in enumerate(rows):
            if _is_number(row.get(key)):
                xs.append(float(row[x_key]) if _is_number(row.get(x_key)) else float(i))
                ys.append(float(row[key]))
        ax.plot(xs, ys, "-", lw=1.2, marker="." if len(xs) < 50 else None)
        ax.set_ylabel(key, fontsize=8)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel(x_key)
    fig.tight_layout()
    return _save(fig, path)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and np.isfinite(v)
