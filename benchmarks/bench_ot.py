"""Benchmark the OT solvers: ms per solve and peak memory, CPU always and CUDA when present.

Usage::

    python benchmarks/bench_ot.py            # full run, writes benchmarks/results/bench_ot_<device>.json
    python benchmarks/bench_ot.py --quick    # fewer repeats (CPU smoke run)
    python benchmarks/bench_ot.py --device cuda --out my.json
    python benchmarks/bench_ot.py --device cuda --compile   # torch.compile'd solvers
    python benchmarks/bench_ot.py --device cuda --compile --compile-mode reduce-overhead --masked

Cases (issue 3): ``segment_asot`` with its defaults (25 iterations, actions unbalanced) at (B, N, K) =
(1, 1000, 19), (1, 16000, 19), (64, 256, 19), (32, 2000, 10); ``align_fgw`` on 64 pairs of 256 x 256
frames with VAOT's training settings (balanced, 1 inner pass, virtual frame 0.5, rho 0.35).
Targets on an H100: ASOT 1x16000x19 <= 1 ms, 64x256x19 <= 0.5 ms, align_fgw 64x256x256 <= 2 ms.

``--masked`` passes all-True masks, as the losses do: the band widths then stay on the device (gather path, no
host read) instead of being known on the host (contiguous slices).  ``--compile-mode reduce-overhead`` replays
each compiled solve as a CUDA graph (one launch instead of hundreds of small kernels).

CUDA timings use CUDA events after warm-up; peak memory is ``torch.cuda.max_memory_allocated``
above the inputs.  CPU timings use ``perf_counter``; CPU peak memory is the growth of the process's
peak RSS (``ru_maxrss``) during the case, so it is 0 when an earlier case already reached a higher peak.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vasot_dist.ot import align_fgw, segment_asot  # noqa: E402

ASOT_SHAPES = [(1, 1000, 19), (1, 16000, 19), (64, 256, 19), (32, 2000, 10)]
ALIGN_SHAPE = (64, 256, 256)


def _cases(device: torch.device, compile_mode: str | None,
           masked: bool) -> list[tuple[str, tuple[int, int, int], Callable[[], torch.Tensor]]]:
    asot, align = segment_asot, align_fgw
    if compile_mode is not None:
        # Compiling the unrolled 25 iterations takes a minute or more per shape; it happens in the warm-up call.
        kw = {} if compile_mode == "default" else {"mode": compile_mode}
        asot = torch.compile(segment_asot, dynamic=False, fullgraph=True, **kw)
        align = torch.compile(align_fgw, dynamic=False, fullgraph=True, **kw)
    g = torch.Generator().manual_seed(0)

    def ones(b: int, n: int) -> torch.Tensor | None:
        return torch.ones(b, n, dtype=torch.bool, device=device) if masked else None

    cases = []
    for shape in ASOT_SHAPES:
        cost = (1 - torch.rand(shape, generator=g)).to(device)
        mask = ones(*shape[:2])
        cases.append(("segment_asot", shape, lambda c=cost, m=mask: asot(c, m, temporal_prior=0.15)))
    b, n, m = ALIGN_SHAPE
    cost = (1 - torch.rand(ALIGN_SHAPE, generator=g)).to(device)
    mx, my = ones(b, n), ones(b, m)
    cases.append(("align_fgw", ALIGN_SHAPE, lambda c=cost, mx=mx, my=my:
                  align(c, mx, my, temporal_prior=0.35, virtual_cost=0.5)))
    return cases


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _time_cpu(fn: Callable[[], torch.Tensor], repeats: int, budget_s: float) -> tuple[list[float], float]:
    rss0 = _rss_mb()
    fn()  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - start < budget_s and len(times) < 50):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
        if time.perf_counter() - start > budget_s and len(times) >= 1:
            break
    return times, max(0.0, _rss_mb() - rss0)


def _time_cuda(fn: Callable[[], torch.Tensor], repeats: int) -> tuple[list[float], float]:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return times, (torch.cuda.max_memory_allocated() - base) / 2**20


def run(device_name: str, quick: bool, threads: int | None, compile_mode: str | None = None,
        masked: bool = False) -> dict:
    device = torch.device(device_name)
    if threads:
        torch.set_num_threads(threads)
    rows = []
    for name, shape, fn in _cases(device, compile_mode, masked):
        if device.type == "cuda":
            times, mem = _time_cuda(fn, repeats=5 if quick else 50)
        else:
            times, mem = _time_cpu(fn, repeats=1 if quick else 5, budget_s=1.0 if quick else 10.0)
        rows.append(
            {
                "solver": name,
                "shape": list(shape),
                "ms_median": statistics.median(times),
                "ms_min": min(times),
                "repeats": len(times),
                "peak_mem_mb": mem,
            }
        )
        b, n, m = shape
        print(f"{name:14s} B={b:<3d} N={n:<6d} M={m:<4d} {statistics.median(times):10.2f} ms  (min {min(times):.2f}, "
              f"n={len(times)})  peak {mem:8.1f} MiB", flush=True)  # fmt: skip
    return {
        "device": device_name,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "quick": quick,
        "compiled": compile_mode is not None,
        "compile_mode": compile_mode,
        "masked": masked,
        "results": rows,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all", help="all = CPU, plus CUDA if present")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--compile", action="store_true", help="time torch.compile'd solvers (slow to compile)")
    parser.add_argument("--compile-mode", choices=["default", "reduce-overhead", "max-autotune"], default="default",
                        help="torch.compile mode with --compile (reduce-overhead: CUDA graphs)")
    parser.add_argument("--masked", action="store_true", help="pass all-True masks (the losses' device-side path)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/bench_ot_<device>.json)")
    args = parser.parse_args(argv)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        if args.device == "cuda":
            parser.error("--device cuda but CUDA is not available")
        devices.remove("cuda")
    for dev in devices:
        print(f"== {dev} ==")
        report = run(dev, args.quick, args.threads, args.compile_mode if args.compile else None, args.masked)
        out = args.out
        if out is None:
            out = ROOT / "benchmarks" / "results" / f"bench_ot_{dev}.json"
        elif len(devices) > 1:
            out = out.with_name(f"{out.stem}_{dev}{out.suffix}")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
