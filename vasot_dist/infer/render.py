"""Pictures of an alignment: the plan as a PNG and a side-by-side video in which B is re-timed to A.

The side-by-side video is what TCC's and LAV's ``visualize_alignment`` show: frame i of A beside the frame of B
the alignment matches to it, so B plays at A's pace. B's frame is ``Alignment.retiming[i]``, the non-decreasing
fit of the matches (B plays forward, as a re-timing does), so both videos are read once, front to back, one
frame at a time: the pictures come from the sharding tool's reader (:class:`vasot_pipelines.video.VideoSource`,
:func:`vasot_pipelines.video.shown_image`: shown upright, as a player shows them) and go to its H.264 encoder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vasot_dist.runtime.files import AtomicFile

PANEL_HEIGHT = 240  # pixels of each video in the side-by-side picture
MAX_PLAN_SIDE = 600  # a larger plan is summed over blocks before it is drawn


def pooled(plan: np.ndarray, max_side: int = MAX_PLAN_SIDE) -> np.ndarray:
    """``plan`` (N, M) summed over blocks of ``ceil(N / max_side)`` x ``ceil(M / max_side)`` entries (a
    picture of at most ``max_side`` pixels a side keeps all the mass; the last blocks may be partial)."""
    n, m = plan.shape
    fn, fm = -(-n // max_side), -(-m // max_side)
    if fn == fm == 1:
        return plan
    padded = np.zeros((-(-n // fn) * fn, -(-m // fm) * fm), dtype=np.float32)
    padded[:n, :m] = plan
    return padded.reshape(padded.shape[0] // fn, fn, padded.shape[1] // fm, fm).sum(axis=(1, 3))


def write_plan_png(plan: np.ndarray, path: str | os.PathLike, title: str) -> str:
    """The plan as a heat map (rows: frames of A, columns: frames of B), pooled when large."""
    from vasot_dist.eval.plots import plot_transport_plan

    small = pooled(plan)
    if small.shape != plan.shape:
        title += f" ({plan.shape[0]}x{plan.shape[1]} summed into {small.shape[0]}x{small.shape[1]} blocks)"
    return plot_transport_plan(small, path, title=title)


def _panel_width(height: int, width: int, panel_height: int) -> int:
    return max(2, int(round(width * panel_height / height / 2)) * 2)


def _pictures(video: str | os.PathLike | np.ndarray, panel_height: int) -> tuple[Iterator[np.ndarray], int]:
    """The frames of ``video`` as shown, ``panel_height`` pixels high, one at a time; and their width."""
    from vasot_pipelines.video import VideoSource, shown_image

    if isinstance(video, np.ndarray):
        from .frames import scale_to

        w = _panel_width(video.shape[1], video.shape[2], panel_height)
        return (scale_to(f, (panel_height, w)) for f in video), w
    src = VideoSource(os.fspath(video))
    w = _panel_width(src.info.height, src.info.width, panel_height)

    def frames() -> Iterator[np.ndarray]:
        with src:
            for frame in src:
                yield shown_image(frame, src.info.orientation, (panel_height, w))

    return frames(), w


def _caption(image: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    im = Image.fromarray(image)
    draw = ImageDraw.Draw(im)
    box = draw.textbbox((4, 4), text)
    draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
    draw.text((4, 4), text, fill=(255, 255, 255))
    return np.asarray(im)


def write_side_by_side(path: str | os.PathLike, a, b, retiming: np.ndarray, *, fps: float | None,
                       times_a: np.ndarray | None = None, times_b: np.ndarray | None = None,
                       panel_height: int = PANEL_HEIGHT) -> Path:
    """An H.264 mp4 of A's frames beside B's frames ``retiming`` (N,) (non-decreasing), at A's ``fps``.

    a, b: video files (or uint8 (T, H, W, 3) arrays, taken as upright); each panel is captioned with the frame
    and its time. Written atomically to ``path``; returns it.
    """
    from vasot_pipelines.video import H264Encoder

    retiming = np.asarray(retiming, dtype=np.int64)
    if retiming.ndim != 1 or (np.diff(retiming) < 0).any():
        raise ValueError("retiming must be a non-decreasing (N,) array of frames of B")
    frames_a, wa = _pictures(a, panel_height)
    frames_b, wb = _pictures(b, panel_height)
    enc = H264Encoder(panel_height, wa + wb, fps or 25.0)
    j, picture_b = -1, None
    for i, (picture_a, want) in enumerate(zip(frames_a, retiming)):
        while j < want:
            nxt = next(frames_b, None)
            if nxt is None:
                break  # B decoded fewer frames than it was embedded with: hold its last one
            j, picture_b = j + 1, nxt
        ta = "" if times_a is None else f" {times_a[i]:.2f}s"
        tb = "" if times_b is None or j < 0 else f" {times_b[min(j, len(times_b) - 1)]:.2f}s"
        left = _caption(picture_a, f"A {i}{ta}")
        right = _caption(picture_b, f"B {j}{tb}") if picture_b is not None else np.zeros_like(left[:, :wb])
        enc.add(np.concatenate([left, right], axis=1))
    data = enc.finish()
    with AtomicFile(path, binary=True) as f:
        f.write(data)
    return Path(path)
