"""One run at a time in a run directory: a lock file beside it, ``<experiment>/.<run_id>.lock``.

The lock is a POSIX record lock (``fcntl.lockf``) on that file, taken by rank 0 before anything of the run is
written and held until the run ends. The file holds its owner, ``{"host", "pid", "since", "run_dir"}``, so that a
second run on the same id fails at once with a message naming the first.

Why these choices:

- The kernel (or, on a shared file system, the lock manager: NFSv4, Lustre with ``flock``, GPFS) drops the
  lock when its process dies, however it dies (SIGKILL, a node that reboots): a crashed run never blocks the next
  one. A record left by such a run is stale by construction when the lock can be taken; it is logged and
  replaced. A lock held by a host that vanished is released when the server's lease expires (NFSv4: 90 s by
  default).
- A POSIX lock belongs to a process, not to a file descriptor: the DataLoader workers that rank 0 forks do not
  inherit it, so a SIGKILLed rank 0 frees it at once even while its workers wind down. The flip side, two
  locks of one process on one file do not exclude each other, is covered by :data:`_HELD`.
- The lock file lives beside the run directory, not in it: ``--overwrite`` deletes the run directory while the
  lock is held. It is removed when the run ends; a new owner checks that the file it locked is still the one at
  that path (an owner removing it in between is the one race of removable lock files).
- On a file system without locks (``lockf`` fails with ENOLCK / EOPNOTSUPP), the record alone decides, with a
  warning: a record of this host whose process is gone is stale and replaced; one of another host cannot be
  checked from here and is refused, naming the file to delete once that run is known to be over.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket
from pathlib import Path
from typing import Any

from vasot_dist.runtime.files import named_os_error
from vasot_dist.runtime.ranklog import get_logger
from vasot_dist.train.rundir import RunDirError

log = get_logger(__name__)

_BUSY = (errno.EACCES, errno.EAGAIN)
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)
# run-directory locks this process holds, by lock file: POSIX locks do not exclude their own process
_HELD: dict[str, RunLock] = {}


def _owner_text(owner: dict[str, Any] | None) -> str:
    if not owner:
        return "an unknown process (its lock file holds no owner yet)"
    return f"pid {owner.get('pid')} on host {owner.get('host')} since {owner.get('since')}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def _parse_owner(text: bytes) -> dict[str, Any] | None:
    try:
        owner = json.loads(text or b"null")
    except ValueError:
        return None
    return owner if isinstance(owner, dict) else None


def _read_owner(path: Path) -> dict[str, Any] | None:
    """The record of a lock file this process does NOT hold (closing any descriptor of a file drops the
    POSIX locks the closing process has on it: the holder reads through its own descriptor)."""
    try:
        return _parse_owner(path.read_bytes())
    except OSError:
        return None


class RunLock:
    """The lock of one run directory; :meth:`acquire` or :class:`RunDirError` naming the holder."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir.parent / f".{self.run_dir.name}.lock"
        self._fd: int | None = None

    def __repr__(self) -> str:
        return f"RunLock({str(self.path)!r}, held={self._fd is not None})"

    def _busy(self, owner: dict[str, Any] | None) -> RunDirError:
        return RunDirError(
            f"{self.run_dir} is in use by another run: {_owner_text(owner)} (lock file {self.path}). Two runs in "
            "one run directory would overwrite each other's checkpoints; wait for that run to end, or choose "
            "another train.run_id")

    def acquire(self) -> RunLock:
        """Take the lock (nothing in the run directory is touched before).

        Raises:
            RunDirError: another process holds it (its host, pid and start time named).
        """
        key = str(self.path.resolve())
        if key in _HELD:
            raise self._busy(_HELD[key].owner)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):  # retried only when the owner removed the file between our open and our lock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
            try:
                locked = self._lock(fd)
                if locked and not self._same_file(fd):
                    os.close(fd)
                    continue
                previous = _parse_owner(os.pread(fd, 1 << 16, 0))
                if not locked:  # no locks on this file system: the record decides
                    self._check_record(previous)
                self.owner = {"host": socket.gethostname(), "pid": os.getpid(),
                              "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                              "run_dir": str(self.run_dir)}
                try:
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, (json.dumps(self.owner) + "\n").encode(), 0)
                    os.fsync(fd)
                except OSError as e:  # a full or read-only disk: name the file
                    raise named_os_error(e, self.path) from e
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            if previous:
                log.warning("%s: took over the lock of %s, which ended without releasing it", self.run_dir,
                            _owner_text(previous))
            _HELD[key] = self
            return self
        raise RunDirError(f"{self.path}: the lock file kept being replaced while taking it; another run is "
                          "starting on this train.run_id")

    def _lock(self, fd: int) -> bool:
        """True: locked; False: this file system has no locks. Raises the busy error when another holds it."""
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as e:
            if e.errno in _BUSY:
                raise self._busy(_read_owner(self.path)) from None
            if e.errno in _NO_LOCKS:
                log.warning("%s: the file system refuses file locks (%s); two runs on this train.run_id are kept "
                            "apart by the owner record alone", self.path, e.strerror)
                return False
            raise

    def _same_file(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def _check_record(self, owner: dict[str, Any] | None) -> None:
        if not owner:
            return
        if owner.get("host") == socket.gethostname():
            if isinstance(owner.get("pid"), int) and _alive(owner["pid"]):
                raise self._busy(owner)
            return  # its process is gone: stale
        raise RunDirError(
            f"{self.run_dir} may be in use by another run: {_owner_text(owner)} (lock file {self.path}), and this "
            "file system has no file locks to tell whether it still runs. Delete the lock file once that run is "
            "known to be over, or choose another train.run_id")

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        _HELD.pop(str(self.path.resolve()), None)
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self._fd)  # drops the lock
        self._fd = None


def release_all() -> None:
    """Release every run-directory lock this process holds (the end of ``run``: one run per process at a time)."""
    for lock in list(_HELD.values()):
        lock.release()
