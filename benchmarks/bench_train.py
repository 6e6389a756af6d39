"""Training throughput of the ResNet-50 alignment encoder with a method loss, per process.

Three measurements, each after ``--warmup`` steps, over ``--steps`` steps:

1. ``ceiling``: model + loss + optimizer on in-memory uint8 batches already on the device (two random
   batches, cycled): the compute ceiling, no data path at all.
2. ``e2e``: the same step fed by the real training loader (:func:`vasot_dist.data.make_train_loader`)
   reading pre-resized synthetic shards, with ``Batch.to(device, non_blocking=True)`` (the DataLoader
   pins memory when CUDA is available): end to end.
3. ``loader``: the loader alone, nothing consuming its batches: the frames/s the data path can supply.
   The data path is not the bottleneck when ``loader >= 1.5 x ceiling`` (issue 9). On a CPU run the
   loader's workers and the model share the same cores, so the ratio is only indicative there.

``frames`` are the sampled frames of a batch (B x T real frames, what the trainer logs as frames_per_s);
each carries S context frames, so the backbone sees ``images = frames x S``.

Time split of a step: ``data`` (waiting for the next batch + host-to-device copy), ``forward`` (the
encoder, ``TrainModel.embed`` under autocast), ``loss`` (``TrainModel.loss``: the OT solves and the
cross-entropies, float32), ``backward``, ``optimizer`` (clipping, ``step``, ``zero_grad``), and ``ot``
(the OT solver calls alone, part of ``loss``). The step is split exactly as ``TrainModel.forward`` does
(embed under autocast, loss with autocast off). On CUDA every boundary is a CUDA event (no host
synchronisation is added inside the measured steps; one at the end), so the split is GPU-timeline time:
``data`` is how long the GPU waited for the batch. On CPU the boundaries are ``time.perf_counter``.
Wall-clock frames/s is measured separately (one synchronisation at the end of the measured steps).
GPU utilisation is sampled every 0.2 s with ``torch.cuda.utilization()`` (needs pynvml; reported as
unavailable without it). ``--profile PATH`` runs ``--profile-steps`` extra end-to-end steps under
``torch.profiler`` with the phases and every OT call labelled, writes a Chrome trace to PATH and prints
the top operators. ``--sync-debug`` runs extra steps under
:class:`vasot_dist.train.host_syncs.HostSyncRecorder` (any device: the ops that would make the host wait for
a GPU) and, on CUDA, under ``torch.cuda.set_sync_debug_mode``, and lists each place with its count per step.
``--compile [--compile-mode reduce-overhead]`` compiles the encoder and the loss as ``train.compile`` does.

Shards: when ``data.name`` is ``synthetic`` the benchmark writes its own synthetic shards, pre-resized
the way ``vasot-shard`` stores videos (short side ``--shard-size``, default 256/224 x the image size) with
enough videos for the workers, under ``--shards-root`` (reused when present). Other datasets' shards are
read as configured.

Targets (issue 9, H100, bf16, 224 px): end to end >= 3,500 frames/s per GPU (its reference figure counts
backbone images, so both frames and images are checked), loader >= 1.5 x what the GPU consumes, OT < 3 %
of the step. Figures and commands: docs/performance.md.

    python benchmarks/bench_train.py --device cuda --bf16 --channels-last             # 224 px, 20 frames
    python benchmarks/bench_train.py --quick --threads 1                               # small CPU run
    python benchmarks/bench_train.py --config configs/demo.yaml --method asot optim.lr=1e-4
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import platform
import resource
import statistics
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

from vasot_dist.config import ALIGNMENT_METHODS, RunConfig, config_to_dict, load_config  # noqa: E402

TARGET_E2E_FPS = 3500.0  # frames/s per GPU, H100 bf16 224 px
TARGET_LOADER_RATIO = 1.5
TARGET_OT_SHARE = 0.03
PHASES = ("data", "forward", "loss", "backward", "optimizer")
DEFAULTS = {"warmup": 5, "steps": 20}
QUICK = {"image_size": 64, "frames": 4, "batch": 2, "warmup": 2, "steps": 6, "workers": 1}


# --------------------------------------------------------------------------------------------- config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. optim.lr=1e-4 (applied before the flags)")
    ap.add_argument("--config", default=None,
                    help="run config (default: alignment_base.yaml on the built-in synthetic data)")
    ap.add_argument("--method", default=None, help="method.name (default: the config's; vasot in alignment_base.yaml)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default=None,
                    help="default: cuda when available, else cpu")
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                    help="bf16 autocast of the encoder on CUDA (default: train.bf16); ignored on CPU")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                    help="channels_last backbone (default: model.channels_last)")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                    help="torch.compile the encoder and the loss as the trainer does (default: train.compile); "
                         "the per-solver OT split is then not measured (the solves are inside the loss graph)")
    ap.add_argument("--compile-mode", default=None, choices=("default", "reduce-overhead", "max-autotune"),
                    help="torch.compile mode with --compile (reduce-overhead: CUDA graphs; default: torch's)")
    ap.add_argument("--image-size", type=int, default=None, help="data.image_size")
    ap.add_argument("--frames", type=int, default=None, help="data.frames_per_video (T)")
    ap.add_argument("--batch", type=int, default=None, help="data.batch_size (videos per step; pairs count 2)")
    ap.add_argument("--workers", type=int, default=None, help="data.num_workers")
    ap.add_argument("--steps", type=int, default=None, help="measured steps per mode (default 20)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="steps before measuring: worker start-up, cuDNN autotune, compilation (default 5)")
    ap.add_argument("--loader-batches", type=int, default=100, help="measured batches of the loader-alone mode")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in the main process")
    ap.add_argument("--modes", default="ceiling,e2e,loader", help="comma-separated subset of ceiling,e2e,loader")
    ap.add_argument("--shard-size", type=int, default=None,
                    help="side of the synthetic videos written (default: image size x 256/224, even)")
    ap.add_argument("--shard-videos", type=int, default=None,
                    help="synthetic train videos (default: workers x (batch + 2), at least the config's)")
    ap.add_argument("--shards-root", default=str(REPO / "data" / "bench_train"))
    ap.add_argument("--loop-syncs", action="store_true",
                    help="after every step read the loss, metrics and mask.sum() as Python floats, as "
                         "vasot_dist/train/loop.py did before commit 0954961 (measures what those host syncs "
                         "cost on CUDA, i.e. what removing them bought)")
    ap.add_argument("--profile", default=None, metavar="PATH", help="write a torch.profiler Chrome trace here")
    ap.add_argument("--profile-steps", type=int, default=4)
    ap.add_argument("--sync-debug", action="store_true",
                    help="list the host-device synchronisations of a step: the ops that synchronise on a GPU "
                         "(vasot_dist.train.host_syncs, any device) and, on CUDA, torch.cuda.set_sync_debug_mode")
    ap.add_argument("--quick", action="store_true",
                    help=f"small CPU-friendly run: {QUICK} unless given explicitly")
    ap.add_argument("--out", default=None, help="JSON path (default: benchmarks/results/bench_train_<device>.json)")
    args = ap.parse_args(argv)
    for dest, value in {**DEFAULTS, **(QUICK if args.quick else {})}.items():
        if getattr(args, dest) is None:  # explicit flags win over --quick
            setattr(args, dest, value)
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: CUDA is not available on this machine")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = sorted(set(modes) - {"ceiling", "e2e", "loader"})
    if bad or not modes:
        raise ValueError(f"--modes: expected a comma-separated subset of ceiling,e2e,loader, got {args.modes!r}")
    args.modes = modes
    for name in ("steps", "warmup", "profile_steps", "loader_batches"):
        if getattr(args, name) < (1 if name != "warmup" else 0):
            raise ValueError(f"--{name.replace('_', '-')} must be >= {1 if name != 'warmup' else 0}, "
                             f"got {getattr(args, name)}")
    if args.out is None:
        args.out = str(REPO / "benchmarks" / "results" / f"bench_train_{args.device}.json")
    return args


def build_config(args: argparse.Namespace) -> RunConfig:
    """The config file, then the dotted overrides, then the explicit flags; pairs on for alignment methods."""
    flags = {
        "method.name": args.method, "train.device": args.device, "train.bf16": args.bf16,
        "model.channels_last": args.channels_last, "train.compile": args.compile,
        "data.image_size": args.image_size, "data.frames_per_video": args.frames,
        "data.batch_size": args.batch, "data.num_workers": args.workers,
    }  # fmt: skip
    # Throughput does not depend on the initial weights: no ImageNet download unless asked for.
    overrides = ["model.weights=none", *args.overrides] + [f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                                                           for k, v in flags.items() if v is not None]
    if args.config is None:  # data.name=synthetic: ensure_bench_shards writes the shards this run reads
        args.config = str(REPO / "configs" / "alignment_base.yaml")
        overrides.insert(0, "data.name=synthetic")
    cfg = load_config(args.config, overrides)
    if cfg.data.modality != "video" or cfg.model.encoder != "resnet50":
        raise ValueError(f"{args.config}: bench_train measures the ResNet-50 video encoder; got "
                         f"data.modality={cfg.data.modality!r}, model.encoder={cfg.model.encoder!r}")
    data = dataclasses.replace(cfg.data, pairs=cfg.data.pairs or cfg.method.name in ALIGNMENT_METHODS)
    return dataclasses.replace(cfg, data=data)


def ensure_bench_shards(cfg: RunConfig, args: argparse.Namespace) -> RunConfig:
    """Synthetic data: write pre-resized shards sized for this run (reused when present); else as configured."""
    if cfg.data.name != "synthetic":
        return cfg
    from vasot_pipelines.synthetic import generate_synthetic

    size = args.shard_size or 2 * math.ceil(cfg.data.image_size * 256 / 224 / 2)
    if size < cfg.data.image_size:
        raise ValueError(f"--shard-size {size} is smaller than data.image_size {cfg.data.image_size}")
    syn = cfg.data.synthetic
    # One video per shard, split over the workers; every worker's pass over its shards must fill at least one
    # batch (EpochPipeline raises otherwise), and pairing needs slack: B + 2 videos per worker.
    needed = max(cfg.data.num_workers, 1) * (cfg.data.batch_size + 2)
    per_activity = max(syn.videos_per_activity, math.ceil((args.shard_videos or needed) / syn.num_activities))
    frames_min = max(syn.frames_min, cfg.data.frames_per_video)
    syn = dataclasses.replace(syn, size=size, videos_per_activity=per_activity, frames_min=frames_min,
                              frames_max=max(syn.frames_max, frames_min))
    root = Path(args.shards_root) / f"synthetic_{size}px_{syn.num_activities * per_activity}v_seed{syn.seed}"
    if not (root / "dataset.json").exists():
        t0 = time.perf_counter()
        workers = min(os.cpu_count() or 1, 8)
        print(f"writing {syn.num_activities * per_activity} synthetic videos at {size} px to {root} "
              f"({workers} processes)", flush=True)
        generate_synthetic(root, syn, modality="video", splits=("train",), workers=workers)
        print(f"  done in {time.perf_counter() - t0:.1f} s", flush=True)
    data = dataclasses.replace(cfg.data, shards=str(root), synthetic=syn)
    return dataclasses.replace(cfg, data=data)


# --------------------------------------------------------------------------------------------- timing


class Clock:
    """Time marks: CUDA events on the current stream (no synchronisation) or ``perf_counter`` on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def mark(self) -> Any:
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def ms(self, a: Any, b: Any) -> float:
        """Milliseconds from mark ``a`` to mark ``b`` (CUDA: call after a synchronisation)."""
        return float(a.elapsed_time(b)) if self.cuda else (b - a) * 1e3

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()


class OTTimer:
    """Times every OT solver call made by the method losses.

    The losses import the solvers by name (``from vasot_dist.ot import align_fgw``); inside ``patch()``
    those names in each ``vasot_dist.losses`` module are replaced by wrappers that put a clock mark before
    and after the call (and a profiler label), then restored. Calls between solvers inside
    ``vasot_dist.ot`` are not wrapped, so nothing is counted twice.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.calls: list[tuple[str, Any, Any]] = []
        self.active = False

    def _wrap(self, name: str, fn: Callable) -> Callable:
        def timed(*a, **kw):
            if not self.active:
                return fn(*a, **kw)
            start = self.clock.mark()
            with torch.profiler.record_function(f"ot/{name}"):
                out = fn(*a, **kw)
            self.calls.append((name, start, self.clock.mark()))
            return out

        timed.__wrapped__ = fn  # type: ignore[attr-defined]
        return timed

    @contextlib.contextmanager
    def patch(self, enabled: bool = True) -> Iterator[OTTimer]:
        """``enabled=False`` (compiled loss: the solves are inside its graph, a mark there would split it) times
        nothing, and the OT columns of the report are empty."""
        import pkgutil

        import vasot_dist.losses as losses_pkg
        import vasot_dist.ot as ot_pkg

        solvers = {getattr(ot_pkg, n) for n in ot_pkg.__all__} if enabled else set()
        saved = []
        for info in pkgutil.iter_modules(losses_pkg.__path__):
            module = sys.modules.get(f"vasot_dist.losses.{info.name}")
            if module is None:
                continue
            for attr, value in list(vars(module).items()):
                if callable(value) and value in solvers:
                    saved.append((module, attr, value))
                    setattr(module, attr, self._wrap(attr, value))
        try:
            yield self
        finally:
            for module, attr, value in saved:
                setattr(module, attr, value)

    def take(self) -> list[tuple[str, Any, Any]]:
        calls, self.calls = self.calls, []
        return calls


class GpuUtilSampler:
    """Background ``torch.cuda.utilization()`` samples every ``period`` s (None when NVML is missing)."""

    def __init__(self, device: torch.device, period: float = 0.2) -> None:
        self.device, self.period = device, period
        self.samples: list[float] = []
        self.error: str | None = None if device.type == "cuda" else "not a CUDA run"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GpuUtilSampler:
        if self.error is None:
            try:
                torch.cuda.utilization(self.device)
            except Exception as err:  # pynvml missing, NVML not supported (MIG), ...
                self.error = f"{type(err).__name__}: {err}"
            else:
                self._thread = threading.Thread(target=self._run, daemon=True)
                self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.samples.append(float(torch.cuda.utilization(self.device)))
            except Exception as err:
                self.error = f"{type(err).__name__}: {err}"
                return

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.samples) if self.samples else None


# --------------------------------------------------------------------------------------------- model


def build_model(cfg: RunConfig, device: torch.device, compile_mode: str | None = None):
    """TrainModel (random prototypes: k-means init is not part of a step) + its optimizer."""
    from vasot_dist.train.engine import build_optimizer
    from vasot_dist.train.model import build_train_model

    torch.manual_seed(cfg.train.seed)
    model = build_train_model(cfg).to(device)
    protos = model.loss.prototypes
    if protos is not None:
        protos.init_random_(cfg.train.seed)
    if cfg.train.compile:
        from vasot_dist.train.model import compile_for_training

        compile_for_training(model, **({"mode": compile_mode} if compile_mode else {}))
    model.train()
    return model, build_optimizer(cfg, model)


class Stepper:
    """One training step, split at the phase boundaries exactly as ``TrainModel.forward`` + the DDP engine."""

    def __init__(self, cfg: RunConfig, model, optimizer, device: torch.device, clock: Clock,
                 ot_timer: OTTimer) -> None:
        self.cfg, self.model, self.optimizer, self.device = cfg, model, optimizer, device
        self.clock, self.ot_timer = clock, ot_timer
        self.bf16 = bool(cfg.train.bf16 and device.type == "cuda")
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
            out.loss.backward()
        m4 = self.clock.mark()
        with rf("optimizer"):
            if self.cfg.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
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


# --------------------------------------------------------------------------------------------- modes


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
    clock = Clock(device)
    ot_timer = OTTimer(clock)
    model, optimizer = build_model(cfg, device, args.compile_mode)
    stepper = Stepper(cfg, model, optimizer, device, clock, ot_timer)
    stepper.loop_syncs = args.loop_syncs
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


def run_profile(cfg: RunConfig, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """``--profile-steps`` end-to-end steps under torch.profiler; Chrome trace to ``args.profile``."""
    from torch.profiler import ProfilerActivity, profile

    clock = Clock(device)
    ot_timer = OTTimer(clock)
    model, optimizer = build_model(cfg, device, args.compile_mode)
    stepper = Stepper(cfg, model, optimizer, device, clock, ot_timer)
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


@contextlib.contextmanager
def sync_sites() -> Iterator[dict[str, dict[str, Any]]]:
    """Collect every warning raised inside, keyed by the innermost vasot_dist / bench_train frames that led
    to it (``torch.cuda.set_sync_debug_mode('warn')`` warns once per synchronising call)."""
    found: dict[str, dict[str, Any]] = {}

    def record(message, category, filename, lineno, file=None, line=None):
        stack = [f for f in traceback.extract_stack()[:-1]
                 if ("vasot_dist" in f.filename or "bench_train" in f.filename) and f.name != "record"]
        where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(stack[-4:]))
        key = where or f"{filename}:{lineno}"
        entry = found.setdefault(key, {"where": key, "count": 0, "message": str(message).splitlines()[0][:160]})
        entry["count"] += 1

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = record  # restored by catch_warnings
        yield found


def run_sync_debug(cfg: RunConfig, device: torch.device, compile_mode: str | None, steps: int = 2) -> dict[str, Any]:
    """Where a step makes the host wait for the GPU.

    ``ops``: the synchronising operations issued from Python (:class:`HostSyncRecorder`), on any device: what
    would wait on a GPU. ``cuda`` (CUDA only): what ``torch.cuda.set_sync_debug_mode('warn')`` reports,
    torch's own synchronisations included.
    """
    from vasot_dist.train.host_syncs import HostSyncRecorder

    clock = Clock(device)
    ot_timer = OTTimer(clock)
    model, optimizer = build_model(cfg, device, compile_mode)
    stepper = Stepper(cfg, model, optimizer, device, clock, ot_timer)
    batches = memory_batches(cfg, device)
    stepper(batches, 0)  # lazy initialisation (cuDNN, optimizer state) is not what we look for
    clock.sync()
    with HostSyncRecorder() as rec:
        for i in range(1, 1 + steps):
            stepper(batches, i)
    ops = [{"per_step": n / steps, "op": e.op, "where": e.site} for e, n in rec.counts().most_common()]
    result: dict[str, Any] = {"ops": ops}
    if device.type == "cuda":
        torch.cuda.synchronize()
        with sync_sites() as found:
            torch.cuda.set_sync_debug_mode("warn")
            try:
                for i in range(1 + steps, 1 + 2 * steps):
                    stepper(batches, i)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        for entry in found.values():
            entry["per_step"] = entry["count"] / steps
        result["cuda"] = sorted(found.values(), key=lambda e: -e["count"])
    return result


# --------------------------------------------------------------------------------------------- report


def _f(v: float | None, fmt: str = ".0f") -> str:
    return "-" if v is None else format(v, fmt)


def print_table(rows: list[dict[str, Any]]) -> None:
    head = (f"{'mode':<8} {'frames/s':>9} {'images/s':>9} {'fr/cpu-s':>9} {'step ms':>8} {'data':>7} {'fwd':>7} "
            f"{'loss':>7} {'(ot)':>7} {'bwd':>7} {'opt':>7} {'OT %':>6} {'GPU %':>6}")
    print("\n" + head + "\n" + "-" * len(head))
    for r in rows:
        ph = r.get("phase_ms", {})
        print(f"{r['mode']:<8} {_f(r['frames_per_s'], '.1f'):>9} {_f(r['images_per_s'], '.1f'):>9} "
              f"{_f(r.get('frames_per_cpu_s'), '.1f'):>9} "
              f"{_f(r.get('step_ms', r['wall_step_ms']), '.1f'):>8} "
              + " ".join(f"{_f(ph.get(p), '.1f'):>7}" for p in PHASES[:3])
              + f" {_f(r.get('ot_ms'), '.1f'):>7} "
              + " ".join(f"{_f(ph.get(p), '.1f'):>7}" for p in PHASES[3:])
              + f" {_f(100 * r['ot_share'] if r.get('ot_share') is not None else None, '.1f'):>6}"
              + f" {_f(r.get('gpu_util_mean')):>6}")


def machine_info(device: torch.device) -> dict[str, Any]:
    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info.update(gpu=p.name, gpu_memory_gib=p.total_memory / 2**30, cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version())
    else:
        info["cpu_model"] = next((ln.split(":", 1)[1].strip() for ln in _read("/proc/cpuinfo").splitlines()
                                  if ln.startswith("model name")), platform.processor())
    return info


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: autotune once during warm-up
    from vasot_dist.train.preflight import fill_from_data

    # model.num_actions as a run takes it: the label map's count unless the config sets it
    cfg = fill_from_data(ensure_bench_shards(build_config(args), args), training=False, report=False)
    d = cfg.data
    print(f"bench_train: {cfg.method.name} on {device}, {d.image_size} px, B={d.batch_size} T={d.frames_per_video} "
          f"S={d.context_frames}, workers={d.num_workers}, bf16={cfg.train.bf16 and device.type == 'cuda'}, "
          f"channels_last={cfg.model.channels_last}, compile={cfg.train.compile}, torch threads "
          f"{torch.get_num_threads()}, shards {d.shards}", flush=True)

    rows = []
    for mode in args.modes:
        t = time.perf_counter()
        row = run_loader(cfg, args) if mode == "loader" else run_training(mode, cfg, args, device)
        print(f"  {mode}: {row['frames_per_s']:.1f} frames/s ({time.perf_counter() - t:.1f} s)", flush=True)
        rows.append(row)
    by_mode = {r["mode"]: r for r in rows}
    print_table(rows)

    summary: dict[str, Any] = {}
    if "ceiling" in by_mode and "e2e" in by_mode:
        summary["e2e_over_ceiling"] = by_mode["e2e"]["frames_per_s"] / by_mode["ceiling"]["frames_per_s"]
    if "loader" in by_mode:
        consumer = by_mode.get("ceiling") or by_mode.get("e2e")
        if consumer is not None:
            summary["loader_over_consumption"] = by_mode["loader"]["frames_per_s"] / consumer["frames_per_s"]
            summary["data_is_bottleneck"] = summary["loader_over_consumption"] < TARGET_LOADER_RATIO
    main_row = by_mode.get("e2e") or by_mode.get("ceiling")
    if main_row is not None:
        summary["ot_share_of_step"] = main_row["ot_share"]
        summary["ot_share_mode"] = main_row["mode"]
    if device.type == "cuda":  # issue 9's unit is ambiguous (see docs/performance.md): both are checked
        if "e2e" in by_mode:
            summary["target_e2e_frames_met"] = by_mode["e2e"]["frames_per_s"] >= TARGET_E2E_FPS
            summary["target_e2e_images_met"] = by_mode["e2e"]["images_per_s"] >= TARGET_E2E_FPS
        if main_row is not None and main_row["ot_share"] is not None:
            summary["target_ot_share_met"] = main_row["ot_share"] < TARGET_OT_SHARE
        if "loader_over_consumption" in summary:
            summary["target_loader_met"] = not summary["data_is_bottleneck"]
    for k, v in summary.items():
        print(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}")
    if device.type == "cpu" and "loader" in by_mode:
        print("(CPU: the loader's workers and the model share the same cores; the loader ratio is indicative)")

    result: dict[str, Any] = {
        "benchmark": "bench_train",
        "command": " ".join([Path(sys.executable).name, *sys.argv]) if argv is None else argv,
        "device": str(device),
        "machine": machine_info(device),
        "settings": {
            "config": args.config, "overrides": args.overrides, "method": cfg.method.name,
            "image_size": d.image_size, "frames_per_video": d.frames_per_video, "context_frames": d.context_frames,
            "batch_size": d.batch_size, "pairs": d.pairs, "num_workers": d.num_workers, "augment": d.augment,
            "bf16": bool(cfg.train.bf16 and device.type == "cuda"), "channels_last": cfg.model.channels_last,
            "compile": cfg.train.compile, "loop_syncs": args.loop_syncs, "steps": args.steps,
            "warmup": args.warmup, "shards": d.shards,
            "shard_size": d.synthetic.size if d.name == "synthetic" else None,
            "method_settings": dataclasses.asdict(cfg.method.settings),
            "embed_dim": cfg.model.embed_dim, "head_dim": cfg.model.head_dim,
        },
        "targets": {"e2e_frames_per_s": TARGET_E2E_FPS, "loader_over_consumption": TARGET_LOADER_RATIO,
                    "ot_share_of_step": TARGET_OT_SHARE, "applies_to": "H100, bf16, 224 px"},
        "rows": rows,
        "summary": summary,
        "max_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "config": config_to_dict(cfg),
    }
    if args.profile:
        result["profile"] = run_profile(cfg, args, device)
    if args.sync_debug:
        result["host_syncs"] = syncs = run_sync_debug(cfg, device, args.compile_mode)
        print(f"\nhost synchronisations per step, by op (would wait on a GPU): {len(syncs['ops']) or 'none'}")
        for e in syncs["ops"]:
            print(f"  {e['per_step']:>5.1f}  {e['op']:<24} {e['where']}")
        if "cuda" in syncs:
            print("host-device synchronisations per step (torch.cuda.set_sync_debug_mode):")
            for e in syncs["cuda"]:
                print(f"  {e['per_step']:>5.1f}  {e['where']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str))
    print(f"\nwrote {out}")
    return result


if __name__ == "__main__":
    main()
