"""The ``ceiling`` and ``e2e`` modes: the trainer's step, split at its phase boundaries and timed."""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Iterator
from typing import Any

import torch

from vasot_dist.config import RunConfig
from vasot_dist.train.engine import Engine

from .setup import build_bench_engine
from .timing import Clock, GpuUtilSampler, OTTimer

PHASES = ("data", "forward", "loss", "backward", "optimizer")


class Stepper:
    """One step of the trainer's engine, split at the phase boundaries: ``engine(inputs, mask, step)`` is
    ``TrainModel.forward`` (the encoder under autocast, then the loss in float32), then ``engine.backward`` and
    ``engine.step`` (clipping, the non-finite guard, the optimizer and its schedule) and the prototypes put back
    on the sphere, as ``vasot_dist.train.loop`` runs them."""

    def __init__(self, engine: Engine, device: torch.device) -> None:
        self.engine, self.model, self.device = engine, engine.module, device
        self.clock = Clock(device)
        self.ot_timer = OTTimer(self.clock)
        self.bf16 = bool(engine.cfg.train.bf16 and device.type == "cuda")
        self.loop_syncs = False

    def __call__(self, batches: Iterator, step: int) -> dict[str, Any]:
        """Returns the marks of this step (resolved later) and host-side figures."""
        rf = torch.profiler.record_function
        m0 = self.clock.mark()
        h0 = time.perf_counter()
        with rf("data"):
            frames, mask, n_frames = next(batches)
        host_wait = time.perf_counter() - h0
        m1 = self.clock.mark()
        with rf("forward"), torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            emb = self.model.embed(frames, mask)  # mask None: no padding, the encoder's dense path
        m2 = self.clock.mark()
        with rf("loss"), torch.autocast(device_type=self.device.type, enabled=False):
            loss_mask = mask if mask is not None else torch.ones(emb.shape[:2], dtype=torch.bool, device=emb.device)
            out = self.model.loss(emb.float(), loss_mask, step=step)
        m3 = self.clock.mark()
        with rf("backward"):
            self.engine.backward(out.loss)
        m4 = self.clock.mark()
        with rf("optimizer"):
            self.engine.step()
            if self.model.loss.prototypes is not None:
                self.model.loss.prototypes.renormalize_()
        m5 = self.clock.mark()
        if self.loop_syncs:  # what loop.py did after every micro-batch before 0954961 (host syncs on CUDA)
            float(loss_mask.sum())
            for v in (out.loss.detach(), *out.metrics.values()):
                float(v)
        return {"marks": (m0, m1, m2, m3, m4, m5), "ot": self.ot_timer.take(), "host_wait": host_wait,
                "frames": n_frames, "loss": out.loss.detach()}


def memory_batches(cfg: RunConfig, device: torch.device, count: int = 2) -> Iterator:
    """Endless in-memory batches already on the device: (frames uint8 (B, T, S, H, W, 3), None, frames);
    the mask is None because nothing is padded (what the trainer passes for an unpadded batch)."""
    d = cfg.data
    gen = torch.Generator(device=device).manual_seed(0)
    shape = (d.batch_size, d.frames_per_video, d.context_frames, d.image_size, d.image_size, 3)
    pool = [torch.randint(0, 256, shape, dtype=torch.uint8, device=device, generator=gen) for _ in range(count)]
    i = 0
    while True:
        yield pool[i % count], None, shape[0] * shape[1]
        i += 1


def loader_batches(cfg: RunConfig, device: torch.device, total: int, seed: int = 0) -> Iterator:
    """The real training loader moved to the device: frames counted on the host mask (no device sync)."""
    from vasot_dist.data import make_train_loader

    loader = make_train_loader(cfg.data, rank=0, world_size=1, epoch=0, seed=seed, batches_per_epoch=total)
    for batch in loader:
        n = int(batch.mask.sum())
        batch = batch.to(device, non_blocking=True)
        yield batch.frames, batch.mask if batch.padded else None, n


def _summarise(steps: list[dict], clock: Clock, wall: float, mode: str, context: int,
               ot_timed: bool = True) -> dict[str, Any]:
    phases = {p: [] for p in PHASES}
    ot, ot_by_solver, host_wait = [], {}, []
    for s in steps:
        m = s["marks"]
        for i, p in enumerate(PHASES):
            phases[p].append(clock.ms(m[i], m[i + 1]))
        total = 0.0
        for name, a, b in s["ot"]:
            t = clock.ms(a, b)
            total += t
            ot_by_solver[name] = ot_by_solver.get(name, 0.0) + t / len(steps)
        ot.append(total)
        host_wait.append(s["host_wait"] * 1e3)
    step_ms = [sum(phases[p][i] for p in PHASES) for i in range(len(steps))]
    frames = sum(s["frames"] for s in steps)
    mean_step = statistics.fmean(step_ms)
    mean_ot = statistics.fmean(ot)
    return {
        "mode": mode,
        "steps": len(steps),
        "frames_per_step": frames / len(steps),
        "frames_per_s": frames / wall,
        "images_per_s": frames * context / wall,
        "wall_s": wall,
        "wall_step_ms": wall / len(steps) * 1e3,
        "step_ms": mean_step,
        "step_ms_median": statistics.median(step_ms),
        "phase_ms": {p: statistics.fmean(v) for p, v in phases.items()},
        "phase_share": {p: statistics.fmean(v) / mean_step for p, v in phases.items()},
        "ot_ms": mean_ot if ot_timed else None,
        "ot_share": mean_ot / mean_step if ot_timed else None,
        "ot_ms_by_solver": ot_by_solver,
        "ot_calls_per_step": len(steps[0]["ot"]) if steps else 0,
        "host_data_wait_ms": statistics.fmean(host_wait),
        "final_loss": float(steps[-1]["loss"]),
    }


def run_training(mode: str, cfg: RunConfig, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """The ``ceiling`` or ``e2e`` mode: ``--warmup`` steps, then ``--steps`` measured ones."""
    stepper = Stepper(build_bench_engine(cfg, args.compile_mode), device)
    stepper.loop_syncs = args.loop_syncs
    clock, ot_timer = stepper.clock, stepper.ot_timer
    total = args.warmup + args.steps
    batches = memory_batches(cfg, device) if mode == "ceiling" else loader_batches(cfg, device, total)
    t_build = time.perf_counter()
    with ot_timer.patch(enabled=not cfg.train.compile):
        ot_timer.active = True
        for i in range(args.warmup):
            stepper(batches, i)
            ot_timer.take()
        clock.sync()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        warm_s = time.perf_counter() - t_build
        steps = []
        with GpuUtilSampler(device) as util:
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(args.warmup, total):
                steps.append(stepper(batches, i))
            clock.sync()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        ot_timer.active = False
    row = _summarise(steps, clock, wall, mode, cfg.data.context_frames, ot_timed=not cfg.train.compile)
    # Frames per CPU second of this process (all its threads): on a shared CPU, the rate one core gives
    # (with --threads 1), robust to other load; on CUDA mostly the host's launch cost.
    row["cpu_s"] = cpu
    row["frames_per_cpu_s"] = row["frames_per_step"] * len(steps) / cpu if cpu > 0 else None
    row["warmup_s"] = warm_s
    row["gpu_util_mean"] = util.mean
    row["gpu_util_samples"] = len(util.samples)
    row["gpu_util_error"] = util.error
    if device.type == "cuda":
        row["max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    if mode == "e2e":
        with contextlib.suppress(StopIteration):  # let the loader's workers finish cleanly
            for _ in batches:
                pass
    return row
