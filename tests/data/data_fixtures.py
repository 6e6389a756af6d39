"""Tiny shards for the loader tests, written in the exact shard format (used by conftest.py).

All shards come from :func:`build_dataset` (one function, so the fixtures can later be switched to
``vasot_pipelines.synthetic``). Videos are real H.264 mp4s encoded in memory with PyAV; frame ``i`` of video
``v`` shows the two base-8 digits of ``i`` as grey levels in its first two quarters and ``video_level(v)``
on its right half, so a test can read back which frame of which video it got.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import webdataset as wds

FPS = 10
GOP = 4


def frame_code(i: int) -> tuple[int, int]:
    """Grey levels (first quarter, second quarter) that encode frame index ``i`` (0..63) in base 8,
    28 levels apart so that codec and scaler errors (a few levels) cannot flip a digit."""
    if not 0 <= i < 64:
        raise ValueError(f"fixture frame index {i} out of 0..63")
    return 16 + 28 * (i // 8), 16 + 28 * (i % 8)


def video_level(v: int) -> int:
    return 40 + 16 * (v % 12)


def _region_mean(frame: np.ndarray, x0: float, x1: float) -> float:
    """Mean of the central part of the columns [x0, x1) (fractions of the width), middle half of the rows."""
    h, w = frame.shape[:2]
    a, b = int(round(x0 * w)), int(round(x1 * w))
    m = max((b - a) // 4, 1)
    return float(frame[h // 4: 3 * h // 4, a + m: b - m].astype(np.float64).mean())


def read_frame_index(frame: np.ndarray) -> int:
    """Frame index encoded by :func:`frame_code` in a decoded (H, W, 3) frame (any scaling)."""
    hi = int(round((_region_mean(frame, 0, 0.25) - 16) / 28))
    lo = int(round((_region_mean(frame, 0.25, 0.5) - 16) / 28))
    return 8 * hi + lo


def read_video_level(frame: np.ndarray) -> float:
    return _region_mean(frame, 0.5, 1.0)


def render_video(num_frames: int, v: int, size: tuple[int, int]) -> np.ndarray:
    """uint8 (N, H, W, 3): quarters 1-2 encode the frame index, the right half the video."""
    h, w = size
    frames = np.empty((num_frames, h, w, 3), dtype=np.uint8)
    frames[:, :, w // 2:] = video_level(v)
    for i in range(num_frames):
        hi, lo = frame_code(i)
        frames[i, :, : w // 4] = hi
        frames[i, :, w // 4: w // 2] = lo
    return frames


def encode_mp4(frames: np.ndarray, fps: int = FPS, gop: int = GOP) -> bytes:
    """H.264 mp4 bytes (yuv420p, constant fps, short GOP, no B-frames) of uint8 (N, H, W, 3) frames."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"crf": "8", "preset": "ultrafast", "bf": "0", "sc_threshold": "0"}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


@dataclass
class Truth:
    """What the loader must return for one sample."""

    key: str
    activity: str
    video: int
    num_frames: int
    labels: np.ndarray
    progress: np.ndarray | None
    steps: np.ndarray | None
    frames: np.ndarray | None = None  # rendered (N, H, W, 3) before encoding
    features: np.ndarray | None = None


@dataclass
class Fixture:
    root: Path
    truth: dict[str, Truth]  # good samples by key
    keys: dict[str, list[str]] = field(default_factory=dict)  # good keys per split, in shard order
    bad: dict[str, str] = field(default_factory=dict)  # corrupt key -> kind
    shards: dict[str, list[Path]] = field(default_factory=dict)


CORRUPT_KINDS = ("truncated_mp4", "random_bytes", "bad_json", "labels_wrong_length", "missing_mp4",
                 "missing_json", "zero_frames", "empty_video", "frames_overclaimed", "frames_underclaimed",
                 "labels_outside_map")


def _corrupt_members(kind: str, key: str, rng: np.random.Generator, size: tuple[int, int]) -> dict[str, bytes]:
    """Tar members of one corrupt sample of ``kind``."""
    n = 12
    meta = {"key": key, "dataset": "fixture", "activity": key.split("__")[0], "split": "train", "num_frames": n,
            "fps": FPS, "height": size[0], "width": size[1], "labels": [0] * n, "progress": None, "steps": None,
            "source": "fixture"}
    good_mp4 = encode_mp4(render_video(n, 0, size))
    if kind == "truncated_mp4":
        return {"mp4": good_mp4[: len(good_mp4) // 2], "json": json.dumps(meta).encode()}
    if kind == "random_bytes":
        return {"mp4": rng.integers(0, 256, 3000, dtype=np.uint8).tobytes(), "json": json.dumps(meta).encode()}
    if kind == "bad_json":
        return {"mp4": good_mp4, "json": b'{"key": "x", "num_frames": 12, "labels": [0, 0'}
    if kind == "labels_wrong_length":
        return {"mp4": good_mp4, "json": json.dumps({**meta, "labels": [0] * (n - 3)}).encode()}
    if kind == "missing_mp4":
        return {"json": json.dumps(meta).encode()}
    if kind == "missing_json":
        return {"mp4": good_mp4}
    if kind == "zero_frames":
        return {"mp4": good_mp4, "json": json.dumps({**meta, "num_frames": 0, "labels": []}).encode()}
    if kind == "empty_video":  # an encoder run without frames: PyAV writes no bytes at all
        return {"mp4": encode_mp4(np.zeros((0,) + size + (3,), np.uint8)), "json": json.dumps(meta).encode()}
    if kind == "frames_overclaimed":  # JSON claims 40 frames, the mp4 holds 12 (get_batch could hang)
        return {"mp4": good_mp4, "json": json.dumps({**meta, "num_frames": 40, "labels": [0] * 40}).encode()}
    if kind == "frames_underclaimed":  # JSON claims 7 frames, the mp4 holds 12: labels of its first part only
        return {"mp4": good_mp4, "json": json.dumps({**meta, "num_frames": 7, "labels": [0] * 7}).encode()}
    if kind == "labels_outside_map":  # the fixture's label map has ids 0..3
        return {"mp4": good_mp4, "json": json.dumps({**meta, "labels": [0] * 6 + [9] * 6}).encode()}
    raise ValueError(kind)


def build_dataset(root: Path, *, modality: str = "video", splits: dict[str, int] | None = None,
                  activities: tuple[str, ...] = ("pour", "stir"), frames: tuple[int, int] = (10, 40),
                  size: tuple[int, int] = (32, 64), samples_per_shard: int = 2, feature_dim: int = 5,
                  corrupt: dict[str, tuple[str, ...]] | None = None, seed: int = 0) -> Fixture:
    """Write ``{split}-{index:06d}.tar`` shards and ``dataset.json`` under ``root``.

    splits: videos per split (round-robin over ``activities``); corrupt: per split, corrupt sample
    kinds (see ``CORRUPT_KINDS``) interleaved with the good samples. Labels are a step function of the
    frame index with a per-video offset (so wrong frames give wrong labels); progress = i / (N - 1);
    steps = label. Returns the ground truth of every good sample.
    """
    splits = {"train": 16} if splits is None else splits
    corrupt = corrupt or {}
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    fx = Fixture(root=root, truth={})
    shard_entries, split_stats = [], {}
    label_map = {f"step{j}": j for j in range(4)}
    v = 0
    for split, count in splits.items():
        items: list[tuple[str, dict[str, bytes], int]] = []  # (key, members, num_frames or 0)
        for j in range(count):
            activity = activities[j % len(activities)]
            key = f"{activity}__{split}_v{v:03d}"
            # The first video of a split is the shortest allowed (so tests see a short, masked one).
            n = frames[0] if j == 0 else int(rng.integers(frames[0], frames[1] + 1))
            offset = int(rng.integers(0, 3))
            labels = np.minimum((np.arange(n) * 4) // n + offset, 3).astype(np.int64)
            progress = (np.arange(n) / max(n - 1, 1)).astype(np.float32)
            meta = {"key": key, "dataset": "fixture", "activity": activity, "split": split, "num_frames": n,
                    "fps": FPS, "labels": labels.tolist(), "progress": progress.tolist(), "steps": labels.tolist(),
                    "source": f"fixture:{seed}"}
            truth = Truth(key, activity, v, n, labels, progress, labels.copy())
            if modality == "video":
                meta.update(height=size[0], width=size[1])
                truth.frames = render_video(n, v, size)
                payload = {"mp4": encode_mp4(truth.frames)}
            else:
                meta["feature_dim"] = feature_dim
                truth.features = rng.standard_normal((n, feature_dim)).astype(np.float32)
                payload = {"npy": npy_bytes(truth.features)}
            items.append((key, {**payload, "json": json.dumps(meta).encode()}, n))
            fx.truth[key] = truth
            fx.keys.setdefault(split, []).append(key)
            v += 1
        for c, kind in enumerate(corrupt.get(split, ())):
            key = f"{activities[c % len(activities)]}__bad_{kind}_{c}"
            pos = (2 * c + 1) % (len(items) + 1)
            items.insert(pos, (key, _corrupt_members(kind, key, rng, size), 0))
            fx.bad[key] = kind
        acts: dict[str, int] = {}
        for key, _, _ in items:
            a = key.split("__")[0]
            acts[a] = acts.get(a, 0) + 1
        n_shards = (len(items) + samples_per_shard - 1) // samples_per_shard
        for s in range(n_shards):
            chunk = items[s * samples_per_shard:(s + 1) * samples_per_shard]
            name = f"{split}-{s:06d}.tar"
            with wds.TarWriter(str(root / name)) as tw:
                for key, members, _ in chunk:
                    tw.write({"__key__": key, **members})
            shard_entries.append({"path": name, "split": split, "num_samples": len(chunk),
                                  "num_frames": sum(n for _, _, n in chunk)})
            fx.shards.setdefault(split, []).append(root / name)
        split_stats[split] = {"num_samples": len(items), "num_frames": sum(n for _, _, n in items),
                              "activities": acts}
    index = {"format_version": 1, "name": "fixture", "modality": modality, "label_map": label_map,
             "background_id": None, "fps": FPS, "short_side": min(size) if modality == "video" else None,
             "shards": shard_entries, "splits": split_stats}
    (root / "dataset.json").write_text(json.dumps(index, indent=1))
    return fx
