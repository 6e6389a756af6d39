"""Decode throughput of the streaming data path (CPU).

Columns: ``fps/worker`` frames returned per wall second by one worker; ``fps/cpu-s`` frames returned
per CPU second of that worker (its per-core rate, robust to other load on the machine); ``codec/cpu-s``
frames the H.264 decoder has to decode per CPU second (every frame from a GOP's keyframe to the last
requested one); ``fps total`` all workers together per wall second.

Generates H.264 sources with PyAV into a temporary folder (1080p with few frames, and "pre-resized"
clips at a 256 px short side as ``vasot-shard`` writes them: GOP 8, no B-frames, CRF 23; plus the real
camera clips of ``../shared/data/videos`` re-encoded the same way when that folder exists), then measures

1. ``decode``: :func:`vasot_dist.data.decode_frames` alone, as the training loader calls it (bin
   sampler, T frames + context frames at stride 15, decoded at 224 and 256 px), in 1 and 2 worker
   processes running at once: frames returned per second per worker and in total;
2. ``loader``: the whole training pipeline (tar reading, JSON, shuffle, decode, augmentation,
   collation, worker IPC) over shards of the pre-resized clips at 224 px, with 1 and 2 DataLoader
   workers: frames per second delivered to the main process.

Target: pre-resized shards decode at >= 400 frames/s per core (one worker = one core: decord runs
one thread per reader).

    python benchmarks/bench_data.py [--seconds 3] [--out benchmarks/results/bench_data_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from vasot_pipelines.video import DEFAULT_GOP, encode_frames

TARGET_FPS_PER_CORE = 400.0
CONTEXT_STRIDE = 15
GOP = DEFAULT_GOP  # as vasot-shard writes


def render(num_frames: int, height: int, width: int, seed: int) -> np.ndarray:
    """A textured pattern panning across the frame plus mild noise: compresses like camera footage,
    not like a flat fill. Built once, then shifted per frame (cheap even at 1080p)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    smooth = 110 + 60 * np.sin(xx / (width / 6.0)) * np.cos(yy / (height / 4.0))
    blocks = rng.integers(0, 48, (height // 8 + 1, width // 8 + 1, 3)).repeat(8, 0).repeat(8, 1)[:height, :width]
    base = np.clip(smooth[..., None] + blocks, 0, 250).astype(np.uint8)
    noise = rng.integers(0, 6, (4, height, width, 1), dtype=np.uint8)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for i in range(num_frames):
        frames[i] = np.roll(base, (i * 2, i * 3), axis=(0, 1)) + noise[i % 4]
    return frames


def encode(frames: np.ndarray) -> bytes:
    """mp4 bytes of uint8 (T, H, W, 3) frames at 30 fps, encoded as vasot-shard encodes (GOP 8, CRF 23)."""
    return encode_frames(frames, 30)


SOURCES = {
    # name: (height, width, frames per video, videos, T sampled frames)
    "1080p": (1080, 1920, 24, 2, 8),
    "pre-resized 256": (256, 456, 150, 4, 32),
}
REAL_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"
REAL_T = 32


def reencode_real(path: Path, short_side: int = 256) -> tuple[bytes, int]:
    """A real clip as vasot-shard stores it: short side 256 (even sizes), GOP 8, CRF 23."""
    with av.open(str(path)) as c:
        frames = [f for f in c.decode(video=0)]
    h, w = frames[0].height, frames[0].width
    scale = short_side / min(h, w)
    oh, ow = (int(round(h * scale / 2)) * 2, int(round(w * scale / 2)) * 2)
    rgb = np.stack([f.to_ndarray(format="rgb24", height=oh, width=ow) for f in frames])
    return encode(rgb), len(frames)


def make_sources(root: Path) -> tuple[dict[str, list[tuple[Path, int]]], dict[str, float]]:
    """Write the clips; returns {source: [(path, frames)]} and the mean encoded bytes per frame."""
    out: dict[str, list[tuple[Path, int]]] = {}
    for name, (h, w, n, videos, _) in SOURCES.items():
        out[name] = []
        for v in range(videos):
            path = root / f"{name.replace(' ', '_')}_{v}.mp4"
            path.write_bytes(encode(render(n, h, w, seed=v)))
            out[name].append((path, n))
    real = sorted(REAL_VIDEOS.glob("*.mp4")) + sorted(REAL_VIDEOS.glob("*.avi")) if REAL_VIDEOS.is_dir() else []
    if real:  # camera footage: the realistic bitrate for "pre-resized"
        out["real 256"] = []
        for v, src in enumerate(real):
            data, n = reencode_real(src)
            if n < REAL_T:
                continue
            path = root / f"real_{v}.mp4"
            path.write_bytes(data)
            out["real 256"].append((path, n))
    sizes = {k: sum(p.stat().st_size for p, _ in v) / sum(n for _, n in v) for k, v in out.items()}
    return out, sizes


def codec_frames(indices: np.ndarray, gop: int = GOP) -> int:
    """Frames the codec must decode for ``indices`` at least: in every GOP that holds a requested
    frame, from its keyframe to the last requested frame (P-frames depend on all earlier ones)."""
    idx = np.unique(indices)
    last_in_gop: dict[int, int] = {}
    for i in idx.tolist():
        last_in_gop[i // gop] = max(last_in_gop.get(i // gop, 0), i % gop)
    return sum(v + 1 for v in last_in_gop.values())


def _decode_worker(args) -> dict[str, float]:
    """One process: decode sampled frames of the clips until ``seconds`` have passed."""
    from vasot_dist.data import BinSampler, context_indices, decode_frames

    clips, size, seconds, t_frames, seed = args
    data = [(Path(p).read_bytes(), n) for p, n in clips]
    sampler, rng = BinSampler(t_frames), np.random.default_rng(seed)
    frames = codec = k = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while True:
        blob, n = data[k % len(data)]
        idx, _ = sampler(n, rng)
        request = context_indices(idx, 2, CONTEXT_STRIDE).reshape(-1)
        frames += decode_frames(blob, request, size, num_frames=n).shape[0]
        codec += codec_frames(request)
        k += 1
        wall = time.perf_counter() - wall0
        if wall >= seconds:
            return {"frames": frames, "codec": codec, "wall": wall, "cpu": time.process_time() - cpu0}


def bench_decode(sources, seconds: float) -> list[dict]:
    rows = []
    ctx = mp.get_context("fork")
    for name, clips in sources.items():
        t_frames = SOURCES[name][4] if name in SOURCES else REAL_T
        for size in (224, 256):
            for workers in (1, 2):
                jobs = [([(str(p), n) for p, n in clips], size, seconds, t_frames, 100 + w) for w in range(workers)]
                with ctx.Pool(workers) as pool:
                    res = pool.map(_decode_worker, jobs)
                rows.append({
                    "bench": "decode", "source": name, "size": size, "workers": workers,
                    "frames_per_video": t_frames * 2,
                    "fps_per_worker": float(np.mean([r["frames"] / r["wall"] for r in res])),
                    "fps_per_cpu_s": float(np.mean([r["frames"] / r["cpu"] for r in res])),
                    "codec_fps_per_cpu_s": float(np.mean([r["codec"] / r["cpu"] for r in res])),
                    "fps_total": float(sum(r["frames"] for r in res) / max(r["wall"] for r in res)),
                })
                print_row(rows[-1])
    return rows


def write_shards(sources, root: Path) -> Path:
    """Shards of the pre-resized clips in the dataset format (4 shards, so 2 workers get 2 each)."""
    import webdataset as wds

    clips = sources["pre-resized 256"]
    h, w = SOURCES["pre-resized 256"][:2]
    copies, shards = 8, 4
    samples = []
    for c in range(copies):
        for v, (path, n) in enumerate(clips):
            key = f"bench__c{c}_v{v}"
            meta = {"key": key, "dataset": "bench", "activity": "bench", "split": "train", "num_frames": n, "fps": 30,
                    "height": h, "width": w, "labels": [0] * n, "progress": None, "steps": None, "source": str(path)}
            samples.append((key, path.read_bytes(), meta))
    entries = []
    per = len(samples) // shards
    for s in range(shards):
        name = f"train-{s:06d}.tar"
        chunk = samples[s * per:(s + 1) * per]
        with wds.TarWriter(str(root / name)) as tw:
            for key, mp4, meta in chunk:
                tw.write({"__key__": key, "mp4": mp4, "json": json.dumps(meta).encode()})
        entries.append({"path": name, "split": "train", "num_samples": len(chunk),
                        "num_frames": sum(m["num_frames"] for _, _, m in chunk)})
    total = sum(e["num_samples"] for e in entries)
    index = {"format_version": 1, "name": "bench", "modality": "video", "label_map": {"x": 0}, "background_id": None,
             "fps": 30, "short_side": 256, "shards": entries,
             "splits": {"train": {"num_samples": total, "num_frames": sum(e["num_frames"] for e in entries),
                                  "activities": {"bench": total}}}}
    (root / "dataset.json").write_text(json.dumps(index))
    return root


def bench_loader(shard_root: Path, seconds: float) -> list[dict]:
    from vasot_dist.config.schema import DataConfig
    from vasot_dist.data import make_train_loader

    rows = []
    t_frames = SOURCES["pre-resized 256"][4]
    for workers, augment in ((1, False), (1, True), (2, True)):
        cfg = DataConfig(shards=str(shard_root), frames_per_video=t_frames, context_frames=2,
                         context_stride=CONTEXT_STRIDE, image_size=224, batch_size=2, num_workers=workers,
                         shuffle_buffer=8, augment=augment)
        frames, epoch, start = 0, 0, None
        while start is None or time.perf_counter() - start < seconds:
            for batch in make_train_loader(cfg, rank=0, world_size=1, epoch=epoch, seed=0):
                if start is None:  # exclude worker start-up and the first shuffle-buffer fill
                    start = time.perf_counter()
                    continue
                frames += int(np.prod(batch.frames.shape[:3]))
            epoch += 1
        elapsed = time.perf_counter() - start
        rows.append({"bench": "loader" + ("+aug" if augment else ""), "source": "pre-resized 256", "size": 224,
                     "workers": workers, "frames_per_video": t_frames * 2, "fps_per_worker": frames / elapsed / workers,
                     "fps_per_cpu_s": None, "codec_fps_per_cpu_s": None, "fps_total": frames / elapsed})
        print_row(rows[-1])
    return rows


def _num(v) -> str:
    return "-" if v is None else f"{v:.0f}"


def print_row(r: dict) -> None:
    print(f"{r['bench']:<10} {r['source']:<16} {r['size']:>4} {r['workers']:>7} {r['frames_per_video']:>10} "
          f"{_num(r['fps_per_worker']):>11} {_num(r['fps_per_cpu_s']):>10} {_num(r['codec_fps_per_cpu_s']):>11} "
          f"{_num(r['fps_total']):>9}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="measuring time per configuration")
    ap.add_argument("--out", default="benchmarks/results/bench_data_cpu.json")
    ap.add_argument("--skip-loader", action="store_true", help="decode_frames only")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        t0 = time.perf_counter()
        sources, bytes_per_frame = make_sources(Path(tmp))
        print(f"# sources written in {time.perf_counter() - t0:.1f}s: "
              + "; ".join(f"{k}: {len(v)} clips, {sum(n for _, n in v)} frames, {bytes_per_frame[k] / 1024:.1f} KiB/frame"
                          for k, v in sources.items()))
        print(f"{'bench':<10} {'source':<16} {'size':>4} {'workers':>7} {'frames/vid':>10} {'fps/worker':>11} "
              f"{'fps/cpu-s':>10} {'codec/cpu-s':>11} {'fps total':>9}")
        rows = bench_decode(sources, args.seconds)
        if not args.skip_loader:
            shard_root = Path(tmp) / "shards"
            shard_root.mkdir()
            rows += bench_loader(write_shards(sources, shard_root), args.seconds)

    pre = [r for r in rows if r["bench"] == "decode" and r["source"] in ("pre-resized 256", "real 256")
           and r["workers"] == 1]
    worst = min(r["fps_per_cpu_s"] for r in pre)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# pre-resized sources, 1 worker: {worst:.0f} frames per CPU-second at worst (target >= {TARGET_FPS_PER_CORE:.0f} "
          f"per core): {'MET' if worst >= TARGET_FPS_PER_CORE else 'NOT MET'}; load average {load:.1f} on "
          f"{os.cpu_count()} CPUs")
    result = {
        "benchmark": "bench_data",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_1min": load},
        "settings": {"seconds": args.seconds, "context_frames": 2, "context_stride": CONTEXT_STRIDE, "gop": GOP,
                     "sources": {k: dict(zip(("height", "width", "frames", "videos", "T"), v)) for k, v in SOURCES.items()},
                     "real_clips": REAL_VIDEOS.is_dir(), "bytes_per_frame": bytes_per_frame},
        "target_fps_per_core": TARGET_FPS_PER_CORE,
        "target_met": worst >= TARGET_FPS_PER_CORE,
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"# wrote {out}")


if __name__ == "__main__":
    main()
