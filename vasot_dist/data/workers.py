"""DataLoader workers that survive a preemption signal, so that the main process can checkpoint.

A scheduler signals every process of a job, not only the trainer: SLURM sends SIGTERM (and ``--signal``'s
SIGUSR1) to every process of the job step, torchrun forwards the SIGTERM it receives to each worker's process
group (``os.killpg``), ``kill -TERM -<pgid>`` reaches the whole group. PyTorch's worker SIGTERM handler re-raises
any SIGTERM that does not come from its parent, the worker dies, and the main process stops with "DataLoader
worker (pid ...) is killed by signal: Terminated" before it can write a checkpoint.

So our workers ignore SIGTERM and SIGUSR1 (the main process handles them: ``vasot_dist.train.loop``), and the
main process ends its workers with SIGKILL where PyTorch would use SIGTERM:

- workers start with both signals blocked (the parent blocks them while it forks, so a signal that arrives in
  between stays pending) and :func:`ignore_preemption_signals` ignores them, which discards a pending one;
- a worker that does not leave after PyTorch's shutdown (it joins with a 5 s timeout, then sends SIGTERM) is
  killed, and so is every worker still alive when the interpreter exits (PyTorch skips its shutdown then and
  leaves the daemon processes to ``multiprocessing``, which would SIGTERM them and wait forever);
- a worker whose parent died notices within 5 s (PyTorch's watchdog) and leaves by itself.
"""

from __future__ import annotations

import atexit
import signal
import threading
import weakref
from collections.abc import Iterator

from torch.utils.data import DataLoader
from torch.utils.data.dataloader import _MultiProcessingDataLoaderIter  # its shutdown sends SIGTERM

PREEMPTION_SIGNALS = {signal.SIGTERM, signal.SIGUSR1}
_WORKERS: weakref.WeakSet = weakref.WeakSet()  # worker processes of our loaders, for the exit hook


def ignore_preemption_signals(worker_id: int) -> None:
    """``worker_init_fn``: ignore SIGTERM / SIGUSR1 in this worker, then unblock them (see the module doc)."""
    for sig in PREEMPTION_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, PREEMPTION_SIGNALS)


class SignalSafeLoader(DataLoader):
    """A ``DataLoader`` whose worker processes ignore preemption signals (module doc); same arguments."""

    def __init__(self, *args, **kwargs) -> None:
        if kwargs.get("worker_init_fn") is not None:
            raise ValueError("SignalSafeLoader sets worker_init_fn itself")
        super().__init__(*args, worker_init_fn=ignore_preemption_signals, **kwargs)

    def _get_iterator(self) -> Iterator:
        if self.num_workers == 0:
            return super()._get_iterator()
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, PREEMPTION_SIGNALS)
        try:
            return _WorkerIterator(self)  # forks the workers: they inherit the blocked mask
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # a signal that came meanwhile is handled now


class _WorkerIterator(_MultiProcessingDataLoaderIter):
    def __init__(self, loader: DataLoader) -> None:
        super().__init__(loader)
        _WORKERS.update(self._workers)

    def _shutdown_workers(self) -> None:
        super()._shutdown_workers()
        for w in getattr(self, "_workers", []):  # still there after PyTorch's join and SIGTERM: it ignores SIGTERM
            if w.is_alive():
                w.kill()
                w.join(timeout=5)


@atexit.register
def _kill_workers_left() -> None:
    """Registered after ``multiprocessing``'s own exit hook, so it runs first (see the module doc)."""
    alive = [w for w in list(_WORKERS) if _is_alive(w)]
    if alive and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # PyTorch's handler would report these as failed workers
    for w in alive:
        try:
            w.kill()
        except (AssertionError, ValueError, OSError):  # not our child any more, or already closed
            pass


def _is_alive(w) -> bool:
    try:
        return w.is_alive()
    except (AssertionError, ValueError):  # not our child (a fork of the process that made it), or closed
        return False
