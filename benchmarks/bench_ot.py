"""Benchmark the OT solvers side by side with the code they replace and with POT, in one run.

Usage::

    python benchmarks/bench_ot.py --quick              # the issue's targets, 2 threads -> results/bench_ot_cpu.json
    python benchmarks/bench_ot.py                      # every case, more repeats
    python benchmarks/bench_ot.py --device cuda --out my.json
    python benchmarks/bench_ot.py --device cuda --masked --compile --compile-mode reduce-overhead
    python benchmarks/bench_ot.py --policy 12           # the compile policy: never / always / auto over 12 calls

Every case times, interleaved repeat by repeat so that they share the machine's load:

* ``new``: this checkout's solver, its iterations compiled (``VASOT_OT_COMPILE=always`` for the run, warmed up:
  the steady state of a training loop, where the payback rule has compiled them);
* ``main``: the same solver from a git revision (``--baseline``, default the commit before the fast path), loaded
  from ``git show`` into a throw-away package (skipped without git history);
* ``authors``: ASOT only, a port of the authors' ``segment_asot`` (mingu6/action_seg_ot ``src/asot.py``): dense
  ``conv1d`` filter of 2 floor(N r) + 1 taps, linear domain, ``4 / max(grad)`` read back at iteration 0, and the
  objective evaluated at every iteration, as their loop does;
* POT: ``align_fgw`` against ``ot.solve_gromov_batch`` (dense structure matrices, square loss on (Cx, -Cy/2):
  the product loss up to a constant; at most 25 outer x 50 inner iterations with POT's default tolerances; the
  outer and inner iterations it ran are printed) and
  ``ot.gromov.entropic_fused_gromov_wasserstein`` (25 outer iterations); ``partial_wasserstein``
  against ``ot.partial.entropic_partial_wasserstein`` (same sweep count) and the exact ``ot.partial.partial_wasserstein``;
  ASOT with alpha = 0 against ``ot.unbalanced.sinkhorn_unbalanced(reg_m=(inf, lambda))`` (same iteration count).
  POT's per-problem solvers run on ``--pot-problems`` problems and are scaled to the batch (they loop over it).

Reported per case: ms per solve (min and median wall clock over the repeats, and CPU seconds), ratios to
``new``, and per solver iteration: memory passes (bytes read and written / bytes of the (B, N, M) state) of
the eager iteration (profiler: every top-level ATen op's inputs plus what it allocates) and of the compiled one
(inductor's bytes-accessed estimate), and the kernels one compiled iteration launches (fused kernels + library
calls such as cumsum or GEMM; ``--no-kernels`` skips this, it compiles each iteration again without caches).
Targets (issue 17, this CPU, 2 threads): align_fgw 64x256^2 >= 5x solve_gromov_batch; segment_asot 64x256x19
>= 4x main and >= 10x authors; align_partial_fgw 64x256^2 >= 5x main; a compiled iteration <= 6 kernels.

``--masked`` passes all-True masks, as the losses do (device-side band widths).  ``--compile`` wraps each
solve in ``torch.compile`` (the trainer's ``train.compile``; the solvers then run their eager bodies inside the
outer graph) and ``--compile-mode reduce-overhead`` replays it as a CUDA graph.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import logging
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import vasot_dist.ot as vot  # noqa: E402
from vasot_dist.config.methods import AlignSolve, ASOTConfig, PartialAlignSolve, SegmentSolve  # noqa: E402
from vasot_dist.ot import _compile  # noqa: E402

BASELINE = "a1f9a7c"  # main before the fused iterations (issue 17)
# the project's default settings of each method's training solve (``vasot_dist/config/methods.py``)
ASOT = dataclasses.asdict(SegmentSolve())
VAOT = dataclasses.asdict(AlignSolve())
REALIGN = dataclasses.asdict(PartialAlignSolve())
PARTIAL = dict(mass=0.8, eps=0.07, n_iters=100, tol=None)
# align_fgw's target is read against POT at its default tolerances: it stops after a few outer iterations on these
# costs where VAOT always runs its 25 (POT's full 25 x 50 budget: docs/performance.md, measured apart, minutes)
TARGETS = {"segment_asot 64x256x19": {"main": 4.0, "authors": 10.0},
           "align_fgw 64x256x256": {"pot_solve_gromov_batch": 5.0},
           "align_partial_fgw 64x256x256": {"main": 5.0}}
MAX_KERNELS = 6


# ---------------------------------------------------------------------------------------------- references


def load_baseline(rev: str) -> Any | None:
    """``vasot_dist.ot`` at git revision ``rev`` as a stand-alone package (it imports only torch), or None."""
    try:
        files = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", rev, "vasot_dist/ot/"],
                               capture_output=True, text=True, check=True).stdout.split()
        pkg = Path(tempfile.mkdtemp(prefix="bench_ot_baseline_")) / "ot_baseline"
        pkg.mkdir()
        for f in files:
            src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{f}"], capture_output=True, text=True,
                                 check=True).stdout
            (pkg / Path(f).name).write_text(src)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"baseline {rev} not available ({exc}); 'main' columns skipped", flush=True)
        return None
    sys.path.insert(0, str(pkg.parent))
    return importlib.import_module("ot_baseline")


def authors_segment_asot(cost: torch.Tensor, *, eps: float, alpha: float, radius: float, lambda_actions: float,
                         n_iters: int) -> torch.Tensor:
    """The authors' ASOT loop (actions unbalanced, frames constrained: their default), no mask, as they run it."""
    bsz, n, k = cost.shape
    width = int(n * radius)
    taps = torch.ones(2 * width + 1, device=cost.device) / radius
    taps[width] = 0.0
    taps = taps.view(1, 1, -1)

    def cv(x: torch.Tensor) -> torch.Tensor:  # Cv x along frames: a zero-padded conv1d per (problem, action)
        return F.conv1d(x.transpose(1, 2).reshape(-1, 1, n), taps, padding="same").reshape(bsz, k, n).transpose(1, 2)

    def grad_fgw(t: torch.Tensor) -> torch.Tensor:
        return alpha * cv(t.sum(dim=2, keepdim=True) - t) + (1 - alpha) * cost

    dx = torch.full((bsz, n, 1), 1.0 / n, device=cost.device)
    dy = torch.full((bsz, 1, k), 1.0 / k, device=cost.device)
    t = dx * dy
    step = None
    for it in range(n_iters + 1):
        with torch.no_grad():  # their loop evaluates the objective at every iteration
            marg = t.sum(dim=1)
            obj = 0.5 * (grad_fgw(t) * t).sum(dim=(1, 2)) + lambda_actions * (marg * torch.log(marg / dy[:, 0] + 1e-10)).sum(1)
            obj = obj - eps * (-t * torch.log(t + 1e-10) + t).sum(dim=(1, 2))
        if it == n_iters:
            break
        grad = grad_fgw(t) + eps * torch.log(t + 1e-12)
        grad = grad + lambda_actions * (torch.log(t.sum(dim=1, keepdim=True) / dy + 1e-12) + 1.0)
        if step is None:
            step = 4.0 / grad.max().item()
        t = t * torch.exp(-step * grad)
        t = torch.nan_to_num(t / t.sum(dim=2, keepdim=True), posinf=0.0, neginf=0.0) * dx
    return t * n


def dense_band(n: int, width: int) -> torch.Tensor:
    idx = torch.arange(n)
    d = (idx[:, None] - idx[None, :]).abs()
    return ((d >= 1) & (d <= width)).float()


# ---------------------------------------------------------------------------------------------- measuring


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def time_variants(variants: dict[str, Callable[[], Any]], repeats: int, device: torch.device) -> dict[str, dict]:
    """Interleaved timing: every repeat runs each variant once, so load changes hit all of them alike."""
    for fn in variants.values():  # warm-up: twice, so a recurring shape is compiled before timing
        fn()
        fn()
    wall: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            wall[name].append((time.perf_counter() - w0) * 1e3)
            cpu[name].append((time.process_time() - c0) * 1e3)
    return {k: {"ms_min": min(wall[k]), "ms_median": statistics.median(wall[k]), "cpu_ms_min": min(cpu[k]),
                "repeats": repeats} for k in variants}


_VIEWS = {"aten::view", "aten::expand", "aten::unsqueeze", "aten::squeeze", "aten::narrow", "aten::slice",
          "aten::select", "aten::as_strided", "aten::transpose", "aten::permute", "aten::t", "aten::alias",
          "aten::detach", "aten::_unsafe_view", "aten::expand_as", "aten::lift_fresh", "aten::empty",
          "aten::empty_like", "aten::empty_strided", "aten::resolve_conj", "aten::resolve_neg"}
_ITEMSIZE = {"float": 4, "double": 8, "c10::Half": 2, "c10::BFloat16": 2, "bool": 1, "long int": 8, "int": 4,
             "c10::complex<float>": 8, "c10::complex<double>": 16}


def eager_bytes(fn: Callable[[], Any]) -> tuple[float, int]:
    """Bytes moved by one call of ``fn`` run eagerly (top-level ATen ops: inputs read + memory allocated), op count."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True, profile_memory=True) as prof:
        fn()
    total, ops = 0.0, 0
    for evt in prof.events():
        if not evt.name.startswith("aten::") or evt.name in _VIEWS:
            continue
        if evt.cpu_parent is not None and evt.cpu_parent.name.startswith("aten::"):
            continue  # counted with its caller
        ops += 1
        for shape, dtype in zip(evt.input_shapes or [], evt.input_dtypes or [], strict=False):
            if isinstance(shape, list) and shape and all(isinstance(s, int) for s in shape):
                total += math.prod(shape) * _ITEMSIZE.get(dtype, 4)
        total += max(evt.cpu_memory_usage, 0)
    return total, ops


def per_iteration(solve: Callable[[int], Any], state_bytes: float, iters: tuple[int, int]) -> dict:
    """Eager memory passes and ATen ops per iteration, from two solves that differ only in their iteration count."""
    old = _compile.set_compile("never")
    try:
        with torch.no_grad():
            (b0, o0), (b1, o1) = (eager_bytes(lambda k=k: solve(k)) for k in iters)
    finally:
        _compile.set_compile(old)
    d = iters[1] - iters[0]
    return {"eager_passes_per_iter": round((b1 - b0) / d / state_bytes, 2), "eager_ops_per_iter": round((o1 - o0) / d, 1)}


@contextlib.contextmanager
def captured_iterations() -> Iterator[dict[str, tuple[Callable, tuple]]]:
    """Record the first call of every fused iteration (its function and arguments) made inside the block."""
    seen: dict[str, tuple[Callable, tuple]] = {}
    original = _compile.FusedIteration.select

    def select(self: _compile.FusedIteration, key: Any, like: torch.Tensor, numel: int) -> Callable:
        def record(*args: Any) -> Any:
            seen.setdefault(self.name, (self.fn, args))
            return self.fn(*args)

        return record

    _compile.FusedIteration.select = select  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        _compile.FusedIteration.select = original  # type: ignore[method-assign]


def compiled_kernels(fn: Callable, args: tuple) -> dict:
    """Compile one iteration afresh and count what it launches and reads/writes (inductor's own accounting).

    Passes are bytes accessed over the bytes of the largest tensor argument: the (B, N, M) state of the call, which
    on CPU is one cache-sized chunk of the batch (``cpu_chunks``).
    """
    state_bytes = max(float(a.numel() * a.element_size()) for a in args if isinstance(a, torch.Tensor))
    import re

    from torch._inductor import config as inductor_config
    from torch._inductor import metrics
    from torch._inductor.utils import run_and_get_code

    metrics_log = logging.getLogger("torch._inductor.compile_fx.__inductor_metrics")
    level, propagate = metrics_log.level, metrics_log.propagate
    metrics_log.setLevel(logging.INFO)  # inductor counts the bytes its kernels access only when this logs
    metrics_log.propagate = False
    try:
        with inductor_config.patch(fx_graph_cache=False), torch.no_grad():
            metrics.reset()
            _, codes = run_and_get_code(torch.compile(fn, dynamic=False, fullgraph=True), *args)
            accessed = metrics.num_bytes_accessed
    finally:
        metrics_log.setLevel(level)
        metrics_log.propagate = propagate
    kernels, library = 0, []
    for code in codes:
        call = code[code.find("def call("):]
        kernels += len(re.findall(r"^\s+(?:cpp_fused_\w+|triton_\w+\.run)\(", call, re.M))
        library += re.findall(r"^\s+(?:\w+ = )?(?:torch\.ops\.aten\.|extern_kernels\.)(\w+)", call, re.M)
    names = sorted(library)
    return {"kernels": kernels + len(names), "fused_kernels": kernels, "library_calls": names,
            "compiled_passes": round(accessed / state_bytes, 2)}


# ---------------------------------------------------------------------------------------------- cases


def cases(device: torch.device, quick: bool, masked: bool, pot_problems: int,
          wrap: Callable[[Callable], Callable], base: Any | None) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    out: list[dict] = []

    def ones(b: int, n: int) -> torch.Tensor | None:
        return torch.ones(b, n, dtype=torch.bool, device=device) if masked else None

    def rand(*shape: int) -> torch.Tensor:
        return (1 - torch.rand(shape, generator=g)).to(device)

    asot_shapes = [(64, 256, 19)] if quick else [(64, 256, 19), (1, 1000, 19), (1, 16000, 19), (32, 2000, 10)]
    for shape in asot_shapes:
        cost, mask = rand(*shape), ones(*shape[:2])
        solver = wrap(vot.segment_asot)
        variants = {"new": lambda c=cost, m=mask, f=solver: f(c, m, **ASOT)}
        if base is not None:
            old_asot = wrap(base.segment_asot)
            variants["main"] = lambda c=cost, m=mask, f=old_asot: f(c, m, **ASOT)
        if mask is None:
            variants["authors"] = lambda c=cost: authors_segment_asot(
                c + ASOT["temporal_prior"] * prior(c), eps=ASOT["eps"], alpha=ASOT["alpha"], radius=ASOT["radius"],
                lambda_actions=ASOT["lambda_actions"], n_iters=ASOT["n_iters"])
        out.append({"name": f"segment_asot {'x'.join(map(str, shape))}", "shape": shape, "variants": variants,
                    "iterations": lambda k, c=cost, m=mask: vot.segment_asot(c, m, **{**ASOT, "n_iters": k})})

    # ASOT with alpha = 0 is semi-relaxed entropic OT: POT's unbalanced Sinkhorn, the same number of iterations
    shape = (64, 256, 19)
    cost = rand(*shape)
    kw = {**ASOT, "alpha": 0.0, "temporal_prior": 0.0}
    variants = {"new": lambda c=cost: vot.segment_asot(c, **kw)}
    pot_unbalanced = _pot_per_problem(cost, pot_problems, lambda a, b, m: _pot().unbalanced.sinkhorn_unbalanced(
        a, b, m, reg=kw["eps"], reg_m=(float("inf"), kw["lambda_actions"]), reg_type="entropy",
        numItermax=kw["n_iters"], stopThr=0.0))
    if pot_unbalanced is not None:
        variants["pot_sinkhorn_unbalanced"] = pot_unbalanced
    out.append({"name": "segment_asot alpha=0 64x256x19", "shape": shape, "variants": variants})

    shape = (64, 256, 256)
    cost = rand(*shape)
    mx, my = ones(64, 256), ones(64, 256)
    align = wrap(vot.align_fgw)
    variants = {"new": lambda c=cost: align(c, mx, my, **VAOT)}
    if base is not None:
        old_align = wrap(base.align_fgw)
        variants["main"] = lambda c=cost: old_align(c, mx, my, **VAOT)
    if _pot() is not None:
        variants.update(_pot_fgw(cost, pot_problems))
    out.append({"name": "align_fgw 64x256x256", "shape": (64, 257, 257), "variants": variants,
                "iterations": lambda k, c=cost: vot.align_fgw(c, mx, my, **{**VAOT, "n_iters": k})})

    partial_fgw = wrap(vot.align_partial_fgw)
    variants = {"new": lambda c=cost: partial_fgw(c, mx, my, **REALIGN)}
    if base is not None:
        old_partial = wrap(base.align_partial_fgw)
        variants["main"] = lambda c=cost: old_partial(c, mx, my, **REALIGN)
    out.append({"name": "align_partial_fgw 64x256x256", "shape": (64, 257, 257), "variants": variants,
                "iterations": lambda k, c=cost: vot.align_partial_fgw(c, mx, my, **{**REALIGN, "n_iters": k})})

    variants = {"new": lambda c=cost: vot.partial_wasserstein(c, mask_x=mx, mask_y=my, **PARTIAL)}
    if base is not None:
        variants["main"] = lambda c=cost: base.partial_wasserstein(c, mask_x=mx, mask_y=my, **PARTIAL)
    pot_partial = _pot_per_problem(cost, pot_problems, lambda a, b, m: _pot().partial.entropic_partial_wasserstein(
        a, b, m, reg=PARTIAL["eps"], m=PARTIAL["mass"], numItermax=PARTIAL["n_iters"]))
    if pot_partial is not None:
        variants["pot_entropic_partial_wasserstein"] = pot_partial
        variants["pot_partial_wasserstein_exact"] = _pot_per_problem(
            cost, pot_problems, lambda a, b, m: _pot().partial.partial_wasserstein(a, b, m, m=PARTIAL["mass"]))
    out.append({"name": "partial_wasserstein 64x256x256", "shape": shape, "variants": variants,
                "iterations": lambda k, c=cost: vot.partial_wasserstein(c, mask_x=mx, mask_y=my, **{**PARTIAL, "n_iters": k})})
    return out


def prior(cost: torch.Tensor) -> torch.Tensor:
    _, n, k = cost.shape
    return vot.temporal_prior(cost.shape[0], n, k, device=cost.device, dtype=cost.dtype)


def _pot() -> Any | None:
    try:
        import ot
    except ImportError:
        return None
    return ot


def _pot_per_problem(cost: torch.Tensor, problems: int, solve: Callable) -> Callable[[], Any] | None:
    """POT's one-problem solver on the first ``problems`` problems (numpy, float64 as POT computes)."""
    if _pot() is None:
        return None
    bsz, n, m = cost.shape
    costs = [c.double().cpu().numpy() for c in cost[:problems]]
    a, b = torch.full((n,), 1.0 / n, dtype=torch.float64).numpy(), torch.full((m,), 1.0 / m, dtype=torch.float64).numpy()

    def run() -> None:
        with _quiet():
            for c in costs:
                solve(a, b, c)

    run.scale = bsz / min(problems, bsz)  # type: ignore[attr-defined]
    return run


def _pot_fgw(cost: torch.Tensor, problems: int, full_budget: bool = False) -> dict[str, Callable[[], Any]]:
    """POT's fused GW solvers on VAOT's problem (virtual frame prepended, dense band priors).

    ``full_budget``: ``solve_gromov_batch`` runs its 25 outer x 50 inner iterations in full (tolerances 0).
    """
    ot = _pot()
    bsz, n, m = cost.shape
    cost_hat = cost + VAOT["temporal_prior"] * vot.temporal_prior(bsz, n, m, device=cost.device, dtype=cost.dtype)
    aug = F.pad(cost_hat, (1, 0, 1, 0), value=VAOT["virtual_cost"])
    n1, m1 = n + 1, m + 1
    r, alpha, eps = VAOT["radius"], VAOT["alpha"], VAOT["eps"]
    cx = dense_band(n1, int(n1 * r)) / r
    cy = -(1.0 - dense_band(m1, int(m1 * r))) / 2  # square loss on (Cx, -Cy/2) = product loss + const
    cx_b, cy_b = cx.expand(bsz, n1, n1).contiguous().to(cost.device), cy.expand(bsz, m1, m1).contiguous().to(cost.device)

    tolerances = {"tol": 0.0, "tol_inner": 0.0} if full_budget else {}

    def batch() -> None:
        with _quiet():
            ot.solve_gromov_batch(cx_b, cy_b, reg=2 * eps / (2 - alpha), M=aug, alpha=alpha / (2 - alpha),
                                  max_iter=25, max_iter_inner=50, grad="detach", **tolerances)

    batch.iterations = lambda: _count_pot_iterations(batch)  # type: ignore[attr-defined]


    per_problem = _pot_per_problem(aug, problems, lambda a, b, c: ot.gromov.entropic_fused_gromov_wasserstein(
        c, cx.double().numpy(), cy.double().numpy(), a, b, "square_loss", epsilon=2 * eps / (2 - alpha),
        alpha=alpha / (2 - alpha), max_iter=25))
    return {"pot_solve_gromov_batch": batch, "pot_entropic_fgw": per_problem}  # type: ignore[dict-item]


def _count_pot_iterations(solve: Callable[[], Any]) -> dict:
    """Outer and inner iterations ``solve_gromov_batch`` runs (it stops on its tolerances before max_iter)."""
    import ot.batch._quadratic as quadratic

    inner: list[int] = []
    original = quadratic.bregman_log_projection_batch

    def counting(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        inner.append(int(out["n_iters"]) + 1)
        return out

    quadratic.bregman_log_projection_batch = counting
    try:
        solve()
    finally:
        quadratic.bregman_log_projection_batch = original
    return {"outer_iterations": len(inner), "inner_iterations": inner}


# ---------------------------------------------------------------------------------------------- main


def run(device_name: str, quick: bool, threads: int, compile_mode: str | None, masked: bool, baseline: str,
        pot_problems: int, kernels: bool) -> dict:
    device = torch.device(device_name)
    torch.set_num_threads(threads)
    _compile.set_compile("always")  # ``new`` is the compiled steady state (``--policy`` measures when it is reached)
    if compile_mode is not None:
        kw = {} if compile_mode == "default" else {"mode": compile_mode}
        wrap: Callable[[Callable], Callable] = lambda f: torch.compile(f, dynamic=False, **kw)  # noqa: E731
    else:
        wrap = lambda f: f  # noqa: E731
    base = load_baseline(baseline)
    repeats = 3 if quick else 7
    load0 = os.getloadavg()[0]
    rows = []
    for case in cases(device, quick, masked, pot_problems, wrap, base):
        b, n, m = case["shape"]
        state = b * n * m * 4.0
        rss0 = _rss_mb()
        with torch.no_grad():
            timing = time_variants(case["variants"], repeats, device)
        for name, fn in case["variants"].items():
            if hasattr(fn, "iterations"):
                timing[name].update(fn.iterations())
            scale = getattr(fn, "scale", 1.0)
            if scale != 1.0:
                for key in ("ms_min", "ms_median", "cpu_ms_min"):
                    timing[name][key] *= scale
                timing[name]["scaled_from_problems"] = round(b / scale)
        new = timing["new"]["ms_min"]
        row: dict[str, Any] = {"case": case["name"], "timings": timing,
                               "ratio_vs_new": {k: round(v["ms_min"] / new, 2) for k, v in timing.items() if k != "new"},
                               "cpu_ratio_vs_new": {k: round(v["cpu_ms_min"] / timing["new"]["cpu_ms_min"], 2)
                                                    for k, v in timing.items() if k != "new"},
                               "peak_rss_growth_mb": max(0.0, _rss_mb() - rss0)}
        if "iterations" in case and device.type == "cpu" and compile_mode is None:
            row.update(per_iteration(case["iterations"], state, (2, 4)))
            if kernels:
                with captured_iterations() as seen, torch.no_grad():
                    case["iterations"](1)
                row["compiled_iterations"] = {name: compiled_kernels(fn, args) for name, (fn, args) in seen.items()}
        for variant, target in TARGETS.get(case["name"], {}).items():
            if variant in row["ratio_vs_new"]:
                row.setdefault("targets", {})[variant] = {"target": target, "ratio": row["ratio_vs_new"][variant],
                                                          "met": row["ratio_vs_new"][variant] >= target}
        rows.append(row)
        _print_row(row)
    return {
        "device": device_name,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "quick": quick,
        "baseline": baseline if base is not None else None,
        "compiled": compile_mode is not None,
        "compile_mode": compile_mode,
        "masked": masked,
        "load_average_1min": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "max_kernels_per_iteration": MAX_KERNELS,
        "results": rows,
    }


def _print_row(row: dict) -> None:
    print(f"== {row['case']}", flush=True)
    for name, t in row["timings"].items():
        ratio = "" if name == "new" else f"  new is {row['ratio_vs_new'][name]:.2f}x faster (cpu {row['cpu_ratio_vs_new'][name]:.2f}x)"
        scaled = f" (scaled from {t['scaled_from_problems']} problems)" if "scaled_from_problems" in t else ""
        if "outer_iterations" in t:
            scaled += f" ({t['outer_iterations']} outer / {sum(t['inner_iterations'])} inner iterations)"
        print(f"   {name:34s} {t['ms_min']:10.1f} ms min {t['ms_median']:10.1f} median{scaled}{ratio}", flush=True)
    if "eager_passes_per_iter" in row:
        print(f"   eager iteration: {row['eager_passes_per_iter']} passes over the state, {row['eager_ops_per_iter']} ATen ops",
              flush=True)
    for name, k in row.get("compiled_iterations", {}).items():
        print(f"   compiled {name}: {k['kernels']} kernels ({k['fused_kernels']} fused + {k['library_calls']}), "
              f"{k['compiled_passes']} passes", flush=True)
    for variant, t in row.get("targets", {}).items():
        print(f"   target vs {variant}: >= {t['target']}x -> {t['ratio']}x {'MET' if t['met'] else 'NOT MET'}", flush=True)


def pot_full_budget(problems: int, device: torch.device) -> dict:
    """``align_fgw`` against ``solve_gromov_batch`` run to its full 25 x 50 budget, on ``problems`` 256 x 256 pairs.

    The main table lets POT stop at its default tolerances (3 outer iterations on these costs); this is the other
    reading of issue 17's comparison, the budget run in full as VAOT runs its 25.  Minutes per repeat on 64
    problems, so a few problems (at least 4: below 2^18 entries a CPU solve stays eager) and one POT repeat.
    """
    if _pot() is None:
        return {}
    g = torch.Generator().manual_seed(0)
    cost = (1 - torch.rand(problems, 256, 256, generator=g)).to(device)
    ours = []
    for _ in range(3):
        vot.align_fgw(cost, **VAOT)
    for _ in range(5):
        start = time.perf_counter()
        vot.align_fgw(cost, **VAOT)
        ours.append(time.perf_counter() - start)
    out: dict[str, Any] = {"problems": problems, "align_fgw_ms_min": round(min(ours) * 1e3, 1)}
    for name, full in (("pot_default_tolerances", False), ("pot_25x50_in_full", True)):
        solve = _pot_fgw(cost, 1, full_budget=full)["pot_solve_gromov_batch"]
        if not full:
            solve()  # POT's first call in a process pays its set-up
        start = time.perf_counter()
        solve()
        ms = (time.perf_counter() - start) * 1e3
        its = solve.iterations()  # type: ignore[attr-defined]
        out[name] = {"ms": round(ms, 1), "ratio_vs_new": round(ms / out["align_fgw_ms_min"], 2),
                     "outer_iterations": its["outer_iterations"], "inner_iterations": sum(its["inner_iterations"])}
        print(f"   {name:34s} {ms:10.1f} ms ({its['outer_iterations']} outer / {sum(its['inner_iterations'])} inner)"
              f"  align_fgw {out['align_fgw_ms_min']:.1f} ms is {out[name]['ratio_vs_new']:.1f}x faster", flush=True)
    return out


# ``--policy``: what the compile policy costs over a run of calls of one shape, against never and always compiling.
POLICY_CASES: dict[str, tuple[tuple[int, int, int], Callable[[], dict]]] = {
    # a training batch of ASOT (the bench's target case), a shape that recurs every step
    "segment_asot 64x256x19": ((64, 256, 19), lambda: ASOT),
    # issue 25: one long video decoded again and again with ASOT's decode settings
    "segment_asot 1x16000x48": ((1, 16000, 48), lambda: dataclasses.asdict(ASOTConfig().decode)),
}


def policy_phase(case: str, mode: str, calls: int) -> dict:
    """``calls`` solves of ``case`` under compile ``mode`` in this (fresh) process: seconds per call and the account."""
    shape, settings = POLICY_CASES[case]
    _compile.set_compile(mode)
    cost = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    seconds = []
    with torch.no_grad():
        for _ in range(calls):
            start = time.perf_counter()
            vot.segment_asot(cost, **settings())
            seconds.append(time.perf_counter() - start)
    stats = _compile.compile_stats()
    return {"call_s": [round(x, 4) for x in seconds], "compiles": stats["compiles"],
            "compile_s": round(stats["compile_s"], 2), "expected_compile_s": round(stats["expected_compile_s"], 2)}


def policy(calls: int, threads: int, out: Path) -> dict:
    """Each case under ``never``, ``always`` and ``auto``, each in its own process with an empty inductor cache (a
    compile is paid in full), interleaved case by case.  Reports the total, the break-even call count (always's extra
    first-call time over the per-call saving of compiled calls) and auto's total against the better of the two."""
    report: dict[str, Any] = {"calls": calls, "threads": threads, "torch": torch.__version__,
                              "load_average_1min": [round(os.getloadavg()[0], 2)], "cases": {}}
    for case in POLICY_CASES:
        phases = {}
        for mode in ("never", "always", "auto"):
            with tempfile.TemporaryDirectory() as cache:
                env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
                run_ = subprocess.run([sys.executable, __file__, "--policy-phase", case, mode, str(calls),
                                       "--threads", str(threads)], env=env, capture_output=True, text=True, check=True)
            phases[mode] = json.loads(run_.stdout.strip().splitlines()[-1])
            print(f"   {case} {mode}: {sum(phases[mode]['call_s']):.1f} s over {calls} calls", flush=True)
        eager = statistics.median(phases["never"]["call_s"])
        compiled = statistics.median(phases["always"]["call_s"][1:]) if calls > 1 else float("nan")
        overhead = phases["always"]["call_s"][0] - compiled
        saving = eager - compiled
        totals = {m: round(sum(p["call_s"]), 2) for m, p in phases.items()}
        report["cases"][case] = {
            "phases": phases, "total_s": totals, "eager_call_s": round(eager, 4), "compiled_call_s": round(compiled, 4),
            "first_compiled_call_extra_s": round(overhead, 2),
            "break_even_calls": round(overhead / saving, 1) if saving > 0 else None,
            "auto_over_best": round(totals["auto"] / min(totals["never"], totals["always"]), 2),
        }
        print(f"== {case}: {json.dumps({k: v for k, v in report['cases'][case].items() if k != 'phases'})}", flush=True)
    report["load_average_1min"].append(round(os.getloadavg()[0], 2))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--quick", action="store_true", help="the target cases only, 3 repeats")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the targets are for 2)")
    parser.add_argument("--compile", action="store_true", help="wrap each solve in torch.compile (outer graph)")
    parser.add_argument("--compile-mode", choices=["default", "reduce-overhead", "max-autotune"], default="default")
    parser.add_argument("--masked", action="store_true", help="pass all-True masks (the losses' device-side path)")
    parser.add_argument("--baseline", default=BASELINE, help="git revision timed as 'main'")
    parser.add_argument("--pot-problems", type=int, default=4, help="problems POT's one-problem solvers run on")
    parser.add_argument("--no-kernels", action="store_true", help="skip the per-iteration kernel count (recompiles)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/bench_ot_<device>.json)")
    parser.add_argument("--pot-full-budget", type=int, default=0, metavar="PROBLEMS",
                        help="also time align_fgw against solve_gromov_batch run to its full 25 x 50 budget on this "
                             "many problems (minutes; 8 in docs/performance.md)")
    parser.add_argument("--policy", type=int, nargs="?", const=12, default=None, metavar="CALLS",
                        help="measure the compile policy instead: CALLS solves per case under never / always / auto "
                             "(default 12) -> benchmarks/results/bench_ot_policy_cpu.json (or --out)")
    parser.add_argument("--policy-phase", nargs=3, metavar=("CASE", "MODE", "CALLS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.policy_phase:
        torch.set_num_threads(args.threads)
        case, mode, calls = args.policy_phase
        print(json.dumps(policy_phase(case, mode, int(calls))))
        return
    if args.policy is not None:
        torch.set_num_threads(args.threads)
        policy(args.policy, args.threads, args.out or ROOT / "benchmarks" / "results" / "bench_ot_policy_cpu.json")
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but CUDA is not available")
    report = run(args.device, args.quick, args.threads, args.compile_mode if args.compile else None, args.masked,
                 args.baseline, args.pot_problems, not args.no_kernels)
    if args.pot_full_budget:
        print(f"== align_fgw {args.pot_full_budget}x256x256 against solve_gromov_batch's full budget", flush=True)
        report["pot_full_budget"] = pot_full_budget(args.pot_full_budget, torch.device(args.device))
    out = args.out or ROOT / "benchmarks" / "results" / f"bench_ot_{args.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str))
    tmp.replace(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
