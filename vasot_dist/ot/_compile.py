"""The solvers' fast path: one iteration body compiled by inductor, the same body run eagerly otherwise.

A solver writes its iteration once, as a pure tensor function, and wraps it in :class:`FusedIteration`.
For each solve it asks :meth:`FusedIteration.select` for the callable to run ``n_iters`` times:

* the inductor-compiled body (elementwise chains and reductions fused into a few loops that each read the
  (B, N, M) state once) when the same shapes and settings come back a second time in this process -- a
  training loop, a benchmark -- on CUDA, or on CPU for problems of at least ``CPU_MIN_ELEMENTS`` entries
  (smaller ones are dispatch-bound, and a compile would not pay for itself);
* the eager body otherwise: first calls, one-off shapes (evaluation over videos of many lengths, tests),
  inputs that need autograd, and any call made while an outer ``torch.compile`` traces (the trainer's
  ``train.compile``): the outer graph then fuses the eager body itself.

Compiling costs seconds per shape and settings, once per process (inductor's on-disk cache makes later
processes faster); it is logged at INFO on ``vasot_dist.ot``.  If it fails (no C++ compiler, an inductor
error) the body falls back to eager for the rest of the process, with one warning.  Compiled and eager
bodies are the same code, so their plans agree to float rounding.

``VASOT_OT_COMPILE`` (environment, read at import) or :func:`set_compile` picks the policy: ``auto``
(above), ``always`` (compile from the first call whatever the size) or ``never``.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any

import torch

log = logging.getLogger("vasot_dist.ot")

CPU_MIN_ELEMENTS = 1 << 18  # B * N * M below which an eager CPU iteration is cheaper than any compile
MODES = ("auto", "always", "never")
RECOMPILE_LIMIT = 64

_mode = os.environ.get("VASOT_OT_COMPILE", "auto").strip().lower() or "auto"
if _mode not in MODES:
    raise ValueError(f"VASOT_OT_COMPILE must be one of {MODES}, got {_mode!r}")


def set_compile(mode: str) -> str:
    """Set the compile policy (``'auto'``, ``'always'`` or ``'never'``) for this process; returns the old one."""
    global _mode
    if mode not in MODES:
        raise ValueError(f"compile mode must be one of {MODES}, got {mode!r}")
    old, _mode = _mode, mode
    return old


def compile_mode() -> str:
    """The current compile policy."""
    return _mode


def fast_path_allowed(seen: Counter[Hashable], key: Hashable, like: torch.Tensor, numel: int) -> bool:
    """The policy (module docstring) for one call of a fast path: compiled iterations and ``_cpu_kernels`` alike.

    seen: the caller's count of calls per key (``auto`` counts this one); like: a tensor of the solve (device,
    autograd); numel: B * N * M of the problem.  The caller checks what its fast path supports (device, dtype).
    """
    if _mode == "never" or torch.compiler.is_compiling() or (like.requires_grad and torch.is_grad_enabled()):
        return False
    if _mode == "auto":
        seen[key] += 1
        return seen[key] >= 2 and (like.device.type != "cpu" or numel >= CPU_MIN_ELEMENTS)
    return True


class FusedIteration:
    """A solver iteration ``fn(*tensors, *settings)`` with an inductor-compiled twin (module docstring)."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn
        self.name = fn.__name__.lstrip("_")
        self._compiled: Callable[..., Any] | None = None
        self._failed = False
        self._seen: Counter[Hashable] = Counter()
        self._ready: set[Hashable] = set()

    def select(self, key: Hashable, like: torch.Tensor, numel: int) -> Callable[..., Any]:
        """The body to run for one solve.

        key: everything that changes the compiled code (shapes, dtypes, static settings); like: a tensor of
        the solve (device, autograd); numel: B * N * M of the problem.
        """
        key = (key, like.device.type, like.dtype)
        if self._failed or like.device.type not in ("cpu", "cuda"):
            return self.fn
        if not fast_path_allowed(self._seen, key, like, numel):
            return self.fn
        if key in self._ready:
            return self._run_compiled
        return functools.partial(self._first_call, key)

    def _compiled_fn(self) -> Callable[..., Any]:
        if self._compiled is None:
            self._compiled = torch.compile(self.fn, dynamic=False, fullgraph=True)
        return self._compiled

    def _first_call(self, key: Hashable, *args: Any) -> Any:
        if key in self._ready:
            return self._run_compiled(*args)
        log.info("vasot_dist.ot: compiling the %s iteration for %s (once per process and shape; "
                 "VASOT_OT_COMPILE=never keeps it eager)", self.name, key)
        start = time.perf_counter()
        # one graph per shape and settings: a process that meets many (tests, sweeps) may pass dynamo's
        # default of 8 per function, which with fullgraph=True is an error rather than a fallback
        with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
            out = self._run_compiled(*args)
        if not self._failed:
            self._ready.add(key)
            log.info("vasot_dist.ot: %s iteration compiled in %.1f s", self.name, time.perf_counter() - start)
        return out

    def _run_compiled(self, *args: Any) -> Any:
        if self._failed:
            return self.fn(*args)
        try:
            return self._compiled_fn()(*args)
        except Exception as exc:  # noqa: BLE001 - any compiler failure: the eager body gives the same plan
            self._failed = True
            log.warning("vasot_dist.ot: compiling the %s iteration failed (%s: %s); it runs eagerly from now on",
                        self.name, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            return self.fn(*args)
