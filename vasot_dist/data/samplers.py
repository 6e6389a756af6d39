"""Which frames of a video to use: training samplers, whole-video evaluation, context frames.

Every sampler maps ``(num_frames, rng) -> (indices (T,) int64 sorted, valid (T,) bool)`` and draws
only from the ``numpy.random.Generator`` it is given, so a sample stream is reproducible from its seed.

When a video has fewer frames than requested, the training samplers return each frame once, padded
to T with the last frame and ``valid=False`` on the padding (ASOT pads and masks; LAV's
``segment_uniform`` wraps around instead, which feeds repeated frames to the loss unmasked — we mask).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class FrameSampler(Protocol):
    def __call__(self, num_frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """indices: (T,) int64 sorted in [0, num_frames); valid: (T,) bool (False on padding)."""
        ...


def _check_count(num_frames: int) -> int:
    n = int(num_frames)
    if n < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    return n


def _pad_short(num_frames: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """All ``num_frames`` frames, then the last one repeated up to ``n`` with valid=False."""
    idx = np.full(n, num_frames - 1, dtype=np.int64)
    idx[:num_frames] = np.arange(num_frames)
    valid = np.zeros(n, dtype=bool)
    valid[:num_frames] = True
    return idx, valid


class BinSampler:
    """ASOT / VAOT training sampler: split ``[0, N)`` into ``n`` equal bins, one uniform index per bin.

    Bin ``i`` is ``[floor(i N / n), floor((i + 1) N / n))`` (the integer form of ``np.linspace(0, N,
    n + 1)``, ASOT's ``_partition_and_sample``); with ``N >= n`` every bin is non-empty, so the result
    is strictly increasing and covers each bin exactly once.
    """

    def __init__(self, n: int):
        if int(n) < 1:
            raise ValueError(f"BinSampler needs n >= 1 frames, got {n}")
        self.n = int(n)

    def bins(self, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """(starts (n,), ends (n,)) of the bins, ``ends`` exclusive; requires ``num_frames >= n``."""
        i = np.arange(self.n + 1, dtype=np.int64)
        edges = (i * int(num_frames)) // self.n
        return edges[:-1], edges[1:]

    def __call__(self, num_frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        n_frames = _check_count(num_frames)
        if n_frames < self.n:
            return _pad_short(n_frames, self.n)
        lo, hi = self.bins(n_frames)
        return rng.integers(lo, hi).astype(np.int64), np.ones(self.n, dtype=bool)

    def __repr__(self) -> str:
        return f"BinSampler({self.n})"


class RandomSampler:
    """TCC-style sampler: ``n`` distinct frames drawn uniformly without replacement, sorted."""

    def __init__(self, n: int):
        if int(n) < 1:
            raise ValueError(f"RandomSampler needs n >= 1 frames, got {n}")
        self.n = int(n)

    def __call__(self, num_frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        n_frames = _check_count(num_frames)
        if n_frames < self.n:
            return _pad_short(n_frames, self.n)
        idx = np.sort(rng.choice(n_frames, size=self.n, replace=False)).astype(np.int64)
        return idx, np.ones(self.n, dtype=bool)

    def __repr__(self) -> str:
        return f"RandomSampler({self.n})"


class AllFramesSampler:
    """Evaluation: every ``stride``-th frame (TCC ``SAMPLE_ALL_STRIDE``); deterministic, ignores ``rng``.

    With ``max_frames``, a longer video is thinned to ``max_frames`` evenly spaced frames
    (``round(linspace(0, N - 1, max_frames))``) so memory stays bounded.
    """

    def __init__(self, stride: int = 1, max_frames: int | None = None):
        if int(stride) < 1:
            raise ValueError(f"AllFramesSampler stride must be >= 1, got {stride}")
        if max_frames is not None and int(max_frames) < 1:
            raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
        self.stride = int(stride)
        self.max_frames = None if max_frames is None else int(max_frames)

    def __call__(self, num_frames: int, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        n_frames = _check_count(num_frames)
        idx = np.arange(0, n_frames, self.stride, dtype=np.int64)
        if self.max_frames is not None and idx.size > self.max_frames:
            idx = np.unique(np.round(np.linspace(0, n_frames - 1, self.max_frames)).astype(np.int64))
        return idx, np.ones(idx.size, dtype=bool)

    def __repr__(self) -> str:
        return f"AllFramesSampler(stride={self.stride}, max_frames={self.max_frames})"


def make_sampler(name: str, n: int) -> FrameSampler:
    """``data.sampler``: ``bins`` -> :class:`BinSampler`, ``tcc`` -> :class:`RandomSampler`."""
    if name == "bins":
        return BinSampler(n)
    if name == "tcc":
        return RandomSampler(n)
    raise ValueError(f"data.sampler must be 'bins' or 'tcc', got {name!r}")


def context_indices(indices: np.ndarray, num_context: int, stride: int) -> np.ndarray:
    """Context frames of each sampled frame (TCC/LAV/VAOT ``NUM_CONTEXT`` at ``CONTEXT_STRIDE``).

    Args:
        indices: (T,) sampled frame indices.
        num_context: S >= 1 frames per sampled frame.
        stride: gap between context frames.

    Returns:
        (T, S) int64 with ``out[t, s] = max(0, indices[t] - stride * (S - 1 - s))``: the last column is
        the sampled frame itself, earlier columns look back in time.
    """
    idx = np.asarray(indices, dtype=np.int64)
    if idx.ndim != 1:
        raise ValueError(f"indices must be 1-D (T,), got shape {idx.shape}")
    if int(num_context) < 1:
        raise ValueError(f"num_context must be >= 1, got {num_context}")
    if int(stride) < 0:
        raise ValueError(f"stride must be >= 0, got {stride}")
    offsets = int(stride) * (int(num_context) - 1 - np.arange(int(num_context), dtype=np.int64))
    return np.maximum(idx[:, None] - offsets[None, :], 0)
