"""Shared helpers of the pipelines tests: tiny source videos and reading shards back with webdataset."""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Sequence
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


def write_video(path: Path, frames: np.ndarray, fps: float = 30, codec: str = "libx264",
                sar: Fraction | None = None) -> Path:
    """Encode frames (T, H, W, 3) into a real file (mp4/H.264 or avi/MPEG-4 part 2); ``sar``: pixel aspect."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if sar is not None:
            s.codec_context.sample_aspect_ratio = sar
        out.start_encoding()  # write the header even when there are no frames
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return path


def _boxes(buf: bytes, start: int, end: int):
    """(type, offset, size) of the ISO-BMFF boxes in buf[start:end]."""
    i = start
    while i + 8 <= end:
        size, kind = struct.unpack(">I4s", buf[i:i + 8])
        if size == 1:
            size = struct.unpack(">Q", buf[i + 8:i + 16])[0]
        yield kind, i, size
        i += size


def set_display_matrix(path: Path, ab_cd: Sequence[int]) -> Path:
    """Write the display matrix ``[[a, b], [c, d]]`` (given as (a, b, c, d), entries -1/0/1) into an mp4's
    track header (moov/trak/tkhd), where phones record "rotation -90" = (0, 1, -1, 0)."""
    a, b, c, d = ab_cd
    data = bytearray(path.read_bytes())
    (_, moov, moov_size), = [x for x in _boxes(data, 0, len(data)) if x[0] == b"moov"]
    (_, trak, trak_size), = [x for x in _boxes(data, moov + 8, moov + moov_size) if x[0] == b"trak"]
    (_, tkhd, _), = [x for x in _boxes(data, trak + 8, trak + trak_size) if x[0] == b"tkhd"]
    # header, version/flags, times/track id/duration (v0: 20 bytes, v1: 32), reserved/layer/group/volume
    at = tkhd + 8 + 4 + (32 if data[tkhd + 8] == 1 else 20) + 16
    data[at:at + 36] = struct.pack(">9i", a << 16, b << 16, 0, c << 16, d << 16, 0, 0, 0, 1 << 30)
    path.write_bytes(bytes(data))
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
