"""Hand-written CPU kernels for the hottest dense solves, built at first use with inductor's C++ toolchain.

Inductor compiles a solver iteration into one kernel, but each operation of it is still a loop over the whole
batch with a barrier after it, and every iteration a call from Python (``docs/performance.md``).  On CPU a
training batch is many small problems, each of which fits in L1/L2: these kernels run one problem's whole solve
in cache, one OpenMP task per problem, and nothing else in between.  They cover the common dense float32 case
of a solver (``kernels/*.cpp`` say which); everything else, every accelerator and every input that needs
autograd take the compiled/eager path (``_compile.FusedIteration``), whose plans they equal to float rounding
(``tests/ot/test_ot_cpu_kernels.py``).

The policy is the fused iterations' (``VASOT_OT_COMPILE``): ``never`` never builds one, ``always`` builds it at
the first call, ``auto`` when a problem of at least ``_compile.CPU_MIN_ELEMENTS`` entries comes back a second
time.  A build takes a second or two per set of constants (shapes and settings are compiled in), is cached on
disk by inductor, and is logged at INFO on ``vasot_dist.ot``; if it fails (no C++ compiler) the solver keeps
its compiled/eager path for the rest of the process, with one warning.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import torch

from . import _compile

log = logging.getLogger("vasot_dist.ot")

_SOURCES = Path(__file__).with_name("kernels")


class CpuKernel:
    """One ``kernels/<name>.cpp`` source, built once per set of ``@NAME@`` constants (module docstring)."""

    def __init__(self, name: str, argtypes: list[str]):
        self.name = name
        self.argtypes = argtypes
        self._built: dict[Hashable, Callable[..., Any]] = {}
        self._seen: Counter[Hashable] = Counter()
        self._failed = False

    def select(self, constants: dict[str, int | float], like: torch.Tensor) -> Callable[..., Any] | None:
        """The built kernel for these constants, or None: use the solver's compiled/eager path instead.

        like: the cost (device, dtype, autograd); the constants include the problem's shape.
        """
        if self._failed or like.device.type != "cpu" or like.dtype != torch.float32:
            return None
        key = tuple(sorted(constants.items()))
        if not _compile.fast_path_allowed(self._seen, key, like, like.numel()):
            return None
        return self._built[key] if key in self._built else self._build(key, constants)

    def _build(self, key: Hashable, constants: dict[str, int | float]) -> Callable[..., Any] | None:
        source = (_SOURCES / f"{self.name}.cpp").read_text()
        for name, value in constants.items():
            source = source.replace(f"@{name}@", repr(float(value)) if isinstance(value, float) else str(value))
        start = time.perf_counter()
        try:
            from torch._inductor.codecache import CppPythonBindingsCodeCache

            kernel = CppPythonBindingsCodeCache.load_pybinding(self.argtypes, source)
        except Exception as exc:  # noqa: BLE001 - no compiler, a toolchain error: the Python path gives the same plan
            self._failed = True
            log.warning("vasot_dist.ot: building the %s CPU kernel failed (%s: %s); its solver keeps the compiled/"
                        "eager path", self.name, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            return None
        log.info("vasot_dist.ot: %s CPU kernel built in %.1f s for %s (once per process and constants; "
                 "VASOT_OT_COMPILE=never keeps the Python path)", self.name, time.perf_counter() - start, constants)
        self._built[key] = kernel
        return kernel


SEGMENT_ASOT = CpuKernel("segment_asot", ["const float*", "float*", "int64_t", "int64_t", "float"])
ALIGN_FGW = CpuKernel("align_fgw", ["const float*", "float*", "int64_t", "int64_t"])
