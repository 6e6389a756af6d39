"""``--profile``: end-to-end steps under ``torch.profiler``, phases and OT calls labelled, a Chrome trace."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

import torch

from vasot_dist.config import RunConfig

from .setup import build_bench_engine
from .steps import PHASES, Stepper, loader_batches


def run_profile(cfg: RunConfig, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """``--profile-steps`` end-to-end steps under torch.profiler; Chrome trace to ``args.profile``."""
    from torch.profiler import ProfilerActivity, profile

    stepper = Stepper(build_bench_engine(cfg, args.compile_mode), device)
    clock, ot_timer = stepper.clock, stepper.ot_timer
    warm = max(args.warmup, 1)
    batches = loader_batches(cfg, device, warm + args.profile_steps)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with ot_timer.patch(enabled=not cfg.train.compile):
        ot_timer.active = True
        for i in range(warm):
            stepper(batches, i)
        with profile(activities=activities, record_shapes=False) as prof:
            for i in range(warm, warm + args.profile_steps):
                stepper(batches, i)
            clock.sync()
        ot_timer.active = False
    with contextlib.suppress(StopIteration):
        for _ in batches:
            pass
    path = Path(args.profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    prof.export_chrome_trace(str(path))
    averages = prof.key_averages()
    new_names = hasattr(averages[0], "device_time_total")  # torch >= 2.4 says "device", older "cuda"
    dev_attr = "device_time_total" if new_names else "cuda_time_total"
    labels = {}
    for e in averages:
        if e.key in PHASES or e.key.startswith("ot/"):
            labels[e.key] = {"calls": e.count, "cpu_ms_per_step": e.cpu_time_total / 1e3 / args.profile_steps,
                             "device_ms_per_step": getattr(e, dev_attr, 0.0) / 1e3 / args.profile_steps}
    sort_by = ("self_device_time_total" if new_names else "self_cuda_time_total") if device.type == "cuda" \
        else "self_cpu_time_total"
    print(f"\ntorch.profiler, {args.profile_steps} end-to-end steps, top operators by {sort_by} "
          f"(trace: {path})")
    print(averages.table(sort_by=sort_by, row_limit=15))
    return {"trace": str(path), "steps": args.profile_steps, "labels": labels}
