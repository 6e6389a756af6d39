"""Peak memory of applying a model to long videos (``vasot_dist.infer``): flat in the video's length.

``InferenceModel.embed`` decodes and embeds a video one chunk (``eval.batch_frames``) at a time, so its peak
resident memory should be the model plus one chunk's frames and activations, whatever the length; only the
embeddings (T x D float32) grow. This script measures it on CPU:

1. ``embed``: a ResNet-50 (``model.weights: none``, conv4c + the 3D-conv head, defaults of ``configs/base.yaml``:
   224 px, 2 context frames 15 apart, embed_dim 128, 64 frames per encoder call) saved as a run, then, for each
   length L, a fresh process that loads it (``vasot_dist.load``) and embeds a synthetic L-frame 224 px H.264
   video (``model.embed``, then ``model.segment`` on the embeddings with VASOT's decoder): its peak RSS
   (``ru_maxrss``), its RSS after loading the model, frames per second. The growth from the shortest to the
   longest video against the embeddings' own size says whether anything else grows.
2. ``decode``: the frames of a ``--decode-length`` (10,000) frame 224 px video read in chunks as ``embed`` reads
   them, without the model (the full length is minutes here, where the ResNet takes hours on 2 CPU cores).
3. ``align``: ``alignment_plan`` (the run's alignment solve) on random unit embeddings of N = M frames in a
   fresh process each, peak RSS over the RSS before the solve: bytes per plan entry, to say what aligning two
   long videos costs.

    python benchmarks/bench_infer_memory.py                                  # lengths 128..1024, then align
    python benchmarks/bench_infer_memory.py --lengths 10000 --align-sizes 0  # the full 10,000 frames (slow on CPU)

Prints a table and writes JSON (``--out``, default ``benchmarks/results/bench_infer_memory_cpu.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZE = 224


def write_video(path: Path, num_frames: int, fps: int = 15) -> Path:
    """A moving textured 224 px H.264 clip written frame by frame (never held whole in memory)."""
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    base = (110 + 60 * np.sin(xx / 37) * np.cos(yy / 56))[..., None] + rng.integers(0, 48, (SIZE, SIZE, 3))
    base = np.clip(base, 0, 250).astype(np.uint8)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=Fraction(fps))
        s.width = s.height = SIZE
        s.pix_fmt = "yuv420p"
        s.options = {"preset": "ultrafast", "x264-params": "keyint=30"}
        for i in range(num_frames):
            frame = np.roll(base, (i * 2, i * 3), axis=(0, 1))
            frame[:, :, i % 3] //= 2  # colour phases that change every frame
            for p in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return path


def make_run(folder: Path) -> Path:
    """A run directory holding a checkpoint of an untrained ResNet-50 VASOT model at 224 px."""
    import torch

    from vasot_dist.config import config_to_dict, load_config
    from vasot_dist.train.model import build_train_model

    cfg = load_config(None, ["model.weights=none", "method.name=vasot", f"data.image_size={SIZE}",
                             "data.shards=/nonexistent", "model.num_actions=8"])
    net = build_train_model(cfg)
    (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    torch.save({"model": net.state_dict(), "config": config_to_dict(cfg)}, folder / "checkpoints" / "step_00000000.pt")
    return folder


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakSampler:
    """The highest RSS of this process while the ``with`` block runs, sampled every 2 ms by a thread (the
    process-wide ``ru_maxrss`` would include what happened before, e.g. importing torch)."""

    def __enter__(self) -> PeakSampler:
        import threading

        self.start = self.peak = rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, rss_mib())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib())


def measure_embed(run: str, video: str) -> dict:
    """In this (fresh) process: load, embed and segment ``video``; memory in MiB, RSS after every chunk."""
    import vasot_dist

    model = vasot_dist.load(run, device="cpu")
    loaded = rss_mib()
    trace: list[tuple[int, float]] = []
    done = [0]

    def progress(n: int) -> None:
        done[0] += n
        trace.append((done[0], round(rss_mib(), 1)))

    t = time.perf_counter()
    emb = model.embed(video, progress=progress)
    wall = time.perf_counter() - t
    seg = model.segment(emb)
    return {"frames": len(emb), "rss_after_load_mib": loaded, "peak_rss_mib": resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 1024, "embeddings_mib": emb.vectors.nbytes / 2**20, "embed_s": wall,
        "fps": len(emb) / wall, "segments": len(seg.segments), "batch_frames": model.cfg.eval.batch_frames,
        "context_frames": model.cfg.data.context_frames, "threads": __import__("torch").get_num_threads(),
        "rss_after_chunk": trace}


def measure_decode(video: str) -> dict:
    """In this (fresh) process: read every frame of ``video`` at 224 px in chunks of 64, as ``embed`` reads it,
    without the model; memory in MiB, RSS after every 1,000 frames."""
    from vasot_dist.infer import open_clip

    before = rss_mib()
    clip = open_clip(video, modality="video", image_size=SIZE)
    trace, done = [], 0
    t = time.perf_counter()
    for frames, _ in clip.chunks(64):
        done += len(frames)
        if done % 1024 == 0:
            trace.append((done, round(rss_mib(), 1)))
    wall = time.perf_counter() - t
    return {"frames": done, "rss_before_mib": before, "peak_rss_mib": resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 1024, "decode_s": wall, "fps": done / wall, "rss_every_1024": trace,
        "one_chunk_mib": 64 * SIZE * SIZE * 3 / 2**20}


def measure_align(n: int) -> dict:
    import torch
    import torch.nn.functional as F

    from vasot_dist.config import load_config
    from vasot_dist.eval.runner import alignment_plan

    cfg = load_config(None, ["method.name=vasot"])
    gen = torch.Generator().manual_seed(0)
    x = F.normalize(torch.randn(1, n, 128, generator=gen), dim=-1)
    y = F.normalize(torch.randn(1, n, 128, generator=gen), dim=-1)
    alignment_plan(cfg, x[:, :8], y[:, :8])  # the solver's first call (imports, allocator) outside the measurement
    t = time.perf_counter()
    with PeakSampler() as mem:
        plan = alignment_plan(cfg, x, y)
    wall = time.perf_counter() - t
    grown = mem.peak - mem.start
    return {"frames": n, "plan_mib": plan.numel() * 4 / 2**20, "peak_over_start_mib": grown,
            "bytes_per_entry": grown * 2**20 / plan.numel(), "solve_s": wall}


def summarize(rows: list[dict]) -> dict:
    """Growth with the length: within each run, RSS after the last chunk minus RSS after the first (the frames
    are streamed, so only the embeddings should add to it); across runs, the range of the peaks."""
    if not rows:
        return {}
    return {"within_run_growth_mib": [round(r["rss_after_chunk"][-1][1] - r["rss_after_chunk"][0][1], 1) for r in rows],
            "embeddings_mib": [round(r["embeddings_mib"], 2) for r in rows],
            "peak_rss_range_mib": [round(min(r["peak_rss_mib"] for r in rows), 1),
                                   round(max(r["peak_rss_mib"] for r in rows), 1)]}


def child(args: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "pipelines")])}
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lengths", type=int, nargs="*", default=[128, 256, 512, 1024])
    p.add_argument("--align-sizes", type=int, nargs="*", default=[1000, 2000, 4000])
    p.add_argument("--decode-length", type=int, default=10000, help="frames of the video read without the model "
                   "(0: skip)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_infer_memory_cpu.json"))
    p.add_argument("--_embed", nargs=2, help=argparse.SUPPRESS)
    p.add_argument("--_align", type=int, help=argparse.SUPPRESS)
    p.add_argument("--_decode", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._embed:
        print(json.dumps(measure_embed(*args._embed)))
        return
    if args._align:
        print(json.dumps(measure_align(args._align)))
        return
    if args._decode:
        print(json.dumps(measure_decode(args._decode)))
        return
    rows, aligns, decode = [], [], None
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(Path(tmp) / "run")
        for n in args.lengths:
            video = write_video(Path(tmp) / f"v{n}.mp4", n)
            r = child(["--_embed", str(run), str(video)])
            rows.append(r)
            video.unlink()
            trace = r["rss_after_chunk"]
            print(f"embed {r['frames']:>6} frames: peak RSS {r['peak_rss_mib']:8.1f} MiB (after load "
                  f"{r['rss_after_load_mib']:.1f}; after chunk 1 {trace[0][1]:.1f}, after the last {trace[-1][1]:.1f}), "
                  f"embeddings {r['embeddings_mib']:.2f} MiB, {r['fps']:.1f} frames/s", flush=True)
        if args.decode_length > 0:
            video = write_video(Path(tmp) / "long.mp4", args.decode_length)
            decode = child(["--_decode", str(video)])
            trace = decode["rss_every_1024"]
            print(f"decode {decode['frames']:>6} frames at {SIZE} px without the model: peak RSS "
                  f"{decode['peak_rss_mib']:.1f} MiB (before {decode['rss_before_mib']:.1f}; after 1024 frames "
                  f"{trace[0][1]:.1f}, after {trace[-1][0]} {trace[-1][1]:.1f}), {decode['fps']:.0f} frames/s",
                  flush=True)
    for n in [s for s in args.align_sizes if s > 0]:
        a = child(["--_align", str(n)])
        aligns.append(a)
        print(f"align {n:>6} x {n:<6}: peak over start {a['peak_over_start_mib']:8.1f} MiB, plan "
              f"{a['plan_mib']:.1f} MiB, {a['bytes_per_entry']:.1f} bytes per plan entry, {a['solve_s']:.1f} s",
              flush=True)
    summary = summarize(rows)
    if summary:
        print(f"RSS after the first chunk -> after the last: {summary['within_run_growth_mib']} MiB "
              f"(lengths {[r['frames'] for r in rows]}); peak RSS between runs: {summary['peak_rss_range_mib']} MiB")
    result = {"benchmark": "bench_infer_memory", "platform": platform.platform(), "python": platform.python_version(),
              "cpus": os.cpu_count(), "loadavg": os.getloadavg(), "embed": rows, "decode": decode, "align": aligns,
              "summary": summary}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
