"""Input validation shared by the metric modules: every bad input becomes a ValueError naming the argument."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def as_label_array(x: object, name: str) -> np.ndarray:
    """One video's frame labels as a 1-D integer array; ``name`` is used in the error message."""
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of frame labels, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if (
            np.issubdtype(arr.dtype, np.floating)
            and np.all(np.isfinite(arr))
            and np.all(arr == np.round(arr))
        ):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"{name}: expected integer labels, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def as_embedding_array(x: object, name: str) -> np.ndarray:
    """One video's embeddings as a finite 2-D float array ``(T, D)``."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (T, D) of frame embeddings, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: a video with 0 frames")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: embeddings contain NaN or inf")
    return arr


def label_list(xs: Sequence[object], name: str) -> list[np.ndarray]:
    """A list of per-video label arrays; rejects an empty list."""
    if isinstance(xs, np.ndarray) and xs.ndim == 1 and xs.dtype != object:
        raise ValueError(
            f"{name}: expected a list of per-video label arrays, got one 1-D array (wrap it in a list)"
        )
    out = [as_label_array(x, f"{name}[{i}]") for i, x in enumerate(xs)]
    if not out:
        raise ValueError(f"{name}: empty list of videos")
    return out


def embedding_list(xs: Sequence[object], name: str) -> list[np.ndarray]:
    """A list of per-video ``(T_i, D)`` embedding arrays with one common ``D``."""
    if isinstance(xs, np.ndarray) and xs.ndim == 2:
        raise ValueError(
            f"{name}: expected a list of per-video (T_i, D) arrays, got one 2-D array (wrap it in a list)"
        )
    out = [as_embedding_array(x, f"{name}[{i}]") for i, x in enumerate(xs)]
    if not out:
        raise ValueError(f"{name}: empty list of videos")
    dims = {e.shape[1] for e in out}
    if len(dims) != 1:
        raise ValueError(f"{name}: videos have different embedding sizes {sorted(dims)}")
    return out


def check_same_lengths(a: Sequence[np.ndarray], b: Sequence[np.ndarray], name_a: str, name_b: str) -> None:
    """Same number of videos and, video by video, the same number of frames."""
    if len(a) != len(b):
        raise ValueError(f"{name_a} has {len(a)} videos but {name_b} has {len(b)}")
    for i, (x, y) in enumerate(zip(a, b)):
        if len(x) != len(y):
            raise ValueError(f"video {i}: {name_a}[{i}] has {len(x)} frames but {name_b}[{i}] has {len(y)}")


def as_class_set(x: int | Sequence[int] | None, name: str) -> np.ndarray:
    """``None`` / one label / several labels as a 1-D int array (possibly empty)."""
    if x is None:
        return np.zeros(0, dtype=np.int64)
    arr = np.atleast_1d(np.asarray(x))
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name}: expected None, an int label or a list of int labels, got {x!r}")
    return arr.astype(np.int64)
