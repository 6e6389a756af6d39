"""The ``loader`` mode: the trainer's loader alone, nothing consuming its batches."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

from vasot_dist.config import RunConfig


def run_loader(cfg: RunConfig, args: argparse.Namespace) -> dict[str, Any]:
    """The loader alone (no device copy): frames/s after the warm-up batches."""
    from vasot_dist.data import make_train_loader

    warm = max(args.warmup, 1)  # at least the first batch: worker start-up is not throughput
    n = args.loader_batches
    loader = make_train_loader(cfg.data, rank=0, world_size=1, epoch=0, seed=1, batches_per_epoch=warm + n)
    it = iter(loader)
    t_build = time.perf_counter()
    for _ in range(warm):
        next(it)
    warm_s = time.perf_counter() - t_build
    pids = [w.pid for w in getattr(it, "_workers", [])]  # DataLoader worker processes (none in-process)
    frames, waits = 0, []
    cpu0 = time.process_time() + sum(_proc_cpu_s(p) or 0.0 for p in pids)
    t0 = time.perf_counter()
    for _ in range(n):
        h = time.perf_counter()
        batch = next(it)
        waits.append((time.perf_counter() - h) * 1e3)
        frames += int(batch.mask.sum())
    wall = time.perf_counter() - t0
    worker_cpu = [_proc_cpu_s(p) for p in pids]
    # CPU seconds of the workers and the main process over the measured batches: frames per CPU second is
    # what one core of data path supplies, whatever else runs on the machine (Linux /proc; None elsewhere).
    cpu = None if None in worker_cpu else time.process_time() + sum(worker_cpu) - cpu0
    for _ in it:  # let the workers finish their epoch and exit
        pass
    return {"mode": "loader", "steps": n, "frames_per_step": frames / n,
            "frames_per_s": frames / wall, "images_per_s": frames * cfg.data.context_frames / wall, "wall_s": wall,
            "wall_step_ms": wall / n * 1e3, "host_data_wait_ms": statistics.fmean(waits),
            "warmup_s": warm_s, "workers": cfg.data.num_workers, "cpu_s": cpu,
            "frames_per_cpu_s": frames / cpu if cpu else None}


def _proc_cpu_s(pid: int) -> float | None:
    """utime + stime of a live process from /proc/<pid>/stat, in seconds (None when unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # fields 14, 15 of stat(5)
