"""Small inputs for the tests of ``vasot_dist.infer``: frames that change every frame, written as H.264 mp4 by the
library's own encoder (``vasot_pipelines.video.encode_frames``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from vasot_pipelines.video import encode_frames

REAL_VIDEOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "videos"


def moving_frames(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """uint8 (n, h, w, 3): a random colour pattern of 8-pixel blocks drifting right by 2 pixels a frame."""
    base = np.random.default_rng(seed).integers(30, 225, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    big = base.repeat(8, 0).repeat(8, 1)[:h]
    return np.stack([np.roll(big, 2 * t, axis=1)[:, :w] for t in range(n)])


def write_mp4(path: Path, frames: np.ndarray, fps: float = 10) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_frames(frames, fps))
    return path
