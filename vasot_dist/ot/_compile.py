"""The solvers' fast path: one iteration body compiled by inductor once it pays for itself, eager otherwise.

A solver writes its iteration once, as a pure tensor function, and wraps it in :class:`FusedIteration`.
For each solve it asks :meth:`FusedIteration.select` for the callable to run ``n_iters`` times.  A *key* is
everything that changes the compiled code (the iteration, shapes, dtype, device, static settings).

The ``auto`` policy is a payback (ski-rental) rule: a key runs eagerly, its eager time counted, until that time
reaches the expected cost of a compile; then it is compiled, once per process.  A key that never comes back
never compiles, and a recurring one costs at most about twice what the better of the two choices would have
(the eager time spent waiting plus one compile).  The expected compile cost starts at :data:`COMPILE_COST_S`
(a measured compile of one iteration on the 2-core CPU machine with an empty inductor cache:
``docs/performance.md``) and becomes the mean of the compiles this process has measured.  Besides:

* evaluation paths never compile: inside :func:`eager` every key runs eagerly (a long video decoded twice never
  stalls on a compile; ``vasot_dist.eval`` and ``vasot_dist.infer`` wrap their solves in it);
* CPU problems below ``CPU_MIN_ELEMENTS`` entries (B * N * M) stay eager: they are dispatch-bound, and a
  compiled iteration saves little there;
* inputs that need autograd and calls made while an outer ``torch.compile`` traces (the trainer's
  ``train.compile``: the outer graph then fuses the eager body itself) run the eager body.

Eager time is host wall-clock time (on CUDA the launches: the device is never read back for it).  Every compile
is logged at INFO on ``vasot_dist.ot`` with what was spent before it and what it took; :func:`compile_stats`
returns the counts and seconds per key.  If a compile or a compiled call fails (no C++ compiler, an inductor
error, a changed calling convention) every iteration runs eagerly for the rest of the process, with one warning.
Compiled and eager bodies are the same code, so their plans agree to float rounding.

``VASOT_OT_COMPILE`` (environment, read at import) or :func:`set_compile` picks the policy: ``auto`` (above),
``always`` (compile from the first call whatever the size, outside :func:`eager`) or ``never``.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
import time
import weakref
from collections.abc import Callable, Hashable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch

log = logging.getLogger("vasot_dist.ot")

CPU_MIN_ELEMENTS = 1 << 18  # B * N * M below which a CPU iteration stays eager (dispatch-bound)
COMPILE_COST_S = 6.0  # first estimate of one iteration's compile, seconds (docs/performance.md: 5.6-5.7 s measured)
MODES = ("auto", "always", "never")
RECOMPILE_LIMIT = 64  # graphs per iteration (one per key): dynamo's default 8 is an error with fullgraph=True
_LIMIT_NAME = "recompile_limit"  # dynamo's name since torch 2.7 (pyproject's floor)

_mode = os.environ.get("VASOT_OT_COMPILE", "auto").strip().lower() or "auto"
if _mode not in MODES:
    raise ValueError(f"VASOT_OT_COMPILE must be one of {MODES}, got {_mode!r}")
_eager_only = contextvars.ContextVar("vasot_dist_ot_eager_only", default=False)
_compile_seconds: list[float] = []  # every compile this process measured
_ITERATIONS: weakref.WeakSet[FusedIteration] = weakref.WeakSet()
_broken = False  # a compile or compiled call failed: this process runs every iteration eagerly
_clock = time.perf_counter  # a name of its own: the tests drive the policy with a fake clock


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


@contextlib.contextmanager
def eager() -> Iterator[None]:
    """Within this block no solver iteration compiles (evaluation, inference: shapes that rarely recur); keys
    compiled before still run compiled.  Nests; per thread and task (a context variable)."""
    token = _eager_only.set(True)
    try:
        yield
    finally:
        _eager_only.reset(token)


def expected_compile_seconds() -> float:
    """The payback threshold: the mean compile time measured in this process, :data:`COMPILE_COST_S` before any."""
    return sum(_compile_seconds) / len(_compile_seconds) if _compile_seconds else COMPILE_COST_S


@dataclass
class KeyStats:
    """What one key of one iteration has cost this process."""

    eager_calls: int = 0
    eager_s: float = 0.0
    compiled: bool = False
    compile_s: float = 0.0


def compile_stats() -> dict[str, Any]:
    """The compile policy's account: ``{'mode', 'expected_compile_s', 'compiles', 'compile_s', 'eager_s',
    'keys': [{'iteration', 'key', 'eager_calls', 'eager_s', 'compiled', 'compile_s'}, ...]}`` (seconds)."""
    keys = [{"iteration": it.name, "key": repr(key), **asdict(st)}
            for it in list(_ITERATIONS) for key, st in it.stats.items()]
    return {"mode": _mode, "expected_compile_s": expected_compile_seconds(),
            "compiles": sum(k["compiled"] for k in keys), "compile_s": sum(k["compile_s"] for k in keys),
            "eager_s": sum(k["eager_s"] for k in keys), "keys": keys}


class FusedIteration:
    """A solver iteration ``fn(*tensors, *settings)`` with an inductor-compiled twin (module docstring)."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn
        self.name = fn.__name__.lstrip("_")
        self.stats: dict[Hashable, KeyStats] = {}
        self._compiled: Callable[..., Any] | None = None
        _ITERATIONS.add(self)

    def select(self, key: Hashable, like: torch.Tensor, numel: int) -> Callable[..., Any]:
        """The body to run for one solve.

        key: everything that changes the compiled code (shapes, static settings); like: a tensor of the solve
        (device, dtype, autograd); numel: B * N * M of the problem.
        """
        # Inside an outer torch.compile (train.compile) the body is traced into that graph: no clock, no account.
        if _mode == "never" or _broken or like.device.type not in ("cpu", "cuda") or torch.compiler.is_compiling():
            return self.fn
        key = (key, like.device.type, like.dtype)
        stats = self.stats.setdefault(key, KeyStats())
        if self._compiles(stats, like, numel):
            return self._run_compiled if stats.compiled else functools.partial(self._first_call, stats)
        return functools.partial(self._run_eager, stats)

    def _compiles(self, stats: KeyStats, like: torch.Tensor, numel: int) -> bool:
        if _eager_only.get() or (like.requires_grad and torch.is_grad_enabled()):
            return False
        if stats.compiled or _mode == "always":
            return True
        if like.device.type == "cpu" and numel < CPU_MIN_ELEMENTS:
            return False
        return stats.eager_s >= expected_compile_seconds()

    def _run_eager(self, stats: KeyStats, *args: Any) -> Any:
        start = _clock()
        out = self.fn(*args)
        stats.eager_s += _clock() - start
        stats.eager_calls += 1
        return out

    def _first_call(self, stats: KeyStats, *args: Any) -> Any:
        if stats.compiled or _broken:
            return self._run_compiled(*args)
        log.info("vasot_dist.ot: compiling the %s iteration (%.1f s spent eagerly on this shape in %d calls; a "
                 "compile expected to take %.1f s; VASOT_OT_COMPILE=never keeps it eager)", self.name, stats.eager_s,
                 stats.eager_calls, expected_compile_seconds())
        start = _clock()
        try:
            # one graph per key: a process that meets many (tests, sweeps) may pass dynamo's default limit
            with torch._dynamo.config.patch(**{_LIMIT_NAME: RECOMPILE_LIMIT}):
                if self._compiled is None:
                    self._compiled = torch.compile(self.fn, dynamic=False, fullgraph=True)
                out = self._compiled(*args)
        except Exception as exc:  # noqa: BLE001 - any compiler failure: the eager body gives the same plan
            return self._fall_back(exc, args)
        stats.compile_s = _clock() - start
        stats.compiled = True
        _compile_seconds.append(stats.compile_s)
        log.info("vasot_dist.ot: %s iteration compiled in %.1f s (this process: %d compiles, %.1f s)", self.name,
                 stats.compile_s, len(_compile_seconds), sum(_compile_seconds))
        return out

    def _run_compiled(self, *args: Any) -> Any:
        if _broken or self._compiled is None:
            return self.fn(*args)
        try:
            return self._compiled(*args)
        except Exception as exc:  # noqa: BLE001 - as in _first_call
            return self._fall_back(exc, args)

    def _fall_back(self, exc: Exception, args: tuple[Any, ...]) -> Any:
        global _broken
        if not _broken:
            log.warning("vasot_dist.ot: compiling the %s iteration failed (%s: %s); every solver iteration runs "
                        "eagerly from now on", self.name, type(exc).__name__,
                        str(exc).splitlines()[0] if str(exc) else "")
        _broken = True
        return self.fn(*args)
