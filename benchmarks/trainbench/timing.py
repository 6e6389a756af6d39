"""Time marks, the OT solver timer and GPU utilisation samples of the benchmark's steps."""

from __future__ import annotations

import contextlib
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch


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
