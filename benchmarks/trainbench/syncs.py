"""``--sync-debug``: where a training step makes the host wait for the GPU."""

from __future__ import annotations

import contextlib
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from vasot_dist.config import RunConfig

from .setup import build_bench_engine
from .steps import Stepper, memory_batches


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

    stepper = Stepper(build_bench_engine(cfg, compile_mode), device)
    clock = stepper.clock
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


def print_syncs(syncs: dict[str, Any]) -> None:
    """The places of :func:`run_sync_debug`, with their count per step."""
    print(f"\nhost synchronisations per step, by op (would wait on a GPU): {len(syncs['ops']) or 'none'}")
    for e in syncs["ops"]:
        print(f"  {e['per_step']:>5.1f}  {e['op']:<24} {e['where']}")
    if "cuda" in syncs:
        print("host-device synchronisations per step (torch.cuda.set_sync_debug_mode):")
        for e in syncs["cuda"]:
            print(f"  {e['per_step']:>5.1f}  {e['where']}")
