"""Shared helpers of the pipelines tests: tiny source videos and reading shards back with webdataset."""

from __future__ import annotations

import io
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

REAL_VIDEOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "videos"


def smooth_frames(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """uint8 (n, h, w, 3): smooth moving gradients + a bright square (codec friendly, distinct per frame)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty((n, h, w, 3), np.uint8)
    base = rng.uniform(40, 200, size=3)
    for t in range(n):
        img = np.stack([base[c] + 40 * np.sin(xx / w * 3 + t * 0.3 + c) + 30 * np.cos(yy / h * 2 - t * 0.2)
                        for c in range(3)], -1)
        x0 = int((t * 3) % max(1, w - h // 3))
        img[h // 3: h // 3 + h // 3, x0:x0 + h // 3] = 250
        out[t] = np.clip(img, 0, 255)
    return out


def write_video(path: Path, frames: np.ndarray, fps: float = 30, codec: str = "libx264") -> Path:
    """Encode frames (T, H, W, 3) into a real file (mp4/H.264 or avi/MPEG-4 part 2)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        out.start_encoding()  # write the header even when there are no frames
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return path


def read_shards(out: Path) -> dict[str, dict]:
    """{key: {"json": meta, "mp4"|"npy": bytes, "url": shard}} for every shard listed in dataset.json."""
    import webdataset as wds

    index = json.loads((out / "dataset.json").read_text())
    urls = [str(out / s["path"]) for s in index["shards"]]
    samples: dict[str, dict] = {}
    for s in wds.WebDataset(urls, shardshuffle=False):
        assert s["__key__"] not in samples, f"duplicate key {s['__key__']}"
        d = {"json": json.loads(s["json"]), "url": s["__url__"]}
        for ext in ("mp4", "npy"):
            if ext in s:
                d[ext] = s[ext]
        samples[s["__key__"]] = d
    return samples


def decode_all(mp4: bytes) -> np.ndarray:
    import decord

    vr = decord.VideoReader(io.BytesIO(mp4), num_threads=1)
    return vr.get_batch(list(range(len(vr)))).asnumpy()
