"""Find the calls that would make the host wait for the GPU, on any device (CPU included).

``torch.cuda.set_sync_debug_mode`` reports synchronisations only on CUDA. :class:`HostSyncRecorder`
reports the *operations* that synchronise when their tensor lives on an accelerator: reading a value
(``item``, ``bool``/``float``/``int`` of a tensor, ``tolist``, ``numpy``, ``cpu``), and ops whose output
shape depends on the data (``nonzero``, ``unique``, ``masked_select``, boolean-mask indexing). So a CPU
test can assert that a training step queues the GPU's work without waiting on it, and a benchmark can
list where a step waits, with the line of code that asked.

    with HostSyncRecorder() as rec:
        train_step()
    assert not rec.events, rec.report()
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import torch
from torch.overrides import TorchFunctionMode

# Reading a value back to Python, or copying to host memory.
_VALUE_READS = frozenset({"item", "__bool__", "__float__", "__int__", "__index__", "__complex__", "tolist",
                          "numpy", "cpu"})
# Output shape depends on tensor values: the host must know the size before allocating.
_DATA_DEPENDENT = frozenset({"nonzero", "argwhere", "unique", "unique_consecutive", "masked_select"})
_TORCH_ROOT = str(Path(torch.__file__).resolve().parent)
# torch's own dispatch frames (Tensor dunders, __torch_function__ handling) sit between a call and the mode.
_DISPATCH = tuple(str(Path(_TORCH_ROOT) / f) for f in ("_tensor.py", "overrides.py", "functional.py", "_jit_internal.py", "utils"))


@dataclass(frozen=True)
class SyncEvent:
    op: str
    site: str  # "file:line in function" of the code that asked


def _is_bool_index(index: object) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)


def _caller() -> FrameType | None:
    """The innermost frame outside torch's dispatch plumbing and this module."""
    frame = sys._getframe(1)
    while frame is not None and (frame.f_code.co_filename == __file__
                                 or frame.f_code.co_filename.startswith(_DISPATCH)):
        frame = frame.f_back
    return frame


class HostSyncRecorder(TorchFunctionMode):
    """Records every host-synchronising tensor operation made inside the ``with`` block.

    Only tensor operations issued from Python are seen (autograd's backward runs in C++ and reads no
    values back). Operations that torch issues itself (``torch.optim`` reading its host-side step
    counters, say) are left out: they are torch's concern, and ``torch.cuda.set_sync_debug_mode``
    reports them on CUDA.
    """

    def __init__(self) -> None:
        super().__init__()
        self.events: list[SyncEvent] = []

    def _record(self, op: str) -> None:
        frame = _caller()
        if frame is None or frame.f_code.co_filename.startswith(_TORCH_ROOT):
            return
        self.events.append(SyncEvent(op, f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno} in "
                                         f"{frame.f_code.co_name}"))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in _VALUE_READS or name in _DATA_DEPENDENT:
            self._record(name)
        elif name in ("__getitem__", "__setitem__") and len(args) > 1 and _is_bool_index(args[1]):
            self._record(f"{name}[bool mask]")
        elif name == "repeat_interleave" and kwargs.get("output_size") is None and isinstance(
                args[1] if len(args) > 1 else kwargs.get("repeats"), torch.Tensor):
            self._record("repeat_interleave")
        return func(*args, **kwargs)

    def counts(self) -> Counter[SyncEvent]:
        return Counter(self.events)

    def report(self) -> str:
        """One line per distinct (op, call site), most frequent first."""
        if not self.events:
            return "no host synchronisation"
        lines = [f"{n:5d}  {e.op:24s} {e.site}" for e, n in self.counts().most_common()]
        return f"{len(self.events)} host synchronisations:\n" + "\n".join(lines)
